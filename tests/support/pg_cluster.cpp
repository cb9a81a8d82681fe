#include "support/pg_cluster.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/wait.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace outbox::test {
namespace {

std::string tail(const std::string& text, std::size_t max_chars) {
    return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// A postgresql.conf string value: single quotes doubled.
std::string conf_quote(const std::string& value) {
    std::string out = "'";
    for (const char c : value) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

// The server binary in `bin_dir`, or an error that says how to get it.
std::string server_binary(const std::string& bin_dir) {
    std::string postgres = bin_dir + "/postgres";
    if (::access(postgres.c_str(), X_OK) != 0) {
        throw std::runtime_error(
            "no PostgreSQL server binary at " + postgres +
            " (OUTBOX_PG_BIN): run scripts/fetch-postgres to fetch PostgreSQL 14, 16, 17 "
            "and 18, or point OUTBOX_PG_BIN at a bin directory with initdb and postgres");
    }
    return postgres;
}

std::string run_server_binary(const std::vector<std::string>& argv) {
    std::string out;
    const int rc =
        run_command(SpawnOptions{.argv = argv, .working_dir = "/"}, &out, std::chrono::seconds(30));
    if (rc != 0)
        throw std::runtime_error(argv.at(0) + " " + argv.at(1) + " failed (exit " + std::to_string(rc) + ")");
    return out;
}

// "postgres (PostgreSQL) 17.10" -> 17; "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" -> 15.
int parse_major(const std::string& version_line) {
    const auto close = version_line.find(')');
    const auto digit = version_line.find_first_of("0123456789", close == std::string::npos ? 0 : close);
    if (digit == std::string::npos) throw std::runtime_error("cannot read a version from: " + version_line);
    return std::stoi(version_line.substr(digit));
}

}  // namespace

std::string pg_bin_dir() {
    for (const char* name : {"OUTBOX_PG_BIN", "OUTBOX_PG_BINDIR"}) {
        if (const char* env = std::getenv(name); env != nullptr && *env != '\0') return env;
    }
    return "/usr/lib/postgresql/15/bin";
}

int pg_server_major() {
    return parse_major(run_server_binary({server_binary(pg_bin_dir()), "--version"}));
}

PgCluster::PgCluster(const PgClusterOptions& options) {
    prepare_run_dir(options.run_dir);
    init_cluster(options);
    start();
}

PgCluster::PgCluster(StandbyTag /*tag*/, PgCluster& primary, const StandbyOptions& options) {
    prepare_run_dir(options.run_dir);
    clone_from(primary, options);
    start();
    const bool streaming = wait_until(
        [&] {
            return primary.connect().query_value(
                       "SELECT state FROM pg_stat_replication WHERE application_name = $1",
                       {primary_slot_}) == "streaming";
        },
        std::chrono::seconds(60), std::chrono::milliseconds(20));
    if (!streaming) {
        throw std::runtime_error("the standby did not start streaming from its primary within 60 s\n" +
                                 tail(log(), 3000));
    }
}

void PgCluster::prepare_run_dir(const std::string& requested) {
    const std::string postgres = server_binary(pg_bin_dir());
    major_ = parse_major(run_server_binary({postgres, "--version"}));
    std::istringstream described(run_server_binary({postgres, "--describe-config"}));
    for (std::string line; std::getline(described, line);) {
        setting_names_.push_back(lower(line.substr(0, line.find('\t'))));
    }
    std::sort(setting_names_.begin(), setting_names_.end());
    if (geteuid() == 0) {
        const passwd* pw = getpwnam("postgres");
        if (pw == nullptr) throw std::runtime_error("running as root but there is no `postgres` OS user");
        uid_ = pw->pw_uid;
        gid_ = pw->pw_gid;
        superuser_ = "postgres";
    } else {
        const passwd* pw = getpwuid(geteuid());
        superuser_ = pw != nullptr ? pw->pw_name : "postgres";
    }
    if (requested.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/outbox-pg-XXXXXX";
        if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
        run_dir_ = tmpl;
        owns_run_dir_ = true;
    } else {
        run_dir_ = requested;
        fs::create_directories(run_dir_);
    }
    // The server user must be able to reach and write the run directory; the socket lives there.
    fs::permissions(run_dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
    if (uid_ && chown(run_dir_.c_str(), *uid_, *gid_) != 0) {
        throw std::runtime_error("cannot chown " + run_dir_ + " to postgres");
    }
    port_ = free_tcp_port();
}

bool PgCluster::has_setting(const std::string& name) const {
    return std::binary_search(setting_names_.begin(), setting_names_.end(), lower(name));
}

PgCluster::~PgCluster() {
    try {
        stop(StopMode::Fast, std::chrono::seconds(10));
    } catch (const std::exception&) {
        // The ChildProcess destructor still kills and reaps the postmaster.
    }
    if (owns_run_dir_) {
        std::error_code ec;
        fs::remove_all(run_dir_, ec);
    }
}

SpawnOptions PgCluster::as_server_user(std::vector<std::string> argv) const {
    SpawnOptions opts;
    opts.argv = std::move(argv);
    opts.run_as_uid = uid_;
    opts.run_as_gid = gid_;
    opts.working_dir = std::string("/");  // the postgres user may not be able to enter our cwd (e.g. /root)
    opts.env_unset = {"PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGOPTIONS"};
    opts.env_set = {{"LC_ALL", "C.UTF-8"}};
    return opts;
}

void PgCluster::init_cluster(const PgClusterOptions& options) {
    for (const auto& setting : options.settings) {
        if (!has_setting(setting.first)) {
            throw std::runtime_error("PostgreSQL " + std::to_string(major_) + " (" + pg_bin_dir() +
                                     ") has no setting " + setting.first);
        }
    }
    const std::string log_path = run_dir_ + "/initdb.log";
    // The same initdb flags for 14 to 18. 18's initdb enables data checksums by default; the
    // harness keeps each version's defaults there, as users get them.
    auto opts = as_server_user({pg_bin_dir() + "/initdb", "-D", data_dir(), "-U", superuser_, "--auth=trust",
                                "-E", "UTF8", "--no-sync", "--no-instructions"});
    opts.stdout_path = log_path;
    opts.stderr_path = "=stdout";
    const int rc = run_command(opts, nullptr, std::chrono::seconds(120));
    if (rc != 0) {
        throw std::runtime_error("initdb failed (exit " + std::to_string(rc) +
                                 "): " + tail(read_file(log_path), 2000));
    }
    // Appended settings win over initdb's defaults and survive restarts. Every one of them
    // exists in 14 to 18 (postgres --describe-config); version-specific ones are guarded.
    std::ostringstream conf;
    conf << "\n# outbox-relay test harness\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = " << conf_quote(run_dir_) << "\n"
         << "wal_level = logical\n"
         << "max_replication_slots = 20\n"
         << "max_wal_senders = 20\n"
         << "wal_sender_timeout = '" << options.wal_sender_timeout.count() << "ms'\n"
         << "timezone = 'UTC'\n"
         << "fsync = off\n"
         << "full_page_writes = off\n"
         << "max_prepared_transactions = 10\n"
         << "logging_collector = off\n"
         << "log_line_prefix = '%m [%p] %a '\n";
    for (const auto& [key, value] : options.settings) conf << key << " = " << conf_quote(value) << "\n";
    append_conf(conf.str());
}

void PgCluster::append_conf(const std::string& lines) const {
    std::ofstream conf(data_dir() + "/postgresql.conf", std::ios::app);
    conf << lines;
    conf.close();
    if (!conf) throw std::runtime_error("cannot write " + data_dir() + "/postgresql.conf");
}

void PgCluster::write_server_file(const std::string& path, const std::string& content) const {
    {
        std::ofstream out(path, std::ios::trunc);
        out << content;
        out.close();
        if (!out) throw std::runtime_error("cannot write " + path);
    }
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    if (uid_ && chown(path.c_str(), *uid_, *gid_) != 0) throw std::runtime_error("cannot chown " + path);
}

void PgCluster::set(const std::string& name, const std::string& value, std::chrono::milliseconds timeout) {
    if (!has_setting(name)) {
        throw std::runtime_error("PostgreSQL " + std::to_string(major_) + " has no setting " + name);
    }
    append_conf(name + " = " + conf_quote(value) + "\n");
    exec("SELECT pg_reload_conf()");
    // The postmaster rereads the file asynchronously; a new session shows what it has read.
    const bool applied = wait_until(
        [&] { return connect().query_value("SELECT current_setting($1)", {name}) == value; }, timeout, 20ms);
    if (!applied) {
        throw std::runtime_error("setting " + name + " = '" + value + "' not in effect after a reload: " +
                                 connect().query_value("SELECT current_setting($1)", {name}).value_or("?") +
                                 "\n" + tail(log(), 2000));
    }
}

void PgCluster::set(const std::vector<std::pair<std::string, std::string>>& settings,
                    std::chrono::milliseconds timeout) {
    std::string lines;
    for (const auto& [name, value] : settings) {
        if (!has_setting(name)) {
            throw std::runtime_error("PostgreSQL " + std::to_string(major_) + " has no setting " + name);
        }
        lines += name + " = " + conf_quote(value) + "\n";
    }
    append_conf(lines);
    exec("SELECT pg_reload_conf()");
    for (const auto& [name, value] : settings) {
        const bool applied =
            wait_until([&] { return connect().query_value("SELECT current_setting($1)", {name}) == value; },
                       timeout, 20ms);
        if (!applied) {
            throw std::runtime_error("setting " + name + " = '" + value + "' not in effect after a reload\n" +
                                     tail(log(), 2000));
        }
    }
}

std::string PgCluster::copy_to_data_dir(const std::string& source, const std::string& name) const {
    const std::string path = data_dir() + "/" + name;
    write_server_file(path, read_file(source));
    return path;
}

void PgCluster::write_hba(const std::string& rules) const {
    write_server_file(data_dir() + "/pg_hba.conf", rules);
    exec("SELECT pg_reload_conf()");
}

std::unique_ptr<PgCluster> PgCluster::create_standby(const StandbyOptions& options) {
    return std::unique_ptr<PgCluster>(new PgCluster(StandbyTag{}, *this, options));
}

void PgCluster::clone_from(PgCluster& primary, const StandbyOptions& options) {
    if (primary.server_major() != major_) {
        throw std::runtime_error("a standby needs the primary's major version: " +
                                 std::to_string(primary.server_major()) + " vs " + std::to_string(major_));
    }
    primary_slot_ = options.slot_name.empty() ? "standby_" + std::to_string(port_) : options.slot_name;
    {
        pg::Connection conn = primary.connect();
        // Reserves WAL from now on, so everything the backup needs stays until the standby has it.
        conn.exec_params("SELECT pg_create_physical_replication_slot($1, true)", {primary_slot_});
    }
    if (options.synchronized_standby_slots && primary.has_setting("synchronized_standby_slots")) {
        primary.standby_slots_.push_back(primary_slot_);
        std::string slots;
        for (const auto& slot : primary.standby_slots_) slots += (slots.empty() ? "" : ",") + slot;
        primary.set("synchronized_standby_slots", slots);
    }

    // A non-exclusive base backup: the session that starts it must also stop it.
    pg::Connection backup = primary.connect();
    const bool v15 = major_ >= 15;
    backup.exec_params(v15 ? "SELECT pg_backup_start($1, true)" : "SELECT pg_start_backup($1, true, false)",
                       {"outbox-test standby " + primary_slot_});
    fs::create_directory(data_dir());
    fs::permissions(data_dir(), fs::perms::owner_all);
    if (uid_ && chown(data_dir().c_str(), *uid_, *gid_) != 0)
        throw std::runtime_error("cannot chown " + data_dir());
    // Copied as the server user, so the files keep their owner and modes. What pg_basebackup
    // leaves out stays out; tar's exit 1 (a file changed or vanished while read) is expected
    // from a running server: the WAL from the backup's start point repairs it.
    const std::string copy_log = run_dir_ + "/clone.log";
    auto copy = as_server_user(
        {"bash", "-c",
         "cd \"$1\" && tar --ignore-failed-read --warning=no-file-changed --warning=no-file-removed "
         "--warning=no-file-shrank "
         "--exclude=./postmaster.pid --exclude=./postmaster.opts --exclude=./backup_label "
         "--exclude=./tablespace_map --exclude=./standby.signal --exclude=./recovery.signal "
         "--exclude='./pg_wal/*' --exclude='./pg_replslot/*' --exclude='./pg_dynshmem/*' "
         "--exclude='./pg_notify/*' --exclude='./pg_serial/*' --exclude='./pg_snapshots/*' "
         "--exclude='./pg_stat_tmp/*' --exclude='./pg_subtrans/*' --exclude='pgsql_tmp*' "
         "--exclude=pg_internal.init -cf - . | tar -C \"$2\" -xf -; "
         "s=(\"${PIPESTATUS[@]}\"); [ \"${s[0]}\" -le 1 ] && [ \"${s[1]}\" -eq 0 ] && "
         "mkdir -p \"$2/pg_wal/archive_status\"",
         "clone", primary.data_dir(), data_dir()});
    copy.stdout_path = copy_log;
    copy.stderr_path = "=stdout";
    const int rc = run_command(copy, nullptr, std::chrono::seconds(300));
    const auto rows = backup.query(v15 ? "SELECT labelfile, spcmapfile FROM pg_backup_stop(false)"
                                       : "SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)");
    if (rc != 0) {
        throw std::runtime_error("copying the primary's data directory failed (exit " + std::to_string(rc) +
                                 "): " + tail(read_file(copy_log), 2000));
    }
    if (rows.size() != 1 || !rows[0].at(0)) throw std::runtime_error("the backup stop returned no label");
    write_server_file(data_dir() + "/backup_label", *rows[0][0]);
    if (rows[0].at(1) && !rows[0][1]->empty()) write_server_file(data_dir() + "/tablespace_map", *rows[0][1]);
    write_server_file(data_dir() + "/standby.signal", "");

    // The primary's settings came with the copy; later lines override them.
    std::ostringstream conf;
    conf << "\n# outbox-relay test harness: streaming standby of the cluster in " << primary.run_dir() << "\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = " << conf_quote(run_dir_) << "\n"
         << "wal_sender_timeout = '" << options.wal_sender_timeout.count() << "ms'\n"
         << "primary_conninfo = "
         << conf_quote("host=127.0.0.1 port=" + std::to_string(primary.port()) +
                       " user=" + primary.superuser() + " dbname=postgres application_name=" + primary_slot_)
         << "\n"
         << "primary_slot_name = " << conf_quote(primary_slot_) << "\n"
         << "hot_standby = on\n"
         << "hot_standby_feedback = on\n";
    if (has_setting("sync_replication_slots")) {
        conf << "sync_replication_slots = " << (options.sync_replication_slots ? "on" : "off") << "\n";
    }
    // Once promoted, this server must not wait for the old primary's standbys.
    if (has_setting("synchronized_standby_slots")) conf << "synchronized_standby_slots = ''\n";
    for (const auto& [key, value] : options.settings) {
        if (!has_setting(key)) {
            throw std::runtime_error("PostgreSQL " + std::to_string(major_) + " has no setting " + key);
        }
        conf << key << " = " << conf_quote(value) << "\n";
    }
    append_conf(conf.str());
}

bool PgCluster::in_recovery() const {
    return query_value("SELECT pg_is_in_recovery()") == "t";
}

bool PgCluster::wait_replayed(const PgCluster& primary, std::chrono::milliseconds timeout) const {
    const std::string target =
        primary.query_value("SELECT pg_current_wal_insert_lsn()::text").value_or("0/0");
    return wait_until(
        [&] {
            return connect().query_value("SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
                                         {target}) == "t";
        },
        timeout, 20ms);
}

void PgCluster::sync_slots_now() const {
    if (!has_setting("sync_replication_slots")) {
        throw std::runtime_error("PostgreSQL " + std::to_string(major_) + " has no failover slots (17+)");
    }
    auto conn = connect();
    if (conn.query_value("SELECT current_setting('sync_replication_slots')::bool") == "t") {
        // SIGHUP sets the worker's latch: it runs a synchronization round at once.
        conn.exec("SELECT pg_reload_conf()");
    } else {
        conn.exec("SELECT pg_sync_replication_slots()");
    }
}

bool PgCluster::wait_slot_synced(const std::string& slot, std::chrono::milliseconds timeout,
                                 std::optional<Lsn> min_confirmed) const {
    const std::string min_lsn = min_confirmed.value_or(Lsn()).to_string();
    return wait_until(
        [&] {
            try {
                sync_slots_now();
            } catch (const pg::ServerError&) {
                // e.g. the remote slot is not ready yet: look again on the next round.
            }
            return connect().query_value(
                       "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND synced AND "
                       "NOT temporary AND confirmed_flush_lsn >= $2::pg_lsn",
                       {slot, min_lsn}) == "1";
        },
        timeout, 50ms);
}

void PgCluster::promote(std::chrono::milliseconds timeout) {
    const auto seconds =
        std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
    const auto promoted =
        connect().query_value("SELECT pg_promote(true, " + std::to_string(seconds) + ")").value_or("f");
    const bool writable = promoted == "t" && wait_until(
                                                 [&] {
                                                     return connect().query_value(
                                                                "SELECT NOT pg_is_in_recovery() AND "
                                                                "current_setting('transaction_read_only') = "
                                                                "'off'") == "t";
                                                 },
                                                 timeout, 20ms);
    if (!writable) {
        throw std::runtime_error("the standby did not leave recovery within the deadline\n" +
                                 tail(log(), 3000));
    }
}

void PgCluster::start() {
    if (running()) return;
    auto opts = as_server_user({pg_bin_dir() + "/postgres", "-D", data_dir()});
    opts.stdout_path = run_dir_ + "/postgres.log";
    opts.stderr_path = "=stdout";
    // SIGQUIT is an immediate shutdown: if the test process dies, so does its server.
    opts.parent_death_signal = SIGQUIT;
    postmaster_ = ChildProcess(opts);
    const std::string dsn = tcp_dsn();
    const bool up = wait_until([&] { return !postmaster_.running() || PQping(dsn.c_str()) == PQPING_OK; },
                               std::chrono::seconds(60));
    if (!up || !postmaster_.running()) {
        const std::string why =
            up ? "the server exited" : "the server did not accept connections within 60 s";
        postmaster_.stop(SIGKILL, std::chrono::seconds(5));
        throw std::runtime_error("PostgreSQL did not start: " + why + "\n" + tail(log(), 3000));
    }
}

namespace {
int stop_signal(PgCluster::StopMode mode) {
    switch (mode) {
        case PgCluster::StopMode::Smart: return SIGTERM;
        case PgCluster::StopMode::Fast: return SIGINT;
        case PgCluster::StopMode::Immediate: return SIGQUIT;
    }
    return SIGINT;
}
}  // namespace

void PgCluster::begin_stop(StopMode mode) {
    if (running()) postmaster_.signal(stop_signal(mode));
}

bool PgCluster::wait_stopped(std::chrono::milliseconds timeout) {
    return postmaster_.wait_for(timeout).has_value();
}

void PgCluster::stop(StopMode mode, std::chrono::milliseconds grace) {
    if (!running()) return;
    postmaster_.signal(stop_signal(mode));
    if (!postmaster_.wait_for(grace)) {
        // Escalate: immediate shutdown, then kill. Backends exit when they see the postmaster gone.
        postmaster_.signal(SIGQUIT);
        if (!postmaster_.wait_for(std::chrono::seconds(10)))
            postmaster_.stop(SIGKILL, std::chrono::seconds(10));
        throw std::runtime_error("PostgreSQL did not stop within the grace period; it was killed");
    }
}

void PgCluster::restart(StopMode mode) {
    stop(mode);
    start();
}

bool PgCluster::running() {
    return postmaster_.running();
}

std::string PgCluster::tcp_dsn(const std::string& dbname) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + superuser_ + " dbname=" + dbname +
           " connect_timeout=10";
}

std::string PgCluster::unix_dsn(const std::string& dbname) const {
    return "host=" + run_dir_ + " port=" + std::to_string(port_) + " user=" + superuser_ +
           " dbname=" + dbname + " connect_timeout=10";
}

pg::Connection PgCluster::connect(const std::string& dbname) const {
    return pg::Connection::connect(tcp_dsn(dbname), pg::ReplicationMode::None, std::nullopt, "outbox-test");
}

void PgCluster::exec(const std::string& sql, const std::string& dbname) const {
    connect(dbname).exec(sql);
}

std::optional<std::string> PgCluster::query_value(const std::string& sql, const std::string& dbname) const {
    return connect(dbname).query_value(sql);
}

std::string PgCluster::log() const {
    try {
        return read_file(run_dir_ + "/postgres.log");
    } catch (const std::exception&) {
        return {};
    }
}

}  // namespace outbox::test

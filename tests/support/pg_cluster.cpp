#include "support/pg_cluster.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "support/wait.h"

namespace fs = std::filesystem;

namespace outbox::test {
namespace {

std::string tail(const std::string& text, std::size_t max_chars) {
    return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

}  // namespace

std::string pg_bin_dir() {
    if (const char* env = std::getenv("OUTBOX_PG_BINDIR"); env != nullptr && *env != '\0') return env;
    return "/usr/lib/postgresql/15/bin";
}

PgCluster::PgCluster(PgClusterOptions options) {
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
    if (options.run_dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/outbox-pg-XXXXXX";
        if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
        run_dir_ = tmpl;
        owns_run_dir_ = true;
    } else {
        run_dir_ = options.run_dir;
        fs::create_directories(run_dir_);
    }
    // The server user must be able to reach and write the run directory; the socket lives there.
    fs::permissions(run_dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
    if (uid_ && chown(run_dir_.c_str(), *uid_, *gid_) != 0) {
        throw std::runtime_error("cannot chown " + run_dir_ + " to postgres");
    }
    port_ = free_tcp_port();
    init_cluster(options);
    start();
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
    const std::string log_path = run_dir_ + "/initdb.log";
    auto opts = as_server_user({pg_bin_dir() + "/initdb", "-D", data_dir(), "-U", superuser_, "--auth=trust",
                                "-E", "UTF8", "--no-sync", "--no-instructions"});
    opts.stdout_path = log_path;
    opts.stderr_path = "=stdout";
    const int rc = run_command(opts, nullptr, std::chrono::seconds(120));
    if (rc != 0) {
        throw std::runtime_error("initdb failed (exit " + std::to_string(rc) +
                                 "): " + tail(read_file(log_path), 2000));
    }
    // Appended settings win over initdb's defaults and survive restarts.
    std::ofstream conf(data_dir() + "/postgresql.conf", std::ios::app);
    conf << "\n# outbox-relay test harness\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = '" << run_dir_ << "'\n"
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
    for (const auto& [key, value] : options.settings) conf << key << " = '" << value << "'\n";
    if (!conf) throw std::runtime_error("cannot write " + data_dir() + "/postgresql.conf");
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

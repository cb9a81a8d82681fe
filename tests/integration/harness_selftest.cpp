// Self-tests of the test harness: the servers every other integration test relies on are real,
// reachable, and gone when a test ends, also when it crashes.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/mock_kafka.h"
#include "support/outbox_table.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/wait.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace outbox::test {

// Runs in a child copy of integration_tests (OUTBOX_CRASH_PROBE_DIR set): starts the servers,
// records their pids, then dies without running any destructor.
int run_crash_probe(const char* run_dir) {
    PgCluster pg(PgClusterOptions{.run_dir = std::string(run_dir) + "/pg"});
    MockKafka kafka(std::string(run_dir) + "/kafka", 1);
    std::ofstream(std::string(run_dir) + "/postmaster.pid") << pg.postmaster_pid() << "\n";
    std::ofstream(std::string(run_dir) + "/broker.pid") << kafka.pid() << "\n";
    std::abort();
}

namespace {

// Alive: exists and is not a zombie (an orphan waits as a zombie until PID 1 reaps it).
bool process_exists(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

std::string self_exe() {
    return fs::read_symlink("/proc/self/exe").string();
}

}  // namespace

TEST_CASE("harness: PostgreSQL runs with logical decoding and a pgoutput slot decodes inserts") {
    PgCluster pg;
    REQUIRE(pg.running());
    CHECK(pg.query_value("SHOW wal_level") == "logical");
    CHECK(std::stoi(*pg.query_value("SHOW max_replication_slots")) >= 16);
    CHECK(std::stoi(*pg.query_value("SHOW max_wal_senders")) >= 16);
    CHECK(pg.query_value("SHOW server_version_num")->substr(0, 2) == "15");

    pg.exec(outbox_ddl());
    pg.exec("CREATE PUBLICATION harness FOR TABLE outbox WITH (publish = 'insert')");
    pg.exec("SELECT pg_create_logical_replication_slot('harness', 'pgoutput')");
    pg.exec("INSERT INTO outbox (payload) VALUES ('{\"n\": 1}'), ('{\"n\": 2}')");
    // Begin, Relation, Insert, Insert, Commit.
    CHECK(pg.query_value("SELECT count(*) FROM pg_logical_slot_peek_binary_changes('harness', NULL, NULL, "
                         "'proto_version', '1', 'publication_names', 'harness')") == "5");

    // The same server over its unix socket, and as a replication connection.
    auto unix_conn = pg::Connection::connect(pg.unix_dsn());
    CHECK(unix_conn.query_value("SELECT count(*) FROM outbox") == "2");
    auto repl = pg::Connection::connect(pg.tcp_dsn(), pg::ReplicationMode::Database);
    const auto rows = repl.query("IDENTIFY_SYSTEM");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].size() == 4);
}

TEST_CASE("harness: the server stops when the cluster object goes, and restarts on demand") {
    pid_t pid = 0;
    std::string socket;
    {
        PgCluster pg(PgClusterOptions{.wal_sender_timeout = 2s});
        CHECK(pg.query_value("SHOW wal_sender_timeout") == "2s");
        pid = pg.postmaster_pid();
        socket = pg.run_dir() + "/.s.PGSQL." + std::to_string(pg.port());
        CHECK(fs::exists(socket));
        pg.exec("CREATE TABLE survives (x int)");
        pg.restart(PgCluster::StopMode::Immediate);
        CHECK(pg.postmaster_pid() != pid);
        CHECK(pg.query_value("SELECT count(*) FROM survives") == "0");
        pid = pg.postmaster_pid();
    }
    CHECK_FALSE(process_exists(pid));
    CHECK_FALSE(fs::exists(socket));
}

TEST_CASE("harness: a test process that crashes leaves no PostgreSQL and no broker behind") {
    char tmpl[] = "/tmp/outbox-probe-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    SpawnOptions opts;
    opts.argv = {self_exe()};
    opts.env_set = {{"OUTBOX_CRASH_PROBE_DIR", dir}};
    opts.stdout_path = dir + "/probe.log";
    opts.stderr_path = "=stdout";
    ChildProcess probe(opts);
    const auto status = probe.wait_for(120s);
    REQUIRE(status.has_value());
    CHECK(WIFSIGNALED(*status));
    CHECK(WTERMSIG(*status) == SIGABRT);
    const pid_t postmaster = std::stoi(read_file(dir + "/postmaster.pid"));
    CHECK(postmaster > 0);
    const pid_t broker = std::stoi(read_file(dir + "/broker.pid"));
    CHECK(broker > 0);
    // The parent-death signal makes the orphaned postmaster shut down and the broker die.
    CHECK(wait_until([&] { return !process_exists(postmaster); }, 30s));
    CHECK(wait_until([&] { return !process_exists(broker); }, 30s));
    // Its backends and auxiliary processes are gone too: nothing still has the data dir open.
    std::string out;
    run_command(SpawnOptions{.argv = {"pgrep", "-f", dir}}, &out, 10s);
    CHECK(out == "");
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace outbox::test

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
    // The server is the one OUTBOX_PG_BIN names (Debian's 15 by default).
    CHECK(pg.server_major() == pg_server_major());
    CHECK(pg.query_value("SHOW server_version_num")->substr(0, 2) == std::to_string(pg.server_major()));
    if (std::getenv("OUTBOX_PG_BIN") == nullptr && std::getenv("OUTBOX_PG_BINDIR") == nullptr) {
        CHECK(pg.server_major() == 15);
    }
    MESSAGE("server: " << pg.query_value("SELECT version()").value_or("?")
                       << "; data_checksums = " << pg.query_value("SHOW data_checksums").value_or("?"));

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

TEST_CASE("harness: a streaming standby replays the primary, and accepts writes once promoted") {
    PgCluster primary;
    primary.exec("CREATE TABLE before_clone (x int)");
    primary.exec("INSERT INTO before_clone SELECT generate_series(1, 1000)");
    const auto standby = primary.create_standby();
    CHECK(standby->server_major() == primary.server_major());
    CHECK(standby->in_recovery());
    CHECK_FALSE(primary.in_recovery());
    CHECK(primary.query_value("SELECT slot_type FROM pg_replication_slots WHERE active AND slot_name = '" +
                              standby->primary_slot() + "'") == "physical");
    CHECK(standby->query_value("SHOW hot_standby_feedback") == "on");
    CHECK(standby->query_value("SELECT count(*) FROM before_clone") == "1000");

    primary.exec("CREATE TABLE after_clone (x int)");
    primary.exec("INSERT INTO after_clone SELECT generate_series(1, 500)");
    REQUIRE(standby->wait_replayed(primary, 30s));
    CHECK(standby->query_value("SELECT count(*) FROM after_clone") == "500");
    CHECK_THROWS(standby->exec("INSERT INTO after_clone VALUES (0)"));  // read-only while a standby

    standby->promote();
    CHECK_FALSE(standby->in_recovery());
    standby->exec("INSERT INTO after_clone VALUES (501)");
    CHECK(standby->query_value("SELECT count(*) FROM after_clone") == "501");
    // The old primary goes on by itself: the two have diverged.
    primary.exec("INSERT INTO after_clone VALUES (-1)");
    CHECK(primary.query_value("SELECT count(*) FROM after_clone") == "501");
    CHECK(standby->query_value("SELECT count(*) FROM after_clone WHERE x < 0") == "0");
}

TEST_CASE("harness: 17+: a failover slot is synchronized to the standby and decodes there after promotion") {
    PgCluster primary;
    if (primary.server_major() < 17) {
        // No failover slots before 17: the five-argument form of the function does not exist.
        CHECK_FALSE(primary.has_setting("sync_replication_slots"));
        CHECK_THROWS(
            primary.exec("SELECT pg_create_logical_replication_slot('f', 'pgoutput', false, false, true)"));
        MESSAGE("PostgreSQL " << primary.server_major() << ": no failover slots, nothing more to check");
        return;
    }
    primary.exec(outbox_ddl());
    primary.exec("CREATE PUBLICATION harness FOR TABLE outbox WITH (publish = 'insert')");
    const auto standby = primary.create_standby();
    CHECK(standby->query_value("SHOW sync_replication_slots") == "on");
    CHECK(primary.query_value("SHOW synchronized_standby_slots") == standby->primary_slot());
    // Only a slot created with failover = true is synchronized.
    primary.exec(
        "SELECT pg_create_logical_replication_slot('failover_slot', 'pgoutput', false, false, true)");
    primary.exec("SELECT pg_create_logical_replication_slot('plain_slot', 'pgoutput')");
    const auto synced_started = std::chrono::steady_clock::now();
    REQUIRE(standby->wait_slot_synced("failover_slot", 60s));
    const auto synced_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - synced_started)
                               .count();
    CHECK(standby->query_value(
              "SELECT failover FROM pg_replication_slots WHERE slot_name = 'failover_slot'") == "t");
    CHECK(standby->query_value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'plain_slot'") ==
          "0");

    // Rows committed on the primary and consumed there up to the first: the standby's copy of
    // the slot follows the confirmed position.
    primary.exec("INSERT INTO outbox (payload) VALUES ('{\"n\": 1}')");
    const std::string after_first = *primary.query_value("SELECT pg_current_wal_insert_lsn()::text");
    primary.exec("INSERT INTO outbox (payload) VALUES ('{\"n\": 2}')");
    // Consuming a failover slot waits until the standby has the WAL (synchronized_standby_slots).
    primary.exec("SELECT count(*) FROM pg_logical_slot_get_binary_changes('failover_slot', '" + after_first +
                 "', NULL, 'proto_version', '1', 'publication_names', 'harness')");
    const Lsn consumed = *Lsn::parse(
        *primary.query_value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = "
                             "'failover_slot'"));
    REQUIRE(standby->wait_replayed(primary, 30s));
    REQUIRE(standby->wait_slot_synced("failover_slot", 60s, consumed));

    standby->promote();
    // The promoted standby decodes from the synced slot what the old primary's consumer had
    // not confirmed: the second row (Begin, Relation, Insert, Commit), not the first.
    CHECK(standby->query_value(
              "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('failover_slot', NULL, "
              "NULL, 'proto_version', '1', 'publication_names', 'harness')") == "4");
    standby->exec("INSERT INTO outbox (payload) VALUES ('{\"n\": 3}')");
    CHECK(standby->query_value(
              "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('failover_slot', NULL, "
              "NULL, 'proto_version', '1', 'publication_names', 'harness')") == "7");
    MESSAGE("PostgreSQL " << primary.server_major() << ": failover slot synced " << synced_ms
                          << " ms after its creation");
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

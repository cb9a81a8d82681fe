// A broken world stops the relay with exit 78 and the fix, before anything is created; a stop
// that cannot wait for Kafka says so with its own exit code.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>

#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

// Puts `lines` before the cluster's pg_hba.conf rules and reloads it.
void prepend_hba(const PgCluster& pg, const std::string& lines) {
    const std::string path = pg.data_dir() + "/pg_hba.conf";
    const std::string rules = read_file(path);
    std::ofstream(path, std::ios::trunc) << lines << rules;
    pg.exec("SELECT pg_reload_conf()");
}

}  // namespace

TEST_CASE("start: a wrong password exits 78 at once with the fix, nothing created") {
    RelayScenario s;
    s.pg.exec("CREATE ROLE relay LOGIN REPLICATION PASSWORD 'right'");
    prepend_hba(s.pg, "host all relay 127.0.0.1/32 scram-sha-256\n");
    const std::string log =
        s.expect_config_exit({.dsn = "host=127.0.0.1 port=" + std::to_string(s.pg.port()) +
                                     " dbname=postgres user=relay password=wrong"});
    CHECK(contains(log, "password authentication failed for user \"relay\""));
    CHECK(contains(log, "retrying will not help"));
    CHECK(contains(log, "postgres.password_file"));
    CHECK_FALSE(contains(log, "restarting from the slot's confirmed position"));
    CHECK_FALSE(contains(log, "password=wrong"));
    s.check_nothing_created();
}

TEST_CASE("start: a role without REPLICATION exits 78 naming ALTER ROLE, nothing created") {
    RelayScenario s;
    s.pg.exec("CREATE ROLE plain LOGIN");
    s.pg.exec("ALTER TABLE outbox OWNER TO plain");  // it could create the publication: it must not
    const std::string log = s.expect_config_exit(
        {.dsn = "host=127.0.0.1 port=" + std::to_string(s.pg.port()) + " dbname=postgres user=plain"});
    CHECK(contains(log, "ALTER ROLE <user> REPLICATION"));
    s.check_nothing_created();
}

TEST_CASE("start: a configured column the outbox table lacks exits 78 naming column, key and table") {
    RelayScenario s;
    const std::string log = s.expect_config_exit({.headers = {"type", "trace_id"}});
    CHECK(contains(log, "outbox table public.outbox has no column \"trace_id\" (outbox.headers)"));
    s.check_nothing_created();
}

TEST_CASE(
    "start: a Kafka property librdkafka refuses exits 78 in --check-config and in the daemon, nothing "
    "created") {
    RelayScenario s;
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"no.such.property", "1"}, {"linger.ms", "abc"}, {"compression.type", "brotli"}}) {
        CAPTURE(key);
        const RelayConfig config = s.config({.kafka_properties = {{key, value}}});
        const std::string path = s.pg.run_dir() + "/check-" + key + ".yaml";
        std::ofstream(path) << config.yaml();
        std::string output;
        const int rc = run_command(SpawnOptions{.argv = {relay_binary(), "--config", path, "--check-config"},
                                                .stderr_path = "=stdout"},
                                   &output);
        CHECK(rc == 78);
        CHECK(contains(output, "kafka.properties." + key));
        CHECK_FALSE(contains(output, "configuration OK"));
        const std::string log = s.expect_config_exit(config);
        CHECK(contains(log, "kafka.properties." + key));
    }
    s.check_nothing_created();
}

TEST_CASE(
    "stop: SIGTERM while Kafka cannot acknowledge exits 75 after the drain, and the next start sends the "
    "events") {
    RelayScenario s;
    RelayProcess& relay = s.streaming_relay();
    s.kafka.all_down();
    s.pg.exec(
        "INSERT INTO outbox (aggregatetype, aggregateid, type, payload) SELECT 'order', 'k' || g, 'Created', "
        "'{}' FROM generate_series(1, 20) g");
    const Lsn end = s.wal_insert_lsn();
    REQUIRE(::kill(relay.pid(), SIGTERM) == 0);
    const auto rc = relay.wait_exit(60s);
    REQUIRE(rc.has_value());
    CHECK(*rc == 75);
    CHECK(contains(relay.log(), "events still unacknowledged after 30 s"));
    CHECK(s.slot_confirmed() < end);  // nothing of them confirmed
    s.kafka.all_up();
    relay.start();
    REQUIRE(relay.wait_streaming());
    CHECK(s.wait_for_records("outbox.event.order", 20).size() >= 20);
    REQUIRE(wait_until([&] { return s.slot_confirmed() >= end; }, 30s));
}

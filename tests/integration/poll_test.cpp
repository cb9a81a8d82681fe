// source: poll (issue #13): the polling publisher against the real PostgreSQL, the mock Kafka
// cluster process and the relay as a process. Rows flow and are deleted or marked; the poller's
// fault rows (kill -9 x10 under load, PostgreSQL restart, all brokers down, two instances) are
// judged by the invariant checker and reported in the fault table like the WAL rows.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "support/http_client.h"
#include "support/invariant_checker.h"
#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_stack.h"
#include "support/wait.h"
#include "support/workload.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

constexpr std::uint64_t kBatch = 200;

// The test table (support/outbox_table.h) has a random uuid id: the poller orders by a bigserial.
void make_pollable(const PgCluster& pg, bool mark) {
    pg.exec("ALTER TABLE outbox ADD COLUMN seq bigserial");
    pg.exec("CREATE INDEX ON outbox (seq)");
    if (mark) pg.exec("ALTER TABLE outbox ADD COLUMN published_at timestamptz");
}

RelayConfig poll_config(RelayConfig config = {}) {
    config.source = "poll";
    config.poll_order_by = "seq";
    config.poll_batch_size = kBatch;
    return config;
}

RelayConfig mark_config(RelayConfig config = {}) {
    config = poll_config(std::move(config));
    config.after_publish = "mark";
    config.published_column = "published_at";
    return config;
}

// A Stack (3 brokers, a consumer of every topic) whose outbox table the poller can use.
struct PollStack : Stack {
    explicit PollStack(bool mark = false) { make_pollable(pg, mark); }

    std::optional<std::string> value(const std::string& sql) const { return pg.query_value(sql); }
};

// How many sessions of `relay` got as far as polling (over the whole log).
std::size_t polling_sessions(const RelayProcess& relay) {
    return count_of(relay.log(), kPollingLine);
}

// finish() for a poll scenario: no slot, and outbox-lsn is 0/0, so neither the checkpoint nor
// the LSN order is judged; duplicates are counted (a rolled-back batch is published again).
Outcome finish_poll(Stack& s, Workload& workload, const std::string& scenario) {
    CheckOptions options;
    options.check_lsns = false;
    return finish(s, workload, "poll: " + scenario, options);
}

}  // namespace

TEST_CASE("poll: rows flow to Kafka in key order with the inserting transaction's xid, then are deleted") {
    PollStack s;
    RelayProcess& relay = s.streaming_relay(poll_config());
    Workload workload(s.pg, WorkloadOptions{.sessions = 3,
                                            .target_events = 3000,
                                            .max_rows = 20,
                                            .aggregates = 30,
                                            .rollback_ratio = 0.1,
                                            .seed = 1301});
    workload.run_to_completion();
    // outbox-xid is checked against the workload's txid_current() by the checker (check_xids).
    const Outcome out = finish_poll(s, workload, "delete mode, 3,000 events");
    CHECK(out.verdict.duplicates == 0);
    CHECK(out.verdict.delivered_unique == 3000);
    CHECK(s.value("SELECT count(*) FROM outbox") == std::optional<std::string>("0"));
    CHECK(contains(relay.log(), "stopped; every published row was deleted"));
    CHECK_FALSE(contains(relay.log(), kStreamingLine));
    // Nothing of logical replication was created.
    s.check_nothing_created();
}

TEST_CASE("poll: after_publish mark sets published_column on every published row and keeps the rows") {
    PollStack s(true);
    RelayProcess& relay = s.streaming_relay(mark_config());
    Workload workload(s.pg,
                      WorkloadOptions{.sessions = 2, .target_events = 1500, .aggregates = 20, .seed = 1302});
    workload.run_to_completion();
    const Outcome out = finish_poll(s, workload, "mark mode, 1,500 events");
    CHECK(out.verdict.duplicates == 0);
    CHECK(s.value("SELECT count(*) FROM outbox") == std::optional<std::string>("1500"));
    CHECK(s.value("SELECT count(*) FROM outbox WHERE published_at IS NULL") ==
          std::optional<std::string>("0"));
    CHECK(contains(relay.log(), "stopped; every published row was marked"));
}

TEST_CASE(
    "poll: kill -9 at random points during load, ten times: zero loss, duplicates at most a batch per kill") {
    PollStack s;
    RelayProcess& relay = s.streaming_relay(poll_config());
    WorkloadOptions load = steady_load(1303);
    load.max_rows = 30;
    load.aggregates = 40;
    Workload& workload = s.start_load(load, 0);
    std::mt19937 rng(20261201);
    std::size_t threshold = 0;
    constexpr int kKills = 10;
    for (int kill = 0; kill < kKills; ++kill) {
        threshold += std::uniform_int_distribution<std::size_t>(300, 1200)(rng);
        REQUIRE(s.consumer.wait_for_count(threshold, 60s));
        CHECK(workload.running());
        relay.kill9();
        relay.start();
        // The killed session's backend may still hold the table's lock for a moment: the new
        // relay waits as a standby until it is gone.
        REQUIRE(relay.wait_for_log(kPollingLine, 30s));
    }
    const Verdict verdict = finish_poll(s, workload, "kill -9 x10 at random points").verdict;
    CHECK(verdict.lost == 0);
    // Only the batch in flight at a kill is published again.
    CHECK(verdict.duplicates <= kKills * kBatch);
    MESSAGE("duplicates after 10 kills: " << verdict.duplicates);
}

TEST_CASE("poll: PostgreSQL restart -m immediate during load: the open batch rolls back, nothing lost") {
    PollStack s;
    RelayProcess& relay = s.streaming_relay(poll_config());
    Workload& workload = s.start_load(steady_load(1304), 800);
    s.pg.restart(PgCluster::StopMode::Immediate);
    REQUIRE(wait_until([&] { return polling_sessions(relay) >= 2; }, 60s, 50ms));
    const std::size_t after_restart = workload.committed_count();
    REQUIRE(wait_until([&] { return workload.committed_count() >= after_restart + 500; }, 60s));
    REQUIRE(s.consumer.wait_for_count(s.consumer.size() + 300, 60s));
    CHECK(workload.stats().reconnects > 0);
    const Verdict verdict = finish_poll(s, workload, "PostgreSQL restart -m immediate").verdict;
    CHECK(verdict.lost == 0);
    CHECK(verdict.duplicates <= kBatch);
}

TEST_CASE(
    "poll: all brokers down longer than message.timeout.ms during load: no row is deleted, then nothing "
    "lost") {
    PollStack s;
    RelayProcess& relay =
        s.streaming_relay(poll_config({.kafka_properties = {{"message.timeout.ms", "2000"}}}));
    Workload& workload = s.start_load(background_load(1305), 500);
    s.kafka.all_down();
    REQUIRE(relay.wait_for_log("Kafka delivery failed", 30s));
    // The next session polls again; its batch cannot be acknowledged, so it deletes nothing: the
    // table only grows while Kafka is away.
    REQUIRE(wait_until([&] { return polling_sessions(relay) >= 2; }, 30s, 50ms));
    const auto rows = [&] { return std::stoull(s.value("SELECT count(*) FROM outbox").value_or("0")); };
    std::uint64_t last = rows();
    CHECK(holds_for(
        [&] {
            const std::uint64_t now = rows();
            const bool grew = now >= last;
            last = now;
            return grew;
        },
        6s));
    CHECK(workload.running());
    s.kafka.all_up();
    REQUIRE(s.consumer.wait_for_count(s.consumer.size() + 500, 90s));
    const Verdict verdict = finish_poll(s, workload, "all brokers down").verdict;
    CHECK(verdict.lost == 0);
}

TEST_CASE(
    "poll: two relays on one table: the second waits as standby and takes over after kill -9 of the first") {
    PollStack s;
    RelayProcess& first = s.streaming_relay(poll_config());
    const auto standby = s.standby_place();
    RelayProcess& second =
        s.launch_relay(poll_config({.metrics_listen = standby.metrics_listen()}), {}, standby.dir);
    REQUIRE(second.wait_for_log("standby:", 30s));
    CHECK(contains(second.log(), "another instance polls outbox table public.outbox"));
    CHECK(wait_until([&] { return standby.standby_gauge() == 1.0; }, 10s, 100ms));
    Workload& workload = s.start_load(steady_load(1306), 800);
    CHECK(second.running());
    CHECK(polling_sessions(second) == 0);
    first.kill9();
    REQUIRE(second.wait_for_log("this instance takes over", 15s));
    CHECK(wait_until([&] { return standby.standby_gauge() == 0.0; }, 10s, 100ms));
    REQUIRE(s.consumer.wait_for_count(s.consumer.size() + 500, 60s));
    const Verdict verdict = finish_poll(s, workload, "two relays, kill -9 of the active one").verdict;
    CHECK(verdict.lost == 0);
    CHECK(verdict.duplicates <= kBatch);
}

TEST_CASE(
    "poll: a role without REPLICATION on a wal_level = replica server is enough - missing columns and "
    "privileges exit 78 with the fix in --preflight and at start") {
    RelayScenario s(RelayScenarioOptions{.pg = {.settings = {{"wal_level", "replica"}}}});
    CHECK(s.pg.query_value("SHOW wal_level") == std::optional<std::string>("replica"));
    s.pg.exec("CREATE ROLE poller LOGIN");
    s.pg.exec("GRANT SELECT ON outbox TO poller");
    const RelayConfig config = mark_config(
        {.dsn = "host=127.0.0.1 port=" + std::to_string(s.pg.port()) + " dbname=postgres user=poller"});
    const auto preflight = [&](const std::string& name) {
        const std::string path = s.pg.run_dir() + "/" + name + ".yaml";
        std::ofstream(path) << s.config(config).yaml();
        std::string output;
        const int rc = run_command(
            SpawnOptions{.argv = {relay_binary(), "--config", path, "--preflight"}, .stderr_path = "=stdout"},
            &output, 60s);
        MESSAGE("outbox-relay --preflight (" << name << "), exit " << rc << ":\n" << output);
        return std::make_pair(rc, output);
    };
    // No seq, no published_at yet.
    auto [rc, out] = preflight("no-columns");
    CHECK(rc == 78);
    CHECK(contains(out, "has no column \"seq\" (poll.order_by)"));
    CHECK(contains(s.expect_config_exit(config), "has no column \"seq\" (poll.order_by)"));

    make_pollable(s.pg, true);
    std::tie(rc, out) = preflight("no-update");
    CHECK(rc == 78);
    CHECK(contains(out, "GRANT UPDATE (\"published_at\") ON \"public\".\"outbox\" TO \"poller\";"));
    CHECK(contains(s.expect_config_exit(config), "GRANT UPDATE (\"published_at\")"));

    s.pg.exec("GRANT UPDATE (published_at) ON outbox TO poller");
    std::tie(rc, out) = preflight("ready");
    CHECK(rc == 0);
    CHECK(contains(out, "needs no REPLICATION attribute"));
    CHECK_FALSE(contains(out, "wal_level"));

    RelayProcess& relay = s.streaming_relay(config);
    s.pg.exec(
        "INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES "
        "('order', 'o-1', 'created', '{\"n\": 1}'), ('order', 'o-1', 'paid', '{\"n\": 2}')");
    const auto records = s.wait_for_records("outbox.event.order", 2);
    REQUIRE(records.size() == 2);
    CHECK(records[0].value == "{\"n\": 1}");
    CHECK(records[1].value == "{\"n\": 2}");
    CHECK(wait_until(
        [&] { return s.pg.query_value("SELECT count(*) FROM outbox WHERE published_at IS NULL") == "0"; },
        30s));
    CHECK(relay.terminate() == 0);
    s.check_nothing_created();
}

// Bad rows and bad configuration: never skipped silently, never confirmed past.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/lsn.h"
#include "outbox/router.h"
#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

// The relay as these tests run it: status updates every 500 ms, bad rows handled by `on_invalid`.
RelayConfig policy_config(RelayConfig::OnInvalid on_invalid) {
    return RelayConfig{.status_interval = 500ms, .on_invalid = on_invalid};
}

std::string header(const KafkaRecord& r, const std::string& name) {
    for (const auto& h : r.headers) {
        if (h.name == name) return h.value.value_or("<null>");
    }
    return "<absent>";
}

void insert(const PgCluster& pg, const std::string& id, const std::string& type_sql,
            const std::string& payload_sql) {
    pg.exec("INSERT INTO outbox VALUES ('" + id + "', " + type_sql + ", 'agg-1', 'Created', " + payload_sql +
            ")");
}

const std::string kGood1 = "00000000-0000-0000-0000-000000000001";
const std::string kNullType = "00000000-0000-0000-0000-000000000002";
const std::string kHuge = "00000000-0000-0000-0000-000000000003";
const std::string kGood2 = "00000000-0000-0000-0000-000000000004";
const std::string kHugePayload = "jsonb_build_object('blob', repeat('x', 1500000))";

}  // namespace

TEST_CASE(
    "relay: a NULL aggregate type and a payload over the message size limit go to the dead-letter topic") {
    RelayScenario s;
    RelayProcess& relay = s.streaming_relay(policy_config(RelayConfig::OnInvalid::DeadLetter));
    insert(s.pg, kGood1, "'order'", "'{\"n\": 1}'");
    insert(s.pg, kNullType, "NULL", "'{\"n\": 2}'");
    insert(s.pg, kHuge, "'order'", kHugePayload);
    insert(s.pg, kGood2, "'order'", "'{\"n\": 4}'");
    const Lsn end = s.wal_insert_lsn();

    const std::vector<KafkaRecord> dead = s.wait_for_records("outbox.dead_letter", 2);
    REQUIRE(dead.size() >= 2);
    CHECK(dead.size() == 2);
    std::map<std::string, KafkaRecord> by_id;
    for (const auto& r : dead) by_id[header(r, "id")] = r;
    REQUIRE(by_id.count(kNullType) == 1);
    REQUIRE(by_id.count(kHuge) == 1);
    const auto& null_type = by_id[kNullType];
    CHECK(header(null_type, "outbox-error-code") == "null_value");
    CHECK(header(null_type, "outbox-error") == "aggregate_type column \"aggregatetype\" is NULL");
    CHECK(header(null_type, "outbox-table") == "public.outbox");
    CHECK(null_type.key == "agg-1");
    CHECK(null_type.value == "{\"n\": 2}");
    const auto& huge = by_id[kHuge];
    CHECK(header(huge, "outbox-error-code") == "too_large");
    CHECK(header(huge, "outbox-error").find("Message size too large") != std::string::npos);
    CHECK(header(huge, "outbox-original-topic") == "outbox.event.order");
    CHECK(std::stoul(header(huge, "outbox-payload-bytes")) > 1500000);
    CHECK_FALSE(huge.value.has_value());

    const auto good = kcat_consume_all(s.kafka.bootstrap(), "outbox.event.order", 10s);
    REQUIRE(good.size() == 2);
    CHECK(header(good[0], "id") != header(good[1], "id"));
    // Handled events are confirmed like delivered ones: the slot moves past all four.
    CHECK(wait_until([&] { return s.slot_confirmed() >= end; }, 20s));
    CHECK(relay.log().find("sent to dead-letter topic \"outbox.dead_letter\" (null_value)") !=
          std::string::npos);
    CHECK(relay.terminate() == 0);
}

TEST_CASE("relay: with on_invalid: stop the relay stops at a bad row and confirms nothing past it") {
    RelayScenario s;
    RelayProcess& relay = s.streaming_relay(policy_config(RelayConfig::OnInvalid::Stop));
    insert(s.pg, kGood1, "'order'", "'{\"n\": 1}'");
    const Lsn after_good = s.wal_insert_lsn();
    insert(s.pg, kNullType, "NULL", "'{\"n\": 2}'");
    insert(s.pg, kGood2, "'order'", "'{\"n\": 4}'");

    const auto code = relay.wait_exit(60s);
    REQUIRE(code.has_value());
    CHECK(*code == 78);
    INFO(relay.log());
    CHECK(relay.log().find("stopped by on_invalid: stop: null_value") != std::string::npos);
    const Lsn confirmed = s.slot_confirmed();
    CHECK(confirmed <= after_good);
    const auto good = kcat_consume_all(s.kafka.bootstrap(), "outbox.event.order", 10s);
    REQUIRE(good.size() == 1);
    CHECK(header(good[0], "id") == kGood1);
    CHECK(kcat_consume_all(s.kafka.bootstrap(), "outbox.dead_letter", 5s).empty());

    // Started again, it stops at the same row: nothing was skipped.
    relay.start();
    const auto again = relay.wait_exit(60s);
    REQUIRE(again.has_value());
    CHECK(*again == 78);
    CHECK(s.slot_confirmed() == confirmed);
}

TEST_CASE("relay: bad configuration files exit non-zero naming the key and the line") {
    char tmpl[] = "/tmp/outbox-config-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    struct Case {
        std::string name;
        std::string yaml;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {"unknown-key",
         "postgres:\n  dsn: \"host=x\"\n  sttaus_interval: 1s\noutbox:\n  table: outbox\nkafka:\n  "
         "bootstrap_servers: x:9092\n",
         "unknown-key.yaml:3: postgres.sttaus_interval: unknown key"},
        {"wrong-type",
         "postgres:\n  dsn: \"host=x\"\noutbox:\n  table: outbox\nkafka:\n  bootstrap_servers: "
         "x:9092\nlimits:\n  max_inflight_events: lots\n",
         "wrong-type.yaml:8: limits.max_inflight_events"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const std::string path = dir + "/" + c.name + ".yaml";
        std::ofstream(path) << c.yaml;
        SpawnOptions opts{.argv = {relay_binary(), "--config", path}};
        opts.stderr_path = "=stdout";
        std::string out;
        const int rc = run_command(opts, &out, 30s);
        CHECK(rc == 78);
        CHECK(out.find(c.expected) != std::string::npos);
        // --check-config reports the same.
        opts.argv.push_back("--check-config");
        CHECK(run_command(opts, &out, 30s) == 78);
        CHECK(out.find(c.expected) != std::string::npos);
    }
    SpawnOptions missing{.argv = {relay_binary(), "--config", dir + "/nope.yaml"}};
    missing.stderr_path = "=stdout";
    std::string out;
    CHECK(run_command(missing, &out, 30s) == 78);
    CHECK(out.find("cannot read config file \"" + dir + "/nope.yaml\": No such file or directory") !=
          std::string::npos);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

// ---- text that is not UTF-8 where the relay expects text ----
//
// pgoutput sends text columns in the connection's client_encoding, and the relay asks for UTF8:
// a LATIN1 database's text reaches Kafka converted. A SQL_ASCII database stores bytes unchecked
// and the server does not convert them, so the relay itself must refuse what is not UTF-8.

TEST_CASE("relay: text from a LATIN1 database reaches Kafka as UTF-8") {
    RelayScenario s(RelayScenarioOptions{.dbname = "latin", .encoding = "LATIN1"});
    RelayProcess& relay = s.streaming_relay(policy_config(RelayConfig::OnInvalid::DeadLetter));
    // 'café' written as LATIN1 bytes (0xE9 is e-acute in LATIN1), whatever the session's encoding.
    const std::string cafe = "convert_from('\\x636166e9'::bytea, 'LATIN1')";
    s.pg.exec("INSERT INTO outbox VALUES ('" + kGood1 + "', 'order', " + cafe + ", " + cafe +
                  ", jsonb_build_object('name', " + cafe + "))",
              s.dbname());
    const std::vector<KafkaRecord> got = s.wait_for_records("outbox.event.order", 1);
    REQUIRE(!got.empty());
    REQUIRE(got.size() == 1);
    CHECK(got[0].key == "caf\xC3\xA9");
    CHECK(header(got[0], "type") == "caf\xC3\xA9");
    CHECK(got[0].value == "{\"name\": \"caf\xC3\xA9\"}");
    CHECK(relay.terminate() == 0);
}

TEST_CASE("relay: bytes that are not UTF-8 in a SQL_ASCII database go to the dead-letter topic") {
    RelayScenario s(RelayScenarioOptions{.dbname = "ascii", .encoding = "SQL_ASCII"});
    RelayProcess& relay = s.streaming_relay(policy_config(RelayConfig::OnInvalid::DeadLetter));
    // 'caf' + 0xE9: a LATIN1 e-acute stored unchecked, not UTF-8.
    const std::string bad = "convert_from('\\x636166e9'::bytea, 'SQL_ASCII')";
    const std::string kBadKey = "00000000-0000-0000-0000-0000000000b1";
    const std::string kBadPayload = "00000000-0000-0000-0000-0000000000b2";
    const std::string kBadHeader = "00000000-0000-0000-0000-0000000000b3";
    const std::string kBadType = "00000000-0000-0000-0000-0000000000b4";
    auto row = [&](const std::string& id, const std::string& type, const std::string& key,
                   const std::string& event_type, const std::string& payload) {
        s.pg.exec("INSERT INTO outbox VALUES ('" + id + "', " + type + ", " + key + ", " + event_type + ", " +
                      payload + ")",
                  s.dbname());
    };
    row(kGood1, "'order'", "'agg-1'", "'Created'", "'{\"n\": 1}'");
    row(kBadKey, "'order'", bad, "'Created'", "'{\"n\": 2}'");
    row(kBadPayload, "'order'", "'agg-1'", "'Created'", "jsonb_build_object('name', " + bad + ")");
    row(kBadHeader, "'order'", "'agg-1'", bad, "'{\"n\": 4}'");
    row(kBadType, bad, "'agg-1'", "'Created'", "'{\"n\": 5}'");
    row(kGood2, "'order'", "'agg-1'", "'Created'", "'{\"n\": 6}'");
    const Lsn end = s.wal_insert_lsn();

    const std::vector<KafkaRecord> dead = s.wait_for_records("outbox.dead_letter", 4);
    const bool all_dead = dead.size() >= 4;
    if (!all_dead) MESSAGE("dead-letter records: " << dead.size() << "; relay log:\n" << relay.log());
    REQUIRE(all_dead);
    CHECK(dead.size() == 4);
    std::map<std::string, KafkaRecord> by_id;
    for (const auto& r : dead) by_id[header(r, "id")] = r;
    REQUIRE(by_id.count(kBadKey) == 1);
    REQUIRE(by_id.count(kBadPayload) == 1);
    REQUIRE(by_id.count(kBadHeader) == 1);
    REQUIRE(by_id.count(kBadType) == 1);
    CHECK(header(by_id[kBadKey], "outbox-error-code") == "invalid_utf8");
    CHECK(header(by_id[kBadKey], "outbox-error").find("aggregateid") != std::string::npos);
    CHECK(header(by_id[kBadPayload], "outbox-error-code") == "invalid_utf8");
    CHECK(header(by_id[kBadPayload], "outbox-error").find("payload") != std::string::npos);
    CHECK(header(by_id[kBadHeader], "outbox-error-code") == "invalid_utf8");
    CHECK(header(by_id[kBadHeader], "outbox-error").find("type") != std::string::npos);
    CHECK(header(by_id[kBadType], "outbox-error-code") == "invalid_utf8");
    CHECK(header(by_id[kBadType], "outbox-error").find("aggregatetype") != std::string::npos);
    // The dead-letter record keeps the row's bytes as they were, for inspection.
    CHECK(by_id[kBadKey].key == "caf\xE9");

    const auto good = kcat_consume_all(s.kafka.bootstrap(), "outbox.event.order", 10s);
    REQUIRE(good.size() == 2);
    CHECK(header(good[0], "id") == kGood1);
    CHECK(header(good[1], "id") == kGood2);
    // Dead-lettered rows are handled, so the slot moves past all six; each was logged.
    CHECK(wait_until([&] { return s.slot_confirmed() >= end; }, 20s));
    CHECK(count_of(relay.log(), "(invalid_utf8)") == 4);
    CHECK(relay.terminate() == 0);
}

TEST_CASE(
    "relay: slot_failover follows the server version: a failover slot on 17+, a configuration error before") {
    RelayScenario s;
    const int version = std::stoi(s.pg.query_value("SHOW server_version_num").value_or("0"));
    RelayProcess& relay = s.launch_relay({.slot_failover = "true"});
    if (version < 170000) {
        const auto rc = relay.wait_exit(30s);
        REQUIRE(rc.has_value());
        CHECK(*rc == 78);
        CHECK(contains(relay.log(), "postgres.slot_failover is true, but PostgreSQL"));
        CHECK(contains(relay.log(),
                       "(server_version_num " + std::to_string(version) + ") has no failover slots"));
        // Checked before anything was created.
        CHECK(s.pg.query_value("SELECT count(*) FROM pg_replication_slots") ==
              std::optional<std::string>("0"));
        CHECK(s.pg.query_value("SELECT count(*) FROM pg_publication") == std::optional<std::string>("0"));
        return;
    }
    REQUIRE(relay.wait_streaming());
    CHECK(s.pg.query_value(
              "SELECT failover::text FROM pg_replication_slots WHERE slot_name = 'outbox_relay'") ==
          std::optional<std::string>("true"));
    // No synchronized_standby_slots on this lone server: the relay says what that risks.
    CHECK(relay.wait_for_log("synchronized_standby_slots is not set", 10s));
}

TEST_CASE(
    "relay: Kafka timestamps are the commit time or a column, a header can be renamed, relay headers left "
    "out") {
    RelayScenario s;
    {
        RelayProcess& relay =
            s.streaming_relay({.headers = {"type:event-type"}, .relay_headers = {{"outbox-commit-time"}}});
        insert(s.pg, kGood1, "'order'", "'{\"n\": 1}'");
        const auto records = s.wait_for_records("outbox.event.order", 1);
        REQUIRE(records.size() == 1);
        std::int64_t commit_ms = 0;
        REQUIRE(parse_timestamp_ms(header(records[0], "outbox-commit-time"), commit_ms));
        CHECK(records[0].timestamp_ms == commit_ms);
        CHECK(header(records[0], "event-type") == "Created");
        CHECK(header(records[0], "type") == "<absent>");
        CHECK(header(records[0], "id") == kGood1);
        CHECK(header(records[0], "outbox-lsn") == "<absent>");
        CHECK(header(records[0], "outbox-xid") == "<absent>");
        CHECK(records[0].headers.size() == 3);  // id, event-type, outbox-commit-time
        CHECK(relay.terminate() == 0);
    }
    RelayProcess& relay = s.streaming_relay({.timestamp = "column", .timestamp_column = "created_at"});
    s.pg.exec("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, created_at) VALUES ('" +
              kGood2 + "', 'column', 'agg-2', 'Created', '{}', '2021-06-01 12:00:00.250+00')");
    const auto records = s.wait_for_records("outbox.event.column", 1);
    REQUIRE(records.size() == 1);
    CHECK(records[0].timestamp_ms == 1622548800250);
    CHECK(relay.terminate() == 0);
}

TEST_CASE(
    "relay: an UPDATE of an outbox row is reported under on_update warn, a DELETE stops the relay under "
    "stop") {
    RelayScenario s;
    RelayProcess& relay = s.streaming_relay({.on_update = "warn", .on_delete = "stop"});
    CHECK(s.pg.query_value("SELECT pubupdate::text || pubdelete::text FROM pg_publication") ==
          std::optional<std::string>("truetrue"));
    insert(s.pg, kGood1, "'order'", "'{\"n\": 1}'");
    s.pg.exec("UPDATE outbox SET payload = '{\"n\": 2}' WHERE id = '" + kGood1 + "'");
    insert(s.pg, kGood2, "'order'", "'{\"n\": 3}'");
    REQUIRE(s.wait_for_records("outbox.event.order", 2).size() == 2);
    CHECK(relay.wait_for_log("an UPDATE of a row of outbox table public.outbox", 10s));
    const Lsn before_delete = s.wal_insert_lsn();
    REQUIRE(wait_until([&] { return s.slot_confirmed() >= before_delete; }, 30s));  // the update held nothing
    s.pg.exec("DELETE FROM outbox WHERE id = '" + kGood1 + "'");
    const auto rc = relay.wait_exit(30s);
    REQUIRE(rc.has_value());
    CHECK(*rc == 78);
    CHECK(contains(relay.log(), "unexpected_delete: a DELETE of a row of outbox table public.outbox"));
    CHECK(s.slot_confirmed() < s.wal_insert_lsn());  // nothing past the DELETE confirmed
}

TEST_CASE("relay: on_update warn on a table without a replica identity exits 78 before anything is created") {
    RelayScenario s;
    s.pg.exec("ALTER TABLE outbox DROP CONSTRAINT outbox_pkey");
    RelayProcess& relay = s.launch_relay({.on_update = "warn"});
    const auto rc = relay.wait_exit(30s);
    REQUIRE(rc.has_value());
    CHECK(*rc == 78);
    CHECK(contains(relay.log(), "outbox table public.outbox has no replica identity"));
    CHECK(s.pg.query_value("SELECT count(*) FROM pg_publication") == std::optional<std::string>("0"));
    CHECK(s.pg.query_value("SELECT count(*) FROM pg_replication_slots") == std::optional<std::string>("0"));
}

TEST_CASE("relay: JSON log records carry the slot, and event records the xid, LSN, topic and error code") {
    RelayScenario s;
    RelayConfig config = policy_config(RelayConfig::OnInvalid::DeadLetter);
    config.log_format = "json";
    RelayProcess& relay = s.streaming_relay(config);
    insert(s.pg, kNullType, "NULL", "'{\"n\": 2}'");
    REQUIRE(relay.wait_for_log("\"error_code\":\"null_value\"", 30s));
    std::string line;
    std::istringstream lines(relay.log());
    while (std::getline(lines, line) && line.find("\"error_code\":\"null_value\"") == std::string::npos) {
    }
    CHECK(line.rfind("{\"time\":\"", 0) == 0);
    CHECK(contains(line, "\"level\":\"warning\""));
    CHECK(contains(line, "\"slot\":\"outbox_relay\""));
    CHECK(contains(line, "\"topic\":\"outbox.dead_letter\""));
    CHECK(contains(line, "\"xid\":\""));
    CHECK(contains(line, "\"lsn\":\""));
    CHECK(contains(relay.log(), "\"timeline\":\"1\""));  // the session start's record
}

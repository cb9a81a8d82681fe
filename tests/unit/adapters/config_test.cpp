#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "config/config.h"

using namespace std::chrono_literals;
using namespace outbox::config;

namespace {

#define CONFIG_TEST_REST       \
    "outbox:\n"                \
    "  table: public.outbox\n" \
    "kafka:\n"                 \
    "  bootstrap_servers: \"localhost:9092\"\n"

std::string fixtures() {
    return OUTBOX_FIXTURE_DIR "/config";
}
// The shipped config/ directory of the source tree.
std::string shipped() {
    return OUTBOX_FIXTURE_DIR "/../../../config";
}
// Everything after the postgres section (4 lines), for tests that write their own postgres part.
std::string rest() {
    return CONFIG_TEST_REST;
}
// The smallest valid configuration (6 lines); tests append to it.
std::string minimal() {
    return "postgres:\n  dsn: \"host=/tmp dbname=app\"\n" CONFIG_TEST_REST;
}

// Sets (or unsets) an environment variable for the lifetime of the object.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        // NOLINTBEGIN(concurrency-mt-unsafe): tests run on one thread
        if (const char* old = std::getenv(name)) old_ = old;
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
        // NOLINTEND(concurrency-mt-unsafe)
    }
    ~ScopedEnv() {
        // NOLINTBEGIN(concurrency-mt-unsafe)
        if (old_) {
            ::setenv(name_.c_str(), old_->c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
        // NOLINTEND(concurrency-mt-unsafe)
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

// A temporary directory removed (with its files) at scope exit.
class TempDir {
public:
    TempDir() {
        std::string tmpl = "/tmp/outbox-config-test.XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        for (const auto& f : files_) ::unlink(f.c_str());
        ::rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string write(const std::string& name, std::string_view content) {
        std::string file = path_ + "/" + name;
        std::ofstream out(file, std::ios::binary);
        out << content;
        files_.push_back(file);
        return file;
    }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<std::string> files_;
};

// The message of the Config error that loading `yaml` throws.
std::string load_error(std::string_view yaml, std::string_view origin = "config.yaml") {
    try {
        load_config_string(yaml, origin);
    } catch (const outbox::Error& e) {
        CHECK(e.kind() == outbox::ErrorKind::Config);
        return e.what();
    }
    FAIL("expected a configuration error for:\n" << yaml);
    return {};
}

std::string file_error(const std::string& path) {
    try {
        load_config_file(path);
    } catch (const outbox::Error& e) {
        CHECK(e.kind() == outbox::ErrorKind::Config);
        return e.what();
    }
    FAIL("expected a configuration error for " << path);
    return {};
}

std::string with(std::string_view extra) {
    return minimal() + std::string(extra);
}

}  // namespace

// ---- valid files -------------------------------------------------------------------------

TEST_CASE("config: a full file round-trips every key") {
    ScopedEnv creds("CREDENTIALS_DIRECTORY", nullptr);
    const Config c = load_config_file(fixtures() + "/full.yaml");
    CHECK(c.origin == fixtures() + "/full.yaml");

    CHECK(c.postgres.dsn == "host=db.internal port=5433 dbname=app user=relay password='s3 cret'");
    REQUIRE(c.postgres.password_file.has_value());
    CHECK(*c.postgres.password_file == "/run/credentials/outbox-relay/pg-password");
    CHECK(c.postgres.slot == "relay_slot");
    CHECK(c.postgres.publication == "relay_pub");
    CHECK_FALSE(c.postgres.create_slot);
    CHECK_FALSE(c.postgres.create_publication);
    CHECK(c.postgres.status_interval == 2500ms);

    REQUIRE(c.outbox.tables.size() == 3);
    CHECK(c.outbox.tables[0] == TableName{"public", "outbox"});
    CHECK(c.outbox.tables[1] == TableName{"billing", "outbox"});
    CHECK(c.outbox.tables[2] == TableName{"Sales", "Out.Box"});
    CHECK(c.outbox.tables[2].qualified() == "Sales.Out.Box");
    CHECK(c.outbox.tables[2].quoted() == "\"Sales\".\"Out.Box\"");
    CHECK(c.outbox.columns.id == "event_id");
    CHECK(c.outbox.columns.aggregate_type == "agg_type");
    CHECK(c.outbox.columns.aggregate_id == "agg_id");
    CHECK(c.outbox.columns.payload == "body");
    CHECK(c.outbox.topic == "events.{table}.{aggregate_type}-v1");
    using K = TopicSegment::Kind;
    CHECK(c.outbox.topic_segments == std::vector<TopicSegment>{{K::Literal, "events."},
                                                               {K::Table, ""},
                                                               {K::Literal, "."},
                                                               {K::AggregateType, ""},
                                                               {K::Literal, "-v1"}});
    CHECK_FALSE(c.outbox.topic_is_fixed());
    CHECK(c.outbox.headers == std::vector<HeaderColumn>{"type", {"trace_id", "traceparent"}});
    CHECK(c.outbox.relay_headers == CommitHeaders{.lsn = true, .xid = false, .commit_time = true});
    CHECK(c.outbox.timestamp == TimestampSource::Column);
    CHECK(c.outbox.columns.timestamp == "created_at");
    CHECK(c.outbox.tombstone_on_empty_payload);
    CHECK(c.outbox.on_update == OperationPolicy::Warn);
    CHECK(c.outbox.on_delete == OperationPolicy::Stop);
    CHECK(c.outbox.on_invalid == OnInvalid::Stop);
    CHECK(c.outbox.dead_letter_topic == "relay.dlq");

    CHECK(c.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092");
    const std::vector<std::pair<std::string, std::string>> props{
        {"linger.ms", "5"}, {"compression.type", "zstd"},        {"enable.idempotence", "true"},
        {"acks", "all"},    {"socket.keepalive.enable", "true"}, {"sasl.password", "hunter2"},
    };
    CHECK(c.kafka.properties == props);

    CHECK(c.limits.max_inflight_events == 5000);
    CHECK(c.limits.max_inflight_bytes == 16'000'000);
    CHECK(c.metrics.enabled);
    CHECK(c.metrics.host == "::1");
    CHECK(c.metrics.port == 9999);
    CHECK(c.log.level == LogLevel::Debug);
    CHECK(c.log.format == LogFormat::Json);
}

TEST_CASE("config: a full poll file round-trips every poll key") {
    const Config c = load_config_file(fixtures() + "/full_poll.yaml");
    CHECK(c.source == Source::Poll);
    CHECK(c.outbox.tables == std::vector<TableName>{{"billing", "outbox"}});
    CHECK(c.outbox.columns.id == "event_id");
    CHECK(c.poll.interval == 750ms);
    CHECK(c.poll.batch_size == 500);
    CHECK(c.poll.order_by == "seq");
    CHECK(c.poll.after_publish == AfterPublish::Mark);
    CHECK(c.poll.published_column == "published_at");
    const std::string text = describe(c);
    CAPTURE(text);
    CHECK(text.find("\nsource: poll\n") != std::string::npos);
    CHECK(text.find(
              "\npoll:\n  interval: 750ms\n  batch_size: 500\n  order_by: seq\n  after_publish: mark (sets "
              "published_at)\n") != std::string::npos);
}

TEST_CASE("config: source: poll defaults, and the keys each source refuses, naming key and line") {
    const std::string head = "postgres:\n  dsn: x=y\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n";
    SUBCASE("defaults") {
        const Config wal = load_config_string(head, "t");
        CHECK(wal.source == Source::Wal);
        const Config c = load_config_string("source: poll\n" + head, "t");
        CHECK(c.source == Source::Poll);
        CHECK(c.poll.order_by == "id");
        CHECK(c.poll.interval == 200ms);
        CHECK(c.poll.batch_size == 1000);
        CHECK(c.poll.after_publish == AfterPublish::Delete);
        CHECK(c.poll.published_column.empty());
    }
    SUBCASE("poll keys with source: wal") {
        const std::string error = load_error(head + "poll:\n  interval: 1s\n  order_by: seq\n");
        CHECK(error ==
              "config.yaml:8: poll.interval: only used with source: poll (source is wal)\n"
              "config.yaml:9: poll.order_by: only used with source: poll (source is wal)");
    }
    SUBCASE("WAL-only keys with source: poll") {
        const std::string error = load_error(
            "source: poll\npostgres:\n  dsn: x=y\n  slot: s\n  state_file: /x\noutbox:\n  table: t\n  "
            "on_update: warn\n  messages: {prefix: outbox}\nkafka:\n  bootstrap_servers: k:1\npoll:\n  "
            "order_by: seq\n");
        CHECK(
            error ==
            "config.yaml:4: postgres.slot: only used with source: wal (logical replication); remove it for "
            "source: poll\n"
            "config.yaml:5: postgres.state_file: only used with source: wal (logical replication); remove it "
            "for source: poll\n"
            "config.yaml:8: outbox.on_update: only used with source: wal (logical replication); remove it "
            "for "
            "source: poll\n"
            "config.yaml:9: outbox.messages: only used with source: wal (logical replication); remove it for "
            "source: poll");
    }
    SUBCASE("batch_size bounded by the in-flight limit, also when left at its default") {
        CHECK(load_error("source: poll\n" + head + "limits: {max_inflight_events: 100}\n") ==
              "config.yaml:1: poll.batch_size: must be at most limits.max_inflight_events (100), got 1000: a "
              "batch is published whole before its rows are deleted");
        CHECK(load_error("source: poll\n" + head +
                         "limits: {max_inflight_events: 100}\npoll:\n  order_by: seq\n  batch_size: 101\n") ==
              "config.yaml:11: poll.batch_size: must be at most limits.max_inflight_events (100), got 101: a "
              "batch is published whole before its rows are deleted");
    }
    SUBCASE("mark needs published_column, which means nothing otherwise") {
        CHECK(
            load_error("source: poll\n" + head + "poll:\n  order_by: seq\n  after_publish: mark\n") ==
            "config.yaml:10: poll.after_publish: poll.after_publish is mark, but poll.published_column names "
            "no column");
        CHECK(
            load_error("source: poll\n" + head + "poll:\n  order_by: seq\n  published_column: p\n") ==
            "config.yaml:10: poll.published_column: poll.published_column is set, but poll.after_publish is "
            "not mark (it would be ignored)");
    }
    SUBCASE("one table") {
        CHECK(load_error("source: poll\npostgres: {dsn: x=y}\noutbox:\n  tables: [a, b]\nkafka: "
                         "{bootstrap_servers: k:1}\npoll: {order_by: seq}\n") ==
              "config.yaml:4: outbox.tables: source: poll polls one table; run one relay per table");
    }
    SUBCASE("an unknown source") {
        CHECK(load_error("source: logical\n" + head) ==
              "config.yaml:1: source: expected one of wal, poll, got \"logical\"");
    }
}

TEST_CASE("config: defaults when keys are omitted") {
    const Config c = load_config_string(minimal(), "minimal.yaml");
    CHECK(c.origin == "minimal.yaml");
    CHECK(c.postgres.dsn == "host=/tmp dbname=app");
    CHECK_FALSE(c.postgres.password_file.has_value());
    CHECK(c.postgres.slot == "outbox_relay");
    CHECK(c.postgres.publication == "outbox_relay");
    CHECK(c.postgres.create_slot);
    CHECK(c.postgres.create_publication);
    CHECK(c.postgres.status_interval == 10s);

    CHECK(c.outbox.tables == std::vector<TableName>{{"public", "outbox"}});
    CHECK(c.outbox.columns.id == "id");
    CHECK(c.outbox.columns.aggregate_type == "aggregatetype");
    CHECK(c.outbox.columns.aggregate_id == "aggregateid");
    CHECK(c.outbox.columns.payload == "payload");
    CHECK(c.outbox.topic == "outbox.event.{aggregate_type}");
    CHECK(c.outbox.topic_segments == std::vector<TopicSegment>{{TopicSegment::Kind::Literal, "outbox.event."},
                                                               {TopicSegment::Kind::AggregateType, ""}});
    CHECK(c.outbox.headers.empty());
    CHECK(c.outbox.on_invalid == OnInvalid::DeadLetter);
    CHECK(c.outbox.dead_letter_topic == "outbox.dead_letter");

    CHECK(c.kafka.bootstrap_servers == "localhost:9092");
    CHECK(c.kafka.properties.empty());
    CHECK(c.limits.max_inflight_events == 100000);
    CHECK(c.limits.max_inflight_bytes == 64ull * 1024 * 1024);
    CHECK(c.metrics.enabled);
    CHECK(c.metrics.host == "127.0.0.1");
    CHECK(c.metrics.port == 9187);
    CHECK(c.log.level == LogLevel::Info);
    CHECK(c.log.format == LogFormat::Text);
}

TEST_CASE("config: small valid variations") {
    SUBCASE("a table without schema is in public; unquoted names fold to lower case") {
        const Config c = load_config_string(
            "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox:\n  tables: [Outbox, "
            "App.Events]\n",
            "t");
        CHECK(c.outbox.tables == std::vector<TableName>{{"public", "outbox"}, {"app", "events"}});
    }
    SUBCASE("metrics disabled, logging off") {
        const Config c = load_config_string(with("metrics: {listen: \"\"}\nlog: {level: off}\n"), "t");
        CHECK_FALSE(c.metrics.enabled);
        CHECK(c.log.level == LogLevel::Off);
    }
    SUBCASE("a fixed topic name") {
        const Config f = load_config_string(
            "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox: {table: o, topic: "
            "orders-v1.events}\n",
            "t");
        CHECK(f.outbox.topic_is_fixed());
        CHECK(f.outbox.topic_segments ==
              std::vector<TopicSegment>{{TopicSegment::Kind::Literal, "orders-v1.events"}});
    }
    SUBCASE("empty sections use the defaults") {
        const Config c = load_config_string(with("limits:\nmetrics:\nlog:\n"), "t");
        CHECK(c.limits.max_inflight_events == 100000);
        CHECK(c.metrics.port == 9187);
    }
    SUBCASE("metrics.listen forms") {
        Config c = load_config_string(with("metrics: {listen: \"0.0.0.0:0\"}\n"), "t");
        CHECK(c.metrics.host == "0.0.0.0");
        CHECK(c.metrics.port == 0);
        c = load_config_string(with("metrics: {listen: \"localhost:65535\"}\n"), "t");
        CHECK(c.metrics.host == "localhost");
        CHECK(c.metrics.port == 65535);
    }
    SUBCASE("stop allows an empty dead_letter_topic") {
        const Config c = load_config_string(
            "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\n"
            "outbox: {table: o, on_invalid: stop, dead_letter_topic: \"\"}\n",
            "t");
        CHECK(c.outbox.on_invalid == OnInvalid::Stop);
        CHECK(c.outbox.dead_letter_topic.empty());
    }
}

// ---- errors ------------------------------------------------------------------------------

TEST_CASE("config: missing file and YAML syntax errors") {
    CHECK(file_error("/nonexistent/x.yaml") ==
          "cannot read config file \"/nonexistent/x.yaml\": No such file or directory");
    CHECK(file_error(fixtures()) == "cannot read config file \"" + fixtures() + "\": Is a directory");

    const std::string path = fixtures() + "/syntax_error.yaml";
    const std::string msg = file_error(path);
    CHECK(msg.rfind(path + ":6:6: ", 0) == 0);  // yaml-cpp notices at the next line
    CHECK(msg.find("end of sequence flow not found") != std::string::npos);

    CHECK(load_error("a: b\n c: d\n", "inline.yaml") == "inline.yaml:2:3: illegal map value");
}

TEST_CASE("config: an invalid choice names file, line and key") {
    CHECK(load_error("postgres:\n  dsn: x=y\noutbox:\n  table: t\n  on_invalid: skip\nkafka:\n"
                     "  bootstrap_servers: k:1\n") ==
          "config.yaml:5: outbox.on_invalid: expected one of dead_letter, stop, got \"skip\"");
    // Appended text lands in the kafka section: the right key in the wrong section.
    CHECK(load_error(with("  on_invalid: stop\n")) ==
          "config.yaml:7: kafka.on_invalid: unknown key (did you mean outbox.on_invalid?)");
    CHECK(load_error(with("log:\n  level: verbose\n")) ==
          "config.yaml:8: log.level: expected one of trace, debug, info, warn, error, critical, off, got "
          "\"verbose\"");
    CHECK(load_error(with("log:\n  format: xml\n")) ==
          "config.yaml:8: log.format: expected one of text, json, got \"xml\"");
}

TEST_CASE("config: unknown keys with suggestions") {
    CHECK(load_error("postgres:\n  dsn: x=y\n  sttaus_interval: 10s\n" + rest()) ==
          "config.yaml:3: postgres.sttaus_interval: unknown key (did you mean status_interval?)");
    CHECK(load_error(with("limtis:\n  max_inflight_events: 5\n")) ==
          "config.yaml:7: limtis: unknown key (did you mean limits?)");
    CHECK(load_error(with("colour: blue\n")) == "config.yaml:7: colour: unknown key");
    CHECK(
        load_error("postgres:\n  dsn: x=y\n  table: public.outbox\nkafka:\n  bootstrap_servers: k:1\n") ==
        "config.yaml:1: outbox.table: required key is missing (or list several under outbox.tables), or set "
        "outbox.messages.prefix\n"
        "config.yaml:3: postgres.table: unknown key (did you mean outbox.table?)");
}

TEST_CASE("config: integers, sizes and durations are checked") {
    CHECK(load_error(with("limits:\n  max_inflight_events: lots\n")) ==
          "config.yaml:8: limits.max_inflight_events: expected a positive integer, got \"lots\"");
    CHECK(load_error(with("limits:\n  max_inflight_events: 0\n")) ==
          "config.yaml:8: limits.max_inflight_events: expected a positive integer, got \"0\"");
    CHECK(load_error(with("limits:\n  max_inflight_events: -5\n")) ==
          "config.yaml:8: limits.max_inflight_events: expected a positive integer, got \"-5\"");
    CHECK(load_error(with("limits:\n  max_inflight_events: 99999999999999999999999\n")) ==
          "config.yaml:8: limits.max_inflight_events: \"99999999999999999999999\" is too large");
    CHECK(load_error(with("limits:\n  max_inflight_bytes: 64XB\n"))
              .find("config.yaml:8: limits.max_inflight_bytes: expected a size (") == 0);
    CHECK(load_error(with("limits:\n  max_inflight_bytes: 0MiB\n")) ==
          "config.yaml:8: limits.max_inflight_bytes: must be greater than 0, got \"0MiB\"");
    const std::string bare = load_error("postgres:\n  dsn: x=y\n  status_interval: 10\n" + rest());
    CHECK(bare.find("config.yaml:3: postgres.status_interval: ") == 0);
    CHECK(bare.find("units are required") != std::string::npos);
    CHECK(load_error("postgres:\n  dsn: x=y\n  status_interval: 0s\n" + rest()) ==
          "config.yaml:3: postgres.status_interval: must be greater than 0, got \"0s\"");
    CHECK(load_error("postgres:\n  dsn: x=y\n  create_slot: maybe\n" + rest()) ==
          "config.yaml:3: postgres.create_slot: expected true or false, got \"maybe\"");
}

TEST_CASE("config: missing required keys name the key and the line of the parent map") {
    CHECK(load_error("postgres:\n  slot: s\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n") ==
          "config.yaml:1: postgres.dsn: required key is missing");
    CHECK(load_error("outbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\npostgres:\n  slot: s\n") ==
          "config.yaml:5: postgres.dsn: required key is missing");
    CHECK(load_error("postgres:\n  dsn: x=y\noutbox:\n  table: t\nkafka:\n  properties: {}\n") ==
          "config.yaml:5: kafka.bootstrap_servers: required key is missing");
    // A whole section missing: reported against the top-level map (line 1).
    CHECK(load_error("postgres:\n  dsn: x=y\noutbox:\n  table: t\n") ==
          "config.yaml:1: kafka.bootstrap_servers: required key is missing");
    CHECK(load_error("postgres:\n  dsn: \"\"\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n") ==
          "config.yaml:2: postgres.dsn: must not be empty");
    CHECK(load_error("").find("config.yaml:1: the configuration is empty") == 0);
    CHECK(load_error("# nothing but a comment\n").find("config.yaml:1: the configuration is empty") == 0);
}

TEST_CASE("config: wrong node types name key and line") {
    CHECK(load_error(
              "postgres:\n  dsn:\n    host: x\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n") ==
          "config.yaml:2: postgres.dsn: expected a string, got a map");
    CHECK(load_error("postgres:\n  - dsn: x\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n") ==
          "config.yaml:1: postgres: expected a map, got a sequence\n"
          "config.yaml:1: postgres.dsn: required key is missing");
    CHECK(load_error(with("limits: 5\n")) == "config.yaml:7: limits: expected a map, got a scalar");
    CHECK(load_error(with("  properties: [a, b]\n")) ==
          "config.yaml:7: kafka.properties: expected a map, got a sequence");
    CHECK(load_error(with("  properties:\n    linger.ms: [5]\n")) ==
          "config.yaml:8: kafka.properties.linger.ms: expected a string, number or boolean, got a sequence");
    CHECK(load_error("postgres:\n  dsn: x=y\noutbox:\n  table: t\n  headers: type\nkafka:\n  "
                     "bootstrap_servers: k:1\n") ==
          "config.yaml:5: outbox.headers: expected a sequence, got a scalar");
    CHECK(load_error(
              "postgres:\n  dsn: x=y\n  slot:\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n") ==
          "config.yaml:3: postgres.slot: expected a string, got no value");
    CHECK(load_error("- a\n- b\n") == "config.yaml:1: expected a map at the top level, got a sequence");
    CHECK(load_error(with("postgres:\n  dsn: y\n")) ==
          "config.yaml:7: postgres: duplicate key (first set at line 1)");
}

TEST_CASE("config: all errors of a file are reported together, one per line, in file order") {
    const std::string path = fixtures() + "/several_errors.yaml";
    CHECK(file_error(path) ==
          path + ":3: postgres.sttaus_interval: unknown key (did you mean status_interval?)\n" + path +
              ":6: outbox.on_invalid: expected one of dead_letter, stop, got \"skip\"\n" + path +
              ":10: limits.max_inflight_events: expected a positive integer, got \"lots\"");
}

TEST_CASE("config: outbox tables") {
    const std::string head = "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox:\n";
    CHECK(load_error(head + "  table: a.b.c\n") ==
          "config.yaml:4: outbox.table: expected schema.table or table, got \"a.b.c\" (too many dots)");
    CHECK(load_error(head + "  table: public.\n") ==
          "config.yaml:4: outbox.table: expected schema.table or table, got \"public.\": empty identifier");
    CHECK(load_error(head + "  table: \"my table\"\n")
              .find("config.yaml:4: outbox.table: expected schema.table or "
                    "table, got \"my table\": \" \" is not allowed") == 0);
    CHECK(load_error(head + "  table: \"\"\n") ==
          "config.yaml:4: outbox.table: expected schema.table or table, got \"\": empty identifier");
    CHECK(load_error(head + "  tables: []\n") ==
          "config.yaml:4: outbox.tables: must list at least one table");
    CHECK(load_error(head + "  tables:\n    - public.outbox\n    - Outbox\n") ==
          "config.yaml:6: outbox.tables[1]: duplicate table public.outbox (also at line 5)");
    CHECK(load_error(head + "  table: a\n  tables: [b]\n") ==
          "config.yaml:5: outbox: set either table or tables, not both");
    CHECK(load_error(head + "  columns: {id: \"\"}\n  table: t\n") ==
          "config.yaml:4: outbox.columns.id: must not be empty");
}

TEST_CASE("config: topic templates and names") {
    const std::string head = "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox:\n  table: t\n";
    CHECK(load_error(head + "  topic: \"outbox.{aggregate}\"\n") ==
          "config.yaml:5: outbox.topic: unknown placeholder {aggregate} in topic template "
          "\"outbox.{aggregate}\" "
          "(known: {aggregate_type}, {aggregate_id}, {id}, {table})");
    CHECK(load_error(head + "  topic: \"outbox.{id\"\n")
              .find("config.yaml:5: outbox.topic: unterminated placeholder") == 0);
    CHECK(load_error(head + "  topic: \"orders events\"\n") ==
          "config.yaml:5: outbox.topic: \"orders events\" is not a legal Kafka topic name: \" \" is not "
          "allowed "
          "(use a-z, A-Z, 0-9, '.', '_' and '-')");
    CHECK(load_error(head + "  topic: \"..\"\n") ==
          "config.yaml:5: outbox.topic: \"..\" is not a legal Kafka topic name");
    CHECK(load_error(head + "  topic: " + std::string(250, 'a') + "\n")
              .find("is not a legal Kafka topic name (at most 249 characters, got 250)") !=
          std::string::npos);
    CHECK(load_error(head + "  topic: \"a/{id}\"\n")
              .find("config.yaml:5: outbox.topic: \"/\" is not allowed") == 0);
    CHECK(load_error(head + "  dead_letter_topic: \"dead letters\"\n")
              .find("config.yaml:5: outbox.dead_letter_topic: \"dead letters\" is not a legal Kafka topic "
                    "name") == 0);
    CHECK(load_error(head + "  dead_letter_topic: \"\"\n") ==
          "config.yaml:5: outbox.dead_letter_topic: must not be empty when outbox.on_invalid is dead_letter");
    CHECK(load_error(head + "  topic: events\n  dead_letter_topic: events\n") ==
          "config.yaml:6: outbox.dead_letter_topic: the dead-letter topic must differ from outbox.topic "
          "(\"events\")");
}

TEST_CASE("config: relay_headers names a subset of the commit headers, by default all three") {
    const std::string head =
        "postgres:\n  dsn: x=y\nkafka:\n  bootstrap_servers: k:9092\noutbox:\n  table: t\n";
    CHECK(load_config_string(head, "config.yaml").outbox.relay_headers == CommitHeaders{});
    CHECK(load_config_string(head + "  relay_headers: []\n", "config.yaml").outbox.relay_headers ==
          CommitHeaders{.lsn = false, .xid = false, .commit_time = false});
    CHECK(load_config_string(head + "  relay_headers: [outbox-xid]\n", "config.yaml").outbox.relay_headers ==
          CommitHeaders{.lsn = false, .xid = true, .commit_time = false});
    CHECK(load_error(head + "  relay_headers: [outbox-lsn, id]\n") ==
          "config.yaml:7: outbox.relay_headers[1]: \"id\" is not one of outbox-lsn, outbox-xid, "
          "outbox-commit-time");
    CHECK(load_error(head + "  relay_headers:\n    - outbox-xid\n    - outbox-xid\n") ==
          "config.yaml:9: outbox.relay_headers[1]: duplicate header \"outbox-xid\" (also at line 8)");
    CHECK(load_error(head + "  relay_headers: outbox-xid\n") ==
          "config.yaml:7: outbox.relay_headers: expected a sequence, got a scalar");
}

TEST_CASE("config: headers must not repeat") {
    const std::string head = "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox:\n  table: t\n";
    CHECK(load_error(head + "  headers:\n    - type\n    - trace\n    - type\n") ==
          "config.yaml:8: outbox.headers[2]: duplicate header \"type\" (also at line 6)");
    CHECK(load_error(head + "  headers: [type, \"\"]\n") ==
          "config.yaml:5: outbox.headers[1]: must not be empty");
}

TEST_CASE("config: kafka.properties may not weaken delivery guarantees") {
    const auto err = [](std::string_view props) {
        return load_error(minimal() + "  properties:\n" + std::string(props));
    };
    std::string msg = err("    enable.idempotence: false\n");
    CHECK(
        msg.find(
            "config.yaml:8: kafka.properties.enable.idempotence: the relay requires enable.idempotence=true "
            "(got \"false\")") == 0);
    CHECK(msg.find("at-least-once") != std::string::npos);
    msg = err("    acks: 1\n");
    CHECK(msg.find("config.yaml:8: kafka.properties.acks: the relay requires acks=all (-1), got \"1\"") == 0);
    CHECK(err("    request.required.acks: 0\n")
              .find("kafka.properties.request.required.acks: the relay requires "
                    "acks=all") != std::string::npos);
    CHECK(
        err("    bootstrap.servers: other:9092\n") ==
        "config.yaml:8: kafka.properties.bootstrap.servers: conflicts with kafka.bootstrap_servers: list the "
        "brokers there only");
    CHECK(err("    enable.auto.commit: true\n")
              .find("kafka.properties.enable.auto.commit: is a consumer property") != std::string::npos);
    CHECK(err("    transactional.id: x\n").find("kafka.properties.transactional.id: is owned by the relay") !=
          std::string::npos);
    CHECK(err("    max.in.flight.requests.per.connection: 10\n")
              .find("kafka.properties.max.in.flight.requests.per.connection: must be at most 5") !=
          std::string::npos);
    CHECK(
        err("    delivery.report.only.error: true\n").find("kafka.properties.delivery.report.only.error:") !=
        std::string::npos);
    CHECK(err("    retries: 0\n").find("kafka.properties.retries: must not be 0") != std::string::npos);
    CHECK(err("    linger.ms: 5\n    linger.ms: 6\n") ==
          "config.yaml:9: kafka.properties.linger.ms: duplicate key (first set at line 8)");

    // Allowed values of the owned keys.
    const Config c = load_config_string(minimal() +
                                            "  properties:\n    acks: -1\n    enable.idempotence: true\n"
                                            "    max.in.flight.requests.per.connection: 5\n    retries: 10\n",
                                        "t");
    CHECK(c.kafka.properties.size() == 4);
}

TEST_CASE("config: postgres names") {
    const auto err = [](std::string_view line) {
        return load_error("postgres:\n  dsn: x=y\n" + std::string(line) + rest());
    };
    CHECK(err("  slot: Outbox-Relay\n")
              .find("config.yaml:3: postgres.slot: expected a replication slot name") == 0);
    CHECK(err("  slot: " + std::string(64, 'a') + "\n")
              .find("postgres.slot: expected a replication slot name") != std::string::npos);
    CHECK(err("  publication: 1pub\n")
              .find("config.yaml:3: postgres.publication: expected a publication name") == 0);
}

TEST_CASE("config: metrics.listen is checked") {
    CHECK(load_error(with("metrics: {listen: localhost}\n")) ==
          "config.yaml:7: metrics.listen: expected host:port (or \"\" to disable), got \"localhost\": "
          "missing :port");
    CHECK(load_error(with("metrics: {listen: \"::1:9187\"}\n")).find("write IPv6 addresses in brackets") !=
          std::string::npos);
    CHECK(load_error(with("metrics: {listen: \":9187\"}\n")).find("the host is missing") !=
          std::string::npos);
    CHECK(load_error(with("metrics: {listen: \"h:70000\"}\n"))
              .find("the port must be a number from 0 to 65535") != std::string::npos);
}

// ---- environment expansion ---------------------------------------------------------------

TEST_CASE("config: ${ENV} expansion in string values") {
    ScopedEnv dsn("OUTBOX_TEST_DSN", "host=db dbname=app");
    ScopedEnv empty("OUTBOX_TEST_EMPTY", "");
    ScopedEnv unset("OUTBOX_TEST_UNSET", nullptr);
    ScopedEnv level("OUTBOX_TEST_LEVEL", "debug");
    ScopedEnv events("OUTBOX_TEST_EVENTS", "42");

    const Config c = load_config_string(
        "postgres:\n"
        "  dsn: \"${OUTBOX_TEST_DSN} user=${OUTBOX_TEST_UNSET:-relay}\"\n"
        "  slot: ${OUTBOX_TEST_EMPTY:-fallback_slot}\n"
        "outbox:\n"
        "  table: t\n"
        "  topic: \"${OUTBOX_TEST_UNSET:-events}.{id}\"\n"
        "kafka:\n"
        "  bootstrap_servers: \"k:1\"\n"
        "  properties:\n"
        "    sasl.password: \"pa$$word\"\n"
        "    client.id: \"cost$5\"\n"
        "limits:\n"
        "  max_inflight_events: ${OUTBOX_TEST_EVENTS}\n"
        "log:\n"
        "  level: ${OUTBOX_TEST_LEVEL}\n",
        "env.yaml");
    CHECK(c.postgres.dsn == "host=db dbname=app user=relay");
    CHECK(c.postgres.slot == "fallback_slot");
    CHECK(c.outbox.topic == "events.{id}");
    CHECK(c.kafka.properties[0].second == "pa$word");
    CHECK(c.kafka.properties[1].second == "cost$5");
    CHECK(c.limits.max_inflight_events == 42);
    CHECK(c.log.level == LogLevel::Debug);

    CHECK(load_error("postgres:\n  dsn: \"host=${OUTBOX_TEST_UNSET}\"\n" + rest(), "env.yaml") ==
          "env.yaml:2: postgres.dsn: environment variable OUTBOX_TEST_UNSET is not set (use "
          "${OUTBOX_TEST_UNSET:-default} to give a default)");
    CHECK(load_error("postgres:\n  dsn: \"${OUTBOX_TEST_EMPTY}\"\n" + rest()) ==
          "config.yaml:2: postgres.dsn: must not be empty");
    CHECK(load_error("postgres:\n  dsn: \"host=${OUTBOX_TEST_DSN\"\n" + rest())
              .find("config.yaml:2: postgres.dsn: unterminated \"${\"") == 0);
    CHECK(load_error("postgres:\n  dsn: \"host=${1BAD}\"\n" + rest())
              .find("config.yaml:2: postgres.dsn: invalid environment variable reference \"${1BAD}\"") == 0);
    CHECK(load_error(with("  properties: {sasl.password: \"${OUTBOX_TEST_UNSET}\"}\n")) ==
          "config.yaml:7: kafka.properties.sasl.password: environment variable OUTBOX_TEST_UNSET is not set "
          "(use "
          "${OUTBOX_TEST_UNSET:-default} to give a default)");
    CHECK(load_error("postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox:\n  tables:\n    - a\n"
                     "    - \"${OUTBOX_TEST_UNSET}\"\n") ==
          "config.yaml:6: outbox.tables[1]: environment variable OUTBOX_TEST_UNSET is not set (use "
          "${OUTBOX_TEST_UNSET:-default} to give a default)");
}

// ---- password_file -----------------------------------------------------------------------

TEST_CASE("config: password_file and CREDENTIALS_DIRECTORY") {
    TempDir dir;
    const std::string yaml_rel = "postgres:\n  dsn: x=y\n  password_file: pg-password\n" + rest();
    SUBCASE("a relative path resolves against CREDENTIALS_DIRECTORY") {
        ScopedEnv creds("CREDENTIALS_DIRECTORY", dir.path().c_str());
        const Config c = load_config_string(yaml_rel, "t");
        CHECK(c.postgres.password_file == dir.path() + "/pg-password");
    }
    SUBCASE("without CREDENTIALS_DIRECTORY the relative path is kept") {
        ScopedEnv creds("CREDENTIALS_DIRECTORY", nullptr);
        CHECK(load_config_string(yaml_rel, "t").postgres.password_file == "pg-password");
    }
    SUBCASE("an absolute path is kept") {
        ScopedEnv creds("CREDENTIALS_DIRECTORY", dir.path().c_str());
        const Config c =
            load_config_string("postgres:\n  dsn: x=y\n  password_file: /etc/pw\n" + rest(), "t");
        CHECK(c.postgres.password_file == "/etc/pw");
    }
    SUBCASE("an empty value means not set") {
        const Config c = load_config_string(
            "postgres:\n  dsn: x=y\n  password_file: \"${OUTBOX_TEST_UNSET:-}\"\n" + rest(), "t");
        CHECK_FALSE(c.postgres.password_file.has_value());
        CHECK_FALSE(read_password(c.postgres).has_value());
    }
}

TEST_CASE("config: read_password") {
    TempDir dir;
    PostgresConfig pg;
    CHECK_FALSE(read_password(pg).has_value());

    pg.password_file = dir.write("pw", "s3cret\n");
    CHECK(read_password(pg) == "s3cret");
    pg.password_file = dir.write("pw-crlf", "s3cret\r\n");
    CHECK(read_password(pg) == "s3cret");
    pg.password_file = dir.write("pw-two", "s3cret\n\n");
    CHECK(read_password(pg) == "s3cret\n");  // only one newline is trimmed
    pg.password_file = dir.write("pw-none", "with space ");
    CHECK(read_password(pg) == "with space ");

    pg.password_file = dir.write("pw-empty", "\n");
    try {
        (void)read_password(pg);
        FAIL("expected an error");
    } catch (const outbox::Error& e) {
        CHECK(e.kind() == outbox::ErrorKind::Config);
        CHECK(std::string(e.what()) ==
              "postgres.password_file: password file \"" + *pg.password_file + "\" is empty");
    }

    pg.password_file = dir.path() + "/missing";
    try {
        (void)read_password(pg);
        FAIL("expected an error");
    } catch (const outbox::Error& e) {
        CHECK(e.kind() == outbox::ErrorKind::Config);
        CHECK(std::string(e.what()) == "postgres.password_file: cannot read password file \"" + dir.path() +
                                           "/missing\": No such file or directory");
    }
}

// ---- value syntax ------------------------------------------------------------------------

TEST_CASE("config: duration syntax") {
    struct Row {
        const char* text = nullptr;
        std::optional<std::chrono::milliseconds> expected;
    };
    const Row rows[] = {
        {"500ms", 500ms},
        {"10s", 10s},
        {"2m", 2min},
        {"1h", 1h},
        {"0s", 0ms},
        {" 10 s ", 10s},
        {"90s", 90s},
        {"10", {}},
        {"", {}},
        {"s", {}},
        {"1.5s", {}},
        {"-1s", {}},
        {"10sec", {}},
        {"10S", {}},
        {"1d", {}},
        {"1h30m", {}},
        {"99999999999999999999h", {}},
        {"9223372036854775807h", {}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        CHECK(parse_duration(row.text) == row.expected);
    }
    CHECK(format_duration(10s) == "10s");
    CHECK(format_duration(500ms) == "500ms");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(2min) == "2m");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(1h) == "1h");
    CHECK(format_duration(0ms) == "0s");
}

TEST_CASE("config: size syntax") {
    struct Row {
        const char* text = nullptr;
        std::optional<std::uint64_t> expected;
    };
    const Row rows[] = {
        {"1048576", 1048576},
        {"0", 0},
        {"10B", 10},
        {"1KiB", 1024},
        {"64MiB", 64ull << 20},
        {"2GiB", 2ull << 30},
        {"1KB", 1000},
        {"5MB", 5'000'000},
        {"3GB", 3'000'000'000ull},
        {"64 MiB", 64ull << 20},
        {"64mib", {}},
        {"64M", {}},
        {"1.5MiB", {}},
        {"-1", {}},
        {"MiB", {}},
        {"", {}},
        {"1TiB", {}},
        {"18446744073709551615", 18446744073709551615ull},
        {"18446744073709551616", {}},
        {"17179869184GiB", {}},
    };
    for (const auto& row : rows) {
        CAPTURE(row.text);
        CHECK(parse_size(row.text) == row.expected);
    }
    CHECK(format_size(64ull << 20) == "64MiB");
    CHECK(format_size(1'000'000) == "1MB");
    CHECK(format_size(1234) == "1234B");
    CHECK(format_size(0) == "0B");
}

TEST_CASE("config: mask_dsn hides passwords") {
    struct Row {
        const char* dsn;
        const char* masked;
    };
    const Row rows[] = {
        // conninfo
        {"host=db password=secret dbname=app", "host=db password=*** dbname=app"},
        {"password=secret", "password=***"},
        {"host=db password='se cret' user=u", "host=db password=*** user=u"},
        {"host=db password='it\\'s' user=u", "host=db password=*** user=u"},
        {"host=db password = secret user=u", "host=db password = *** user=u"},
        {"host=db  password=s\\ ecret", "host=db  password=***"},
        {"host=db password='unterminated", "host=db password=***"},
        {"host=/var/run/postgresql dbname=app user=outbox_relay",
         "host=/var/run/postgresql dbname=app user=outbox_relay"},
        {"host=db passfile=/x/pgpass", "host=db passfile=/x/pgpass"},
        {"dbname='postgresql://u:secret@h/db' user=x", "dbname='postgresql://u:***@h/db' user=x"},
        {"dbname='host=h password=secret'", "dbname='host=h password=***'"},
        {"", ""},
        // URIs
        {"postgresql://user:secret@host/db", "postgresql://user:***@host/db"},
        {"postgres://user:secret@host:5432/db?sslmode=require",
         "postgres://user:***@host:5432/db?sslmode=require"},
        {"postgresql://user@host/db", "postgresql://user@host/db"},
        {"postgresql://host/db", "postgresql://host/db"},
        {"postgresql:///db?host=/tmp", "postgresql:///db?host=/tmp"},
        {"postgresql://host/db?user=u&password=secret&sslmode=require",
         "postgresql://host/db?user=u&password=***&sslmode=require"},
        {"postgresql://host/db?password=secret", "postgresql://host/db?password=***"},
        {"postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"},
        {"postgresql://u:secret@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"},
        {"postgresql://host/db?pass%77ord=secret", "postgresql://host/db?pass%77ord=***"},
        {"POSTGRESQL://u:secret@h/db", "POSTGRESQL://u:***@h/db"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.dsn);
        CHECK(mask_dsn(row.dsn) == row.masked);
    }
}

TEST_CASE("config: describe() summarises without secrets") {
    ScopedEnv creds("CREDENTIALS_DIRECTORY", nullptr);
    const Config c = load_config_file(fixtures() + "/full.yaml");
    const std::string text = describe(c);
    CAPTURE(text);
    CHECK(text.find("s3 cret") == std::string::npos);
    CHECK(text.find("hunter2") == std::string::npos);
    CHECK(text.find("dsn: host=db.internal port=5433 dbname=app user=relay password=***\n") !=
          std::string::npos);
    CHECK(text.find("sasl.password: ***\n") != std::string::npos);
    CHECK(text.find("linger.ms: 5\n") != std::string::npos);
    CHECK(text.find("tables: public.outbox, billing.outbox, Sales.Out.Box\n") != std::string::npos);
    CHECK(text.find("status_interval: 2500ms\n") != std::string::npos);
    CHECK(text.find("max_inflight_bytes: 16MB\n") != std::string::npos);
    CHECK(text.find("listen: [::1]:9999\n") != std::string::npos);
    CHECK(text.find("on_invalid: stop\n") != std::string::npos);
    CHECK(text.find("level: debug\n") != std::string::npos);

    CHECK(is_secret_property("sasl.password"));
    CHECK(is_secret_property("ssl.key.password"));
    CHECK(is_secret_property("sasl.oauthbearer.client.secret"));
    CHECK_FALSE(is_secret_property("linger.ms"));
}

// ---- shipped files -----------------------------------------------------------------------

TEST_CASE("config: the shipped example and demo configurations load") {
    ScopedEnv creds("CREDENTIALS_DIRECTORY", nullptr);
    SUBCASE("example") {
        const Config c = load_config_file(shipped() + "/outbox-relay.example.yaml");
        CHECK(c.postgres.dsn == "host=/var/run/postgresql dbname=app user=outbox_relay");
        CHECK(c.outbox.tables == std::vector<TableName>{{"public", "outbox"}});
        // The example spells out the defaults.
        const Config defaults = load_config_string(
            "postgres: {dsn: x=y}\noutbox: {table: t}\nkafka: {bootstrap_servers: k:1}\n", "d");
        CHECK(c.postgres.slot == defaults.postgres.slot);
        CHECK(c.postgres.status_interval == defaults.postgres.status_interval);
        CHECK(c.outbox.topic == defaults.outbox.topic);
        CHECK(c.outbox.dead_letter_topic == defaults.outbox.dead_letter_topic);
        CHECK(c.limits.max_inflight_events == defaults.limits.max_inflight_events);
        CHECK(c.limits.max_inflight_bytes == defaults.limits.max_inflight_bytes);
        CHECK(c.metrics.port == defaults.metrics.port);
    }
    SUBCASE("demo") {
        ScopedEnv dsn("OUTBOX_DEMO_DSN", "host=127.0.0.1 port=54321 dbname=demo user=outbox_relay");
        ScopedEnv bootstrap("OUTBOX_DEMO_BOOTSTRAP", "127.0.0.1:19092");
        ScopedEnv level("OUTBOX_DEMO_LOG_LEVEL", nullptr);
        const Config c = load_config_file(shipped() + "/demo.yaml");
        CHECK(c.postgres.dsn == "host=127.0.0.1 port=54321 dbname=demo user=outbox_relay");
        CHECK(c.kafka.bootstrap_servers == "127.0.0.1:19092");
        CHECK(c.postgres.create_slot);
        CHECK(c.postgres.create_publication);
        CHECK(c.metrics.enabled);
        CHECK(c.metrics.host == "127.0.0.1");
        CHECK(c.metrics.port == 9187);
        CHECK(c.log.level == LogLevel::Info);
    }
    SUBCASE("demo without its environment names the missing variable") {
        ScopedEnv dsn("OUTBOX_DEMO_DSN", nullptr);
        ScopedEnv bootstrap("OUTBOX_DEMO_BOOTSTRAP", "127.0.0.1:19092");
        const std::string msg = file_error(shipped() + "/demo.yaml");
        CHECK(msg.find("postgres.dsn: environment variable OUTBOX_DEMO_DSN is not set") != std::string::npos);
    }
}

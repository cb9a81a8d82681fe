#include <doctest/doctest.h>

#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <string>

#include "outbox/router.h"

using namespace outbox;
using pgoutput::ColumnKind;
using pgoutput::ColumnValue;

namespace {

pgoutput::RelationInfo outbox_relation(
    std::vector<std::pair<std::string, std::uint32_t>> columns = {
        {"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"type", 25}, {"payload", 3802}}) {
    pgoutput::RelationInfo rel;
    rel.id = RelationId(16384);
    rel.namespace_name = "public";
    rel.name = "outbox";
    for (auto& [name, oid] : columns) rel.columns.push_back({name, oid, -1, false});
    return rel;
}

ColumnValue text(std::string_view v) {
    return {ColumnKind::Text, v};
}
ColumnValue null() {
    return {ColumnKind::Null, {}};
}

OutboxOptions default_config() {
    OutboxOptions c;
    c.tables = {TableName{"public", "outbox"}};
    c.headers = {"type"};
    return c;
}

const CommitInfo kCommit{Lsn(0x16B374D848ull), Xid(771), 1709212455123456};

std::map<std::string, std::optional<std::string>> headers_of(const Record& r) {
    std::map<std::string, std::optional<std::string>> out;
    for (const auto& h : r.headers)
        out[std::string(h.name)] = h.value ? std::optional<std::string>(*h.value) : std::nullopt;
    return out;
}

}  // namespace

TEST_CASE("router: an outbox row becomes a record with topic, key, value and headers") {
    const OutboxRouter router(default_config());
    const auto rel = outbox_relation();
    pgoutput::Tuple row{{text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("order"), text("o-42"),
                         text("OrderCreated"), text(R"({"total": 12.5})")}};
    Record record;
    Rejection rejection;
    REQUIRE(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.topic == "outbox.event.order");
    CHECK(record.key == "o-42");
    CHECK(record.value == R"({"total": 12.5})");
    const auto h = headers_of(record);
    CHECK(h.at("id") == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    CHECK(h.at("type") == "OrderCreated");
    CHECK(h.at("outbox-lsn") == "16/B374D848");
    CHECK(h.at("outbox-xid") == "771");
    CHECK(h.at("outbox-commit-time") == "2024-02-29T13:14:15.123456Z");
    CHECK(record.headers.size() == 5);
}

TEST_CASE("router: NULL payload is a tombstone, bytea payload is raw bytes") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    auto rel = outbox_relation();
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("Deleted"), null()}};
    REQUIRE(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK_FALSE(record.value.has_value());

    auto bytea_rel = outbox_relation(
        {{"id", 20}, {"aggregatetype", 25}, {"aggregateid", 25}, {"type", 25}, {"payload", 17}});
    pgoutput::Tuple bin{{text("2"), text("order"), text("o-2"), text("Blob"), text("\\x00ff0a")}};
    REQUIRE(router.route(bytea_rel, bin, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.value == std::string("\x00\xff\x0a", 3));
}

TEST_CASE("router: a NULL header column gives a header with a null value") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), null(), text("{}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Routed);
    const auto h = headers_of(record);
    REQUIRE(h.count("type") == 1);
    CHECK_FALSE(h.at("type").has_value());
}

TEST_CASE("router: rows that cannot be routed are rejected with a reason") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    const auto rel = outbox_relation();
    struct Case {
        pgoutput::Tuple row;
        std::string_view code;
        std::string detail_part;
    };
    const std::vector<Case> cases = {
        {{{text("1"), null(), text("o-1"), text("t"), text("{}")}},
         "null_value",
         "aggregate_type column \"aggregatetype\" is NULL"},
        {{{text("1"), text(""), text("o-1"), text("t"), text("{}")}},
         "empty_value",
         "aggregate_type column \"aggregatetype\" is empty"},
        {{{text("1"), text("order"), null(), text("t"), text("{}")}},
         "null_value",
         "aggregate_id column \"aggregateid\" is NULL"},
        {{{null(), text("order"), text("o-1"), text("t"), text("{}")}},
         "null_value",
         "id column \"id\" is NULL"},
        {{{text("1"), text("bad topic!"), text("o-1"), text("t"), text("{}")}},
         "invalid_topic",
         "outbox.event.bad topic!"},
        {{{text("1"), text(std::string_view("x\0y", 3)), text("o-1"), text("t"), text("{}")}},
         "invalid_topic",
         "not a valid Kafka topic"},
        {{{text("1"), text("order"), text("o-1"), text("t"), {ColumnKind::UnchangedToast, {}}}},
         "unchanged_toast",
         "payload"},
        // Text that is not UTF-8 (0xE9: LATIN1 e-acute stored in a SQL_ASCII database).
        {{{text("1"), text("ord\xE9r"), text("o-1"), text("t"), text("{}")}},
         "invalid_utf8",
         "aggregate_type column \"aggregatetype\" is not valid UTF-8"},
        {{{text("1"), text("order"), text("caf\xE9"), text("t"), text("{}")}},
         "invalid_utf8",
         "aggregate_id column \"aggregateid\" is not valid UTF-8"},
        {{{text("1"), text("order"), text("o-1"), text("t"), text("{\"n\": \"caf\xE9\"}")}},
         "invalid_utf8",
         "payload column \"payload\" is not valid UTF-8"},
        {{{text("1"), text("order"), text("o-1"),
           text("Cr\xE9"
                "ated"),
           text("{}")}},
         "invalid_utf8",
         "header column \"type\" is not valid UTF-8"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.detail_part);
        REQUIRE(router.route(rel, c.row, kCommit, record, rejection) == RouteOutcome::Rejected);
        CHECK(rejection.code == c.code);
        CHECK(rejection.detail.find(c.detail_part) != std::string::npos);
    }
    // A topic longer than 249 characters.
    const std::string long_type(250, 'a');
    pgoutput::Tuple row{{text("1"), text(long_type), text("o-1"), text("t"), text("{}")}};
    CHECK(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.code == "invalid_topic");
}

TEST_CASE("router: a column missing after a schema change is a rejection naming it") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    // `type` (a header column) was dropped.
    const auto rel =
        outbox_relation({{"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"payload", 3802}});
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("{}")}};
    REQUIRE(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.code == "missing_column");
    CHECK(rejection.detail == "header column \"type\" is not in table public.outbox");
    // The payload column was renamed.
    const auto rel2 = outbox_relation(
        {{"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"type", 25}, {"body", 3802}});
    pgoutput::Tuple row2{{text("1"), text("order"), text("o-1"), text("t"), text("{}")}};
    REQUIRE(router.route(rel2, row2, kCommit, record, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.detail == "column \"payload\" (payload) is not in table public.outbox");
}

TEST_CASE("router: rows of other tables are not events") {
    const OutboxRouter router(default_config());
    auto rel = outbox_relation();
    rel.name = "orders";
    Record record;
    Rejection rejection;
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("t"), text("{}")}};
    CHECK(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::NotOutbox);
}

TEST_CASE("router: topic templates over roles, and fixed topics") {
    auto cfg = default_config();
    cfg.topic = "{table}.{aggregate_type}-{aggregate_id}";
    cfg.topic_segments = {{TopicSegment::Kind::Table, ""},
                          {TopicSegment::Kind::Literal, "."},
                          {TopicSegment::Kind::AggregateType, ""},
                          {TopicSegment::Kind::Literal, "-"},
                          {TopicSegment::Kind::AggregateId, ""}};
    const OutboxRouter router(cfg);
    Record record;
    Rejection rejection;
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("t"), text("{}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.topic == "public.outbox.order-o-1");

    auto fixed = default_config();
    fixed.topic = "events";
    fixed.topic_segments = {{TopicSegment::Kind::Literal, "events"}};
    const OutboxRouter fixed_router(fixed);
    pgoutput::Tuple null_type{{text("1"), null(), text("o-1"), text("t"), text("{}")}};
    // A fixed topic does not need the aggregate type.
    REQUIRE(fixed_router.route(outbox_relation(), null_type, kCommit, record, rejection) ==
            RouteOutcome::Routed);
    CHECK(record.topic == "events");
}

TEST_CASE("router: dead-letter records carry the reason, the table and what could be read") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    pgoutput::Tuple row{{text("e-1"), null(), text("o-1"), text("OrderCreated"), text("{\"a\": 1}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Rejected);
    Record dead;
    router.dead_letter_for_row(outbox_relation(), row, kCommit, rejection, record, dead);
    record = Record{};  // the dead-letter record must not point into the attempted one
    CHECK(dead.topic == "outbox.dead_letter");
    CHECK(dead.key == "o-1");
    CHECK(dead.value == "{\"a\": 1}");
    auto h = headers_of(dead);
    CHECK(h.at("id") == "e-1");
    CHECK(h.at("outbox-error") == "aggregate_type column \"aggregatetype\" is NULL");
    CHECK(h.at("outbox-error-code") == "null_value");
    CHECK(h.at("outbox-table") == "public.outbox");
    CHECK(h.at("type") == "OrderCreated");
    CHECK(h.at("outbox-lsn") == "16/B374D848");
    CHECK(h.count("outbox-original-topic") == 0);

    pgoutput::Tuple ok{{text("e-2"), text("order"), text("o-2"), text("OrderCreated"), text("{\"big\": 1}")}};
    Record original;
    REQUIRE(router.route(outbox_relation(), ok, kCommit, original, rejection) == RouteOutcome::Routed);
    Record dlq;
    router.dead_letter_for_record(original, Rejection{"too_large", "Broker: Message size too large"}, dlq);
    CHECK(dlq.topic == "outbox.dead_letter");
    CHECK(dlq.key == "o-2");
    CHECK_FALSE(dlq.value.has_value());
    h = headers_of(dlq);
    CHECK(h.at("outbox-original-topic") == "outbox.event.order");
    CHECK(h.at("outbox-payload-bytes") == "10");
    CHECK(h.at("outbox-error-code") == "too_large");
    CHECK(h.at("id") == "e-2");
}

TEST_CASE("router: helpers") {
    CHECK(is_valid_topic_name("outbox.event.order_v1-x"));
    CHECK_FALSE(is_valid_topic_name(""));
    CHECK_FALSE(is_valid_topic_name(".."));
    CHECK_FALSE(is_valid_topic_name("a b"));
    CHECK_FALSE(is_valid_topic_name("ü"));
    std::string out;
    CHECK(decode_bytea_hex("\\x", out));
    CHECK(out.empty());
    CHECK_FALSE(decode_bytea_hex("\\x0", out));
    CHECK_FALSE(decode_bytea_hex("\\xzz", out));
    CHECK_FALSE(decode_bytea_hex("00", out));
    format_utc_micros(0, out);
    CHECK(out == "1970-01-01T00:00:00.000000Z");
    format_utc_micros(-1, out);
    CHECK(out == "1969-12-31T23:59:59.999999Z");
    format_utc_micros(951782400000000, out);  // leap day 2000
    CHECK(out == "2000-02-29T00:00:00.000000Z");
    format_utc_micros(253402300799999999, out);  // the last 4-digit year
    CHECK(out == "9999-12-31T23:59:59.999999Z");
    format_utc_micros(253402300800000000, out);  // 5-digit years take the snprintf path
    CHECK(out == "10000-01-01T00:00:00.000000Z");
    format_utc_micros(-62167219200000000, out);  // year 0 (1 BC)
    CHECK(out == "0000-01-01T00:00:00.000000Z");
}

TEST_CASE("router: format_utc_micros agrees with gmtime_r and printf over many instants") {
    std::uint64_t x = 88172645463325252ULL;  // xorshift: deterministic
    std::string out;
    for (int i = 0; i < 20000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 1900 .. 2100, any microsecond.
        const std::int64_t us = -2208988800000000LL + static_cast<std::int64_t>(x % 6311433600000000ULL);
        std::int64_t secs = us / 1000000;
        std::int64_t micros = us % 1000000;
        if (micros < 0) {
            micros += 1000000;
            --secs;
        }
        const std::time_t t = static_cast<std::time_t>(secs);
        std::tm tm{};
        REQUIRE(gmtime_r(&t, &tm) != nullptr);
        char expected[96];
        std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<long long>(micros));
        format_utc_micros(us, out);
        CAPTURE(us);
        REQUIRE(out == expected);
    }
}

TEST_CASE("router: a dead-letter record names the original topic when routing got that far") {
    const OutboxRouter router(default_config());
    Record attempted;
    Rejection rejection;
    pgoutput::Tuple row{{text("e-3"), text("order"), null(), text("OrderCreated"), text("{}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, attempted, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.code == "null_value");
    Record dead;
    router.dead_letter_for_row(outbox_relation(), row, kCommit, rejection, attempted, dead);
    attempted = Record{};
    const auto h = headers_of(dead);
    CHECK(h.at("outbox-original-topic") == "outbox.event.order");
    CHECK_FALSE(dead.key.has_value());
}

TEST_CASE("router: a reused record gets each transaction's own commit headers") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("t"), text("{}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(headers_of(record).at("outbox-xid") == "771");
    const CommitInfo next{Lsn(0x16B374D900ull), Xid(772), 1709212456000000};
    REQUIRE(router.route(outbox_relation(), row, next, record, rejection) == RouteOutcome::Routed);
    const auto h = headers_of(record);
    CHECK(h.at("outbox-xid") == "772");
    CHECK(h.at("outbox-lsn") == "16/B374D900");
    CHECK(h.at("outbox-commit-time") == "2024-02-29T13:14:16.000000Z");
}

TEST_CASE("router: relay_headers chooses which commit headers events and their dead-letter copies carry") {
    OutboxOptions options = default_config();
    options.relay_headers = {.lsn = false, .xid = true, .commit_time = false};
    const OutboxRouter router(options);
    Record record;
    Rejection rejection;
    pgoutput::Tuple row{{text("e-1"), text("order"), text("o-1"), text("t"), text("{}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Routed);
    auto h = headers_of(record);
    CHECK(h == std::map<std::string, std::optional<std::string>>{
                   {"id", "e-1"}, {"type", "t"}, {"outbox-xid", "771"}});
    const CommitInfo next{Lsn(0x16B374D900ull), Xid(772), 1709212456000000};
    REQUIRE(router.route(outbox_relation(), row, next, record, rejection) == RouteOutcome::Routed);
    CHECK(headers_of(record).at("outbox-xid") == "772");

    Record dead;
    router.dead_letter_for_record(record, Rejection{"too_large", "too large"}, dead);
    h = headers_of(dead);
    CHECK(h.count("outbox-xid") == 1);
    CHECK(h.count("outbox-lsn") == 0);
    pgoutput::Tuple bad{{text("e-2"), null(), text("o-2"), text("t"), text("{}")}};
    REQUIRE(router.route(outbox_relation(), bad, kCommit, record, rejection) == RouteOutcome::Rejected);
    router.dead_letter_for_row(outbox_relation(), bad, kCommit, rejection, record, dead);
    h = headers_of(dead);
    CHECK(h.at("outbox-xid") == "771");
    CHECK(h.count("outbox-lsn") == 0);
    CHECK(h.count("outbox-commit-time") == 0);

    options.relay_headers = {.lsn = false, .xid = false, .commit_time = false};
    const OutboxRouter bare(options);
    REQUIRE(bare.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(headers_of(record) ==
          std::map<std::string, std::optional<std::string>>{{"id", "e-1"}, {"type", "t"}});
}

TEST_CASE("router: outbox-lsn is Lsn::to_string() for any LSN, including the widest") {
    const OutboxRouter router(default_config());
    const auto rel = outbox_relation();
    pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("Created"), text("{}")}};
    for (const std::uint64_t lsn :
         {0x0ull, 0xAull, 0x16B374D848ull, 0xFFFFFFFF00000000ull, 0xFFFFFFFFFFFFFFFFull}) {
        CAPTURE(lsn);
        Record record;
        Rejection rejection;
        REQUIRE(router.route(rel, row, CommitInfo{Lsn(lsn), Xid(1), 0}, record, rejection) ==
                RouteOutcome::Routed);
        CHECK(headers_of(record).at("outbox-lsn") == Lsn(lsn).to_string());
    }
}

TEST_CASE("router: UTF-8 text passes, and bytea payloads are bytes that are not checked") {
    const OutboxRouter router(default_config());
    Record record;
    Rejection rejection;
    const pgoutput::Tuple row{{text("1"), text("order"), text("caf\xC3\xA9"), text("\xE2\x82\xAC"),
                               text("{\"n\": \"\xF0\x9F\x98\x80\"}")}};
    REQUIRE(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(*record.key == "caf\xC3\xA9");
    CHECK(*record.value == "{\"n\": \"\xF0\x9F\x98\x80\"}");
    // bytea arrives as hex text and becomes raw bytes; 0xE9 in them is fine.
    const auto bytea_rel = outbox_relation(
        {{"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"type", 25}, {"payload", 17}});
    const pgoutput::Tuple bytes_row{{text("1"), text("order"), text("o-1"), text("t"), text("\\x00e9ff")}};
    REQUIRE(router.route(bytea_rel, bytes_row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(*record.value == std::string("\x00\xE9\xFF", 3));
}

TEST_CASE("router: a reused record checks every new topic name, also after a valid one") {
    OutboxOptions c = default_config();
    c.topic_segments = {{TopicSegment::Kind::AggregateType, ""}};
    const OutboxRouter router(c);
    const auto rel = outbox_relation();
    Record record;
    Rejection rejection;
    const auto route_type = [&](std::string_view aggregate_type) {
        const pgoutput::Tuple row{{text("1"), text(aggregate_type), text("o-1"), text("t"), text("{}")}};
        return router.route(rel, row, kCommit, record, rejection);
    };
    CHECK(route_type("orders") == RouteOutcome::Routed);
    CHECK(route_type("orders") == RouteOutcome::Routed);
    CHECK(route_type("bad topic") == RouteOutcome::Rejected);
    CHECK(rejection.code == "invalid_topic");
    CHECK(route_type("orders") == RouteOutcome::Routed);
    CHECK(route_type("..") == RouteOutcome::Rejected);
    CHECK(route_type("payments") == RouteOutcome::Routed);
    CHECK(record.topic == "payments");
}

TEST_CASE("router: an empty topic name is rejected, even by a fresh record") {
    OutboxOptions c = default_config();
    c.topic_segments = {{TopicSegment::Kind::Literal, ""}};
    const OutboxRouter router(c);
    const pgoutput::Tuple row{{text("1"), text("order"), text("o-1"), text("t"), text("{}")}};
    Record record;
    Rejection rejection;
    CHECK(router.route(outbox_relation(), row, kCommit, record, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.code == "invalid_topic");
}

TEST_CASE("router: timestamps in ISO form or milliseconds are read exactly, anything else is refused") {
    std::int64_t ms = 0;
    REQUIRE(parse_timestamp_ms("2024-02-29 13:14:15.123456+00", ms));
    CHECK(ms == 1709212455123);
    REQUIRE(parse_timestamp_ms("2024-02-29 15:14:15.5+02", ms));
    CHECK(ms == 1709212455500);
    REQUIRE(parse_timestamp_ms("2024-02-29 08:44:15-04:30", ms));
    CHECK(ms == 1709212455000);
    REQUIRE(parse_timestamp_ms("2024-02-29 13:14:15", ms));  // timestamp without time zone: UTC
    CHECK(ms == 1709212455000);
    REQUIRE(parse_timestamp_ms("2024-02-29T13:14:15.123456Z", ms));  // the relay's own header form
    CHECK(ms == 1709212455123);
    REQUIRE(parse_timestamp_ms("1709212455123", ms));  // bigint milliseconds
    CHECK(ms == 1709212455123);
    REQUIRE(parse_timestamp_ms("1970-01-01 00:00:00+00", ms));
    CHECK(ms == 0);
    for (const char* bad :
         {"", "infinity", "-infinity", "2024-02-29", "2024-02-29 13:14", "2024-13-01 00:00:00",
          "2024-02-29 13:14:15 BC", "2024-02-29 13:14:15+", "12/31/2024 10:00:00", "1e12",
          "2024-02-29 13:14:15.+00", "17092124551234567890123"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_timestamp_ms(bad, ms));
    }
}

TEST_CASE("router: the record timestamp is the commit time, the produce time or a column") {
    auto cfg = default_config();
    auto rel = outbox_relation({{"id", 2950},
                                {"aggregatetype", 25},
                                {"aggregateid", 25},
                                {"type", 25},
                                {"payload", 3802},
                                {"created_at", 1184}});
    const auto row = [](ColumnValue created) {
        return pgoutput::Tuple{{text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("order"), text("o-42"),
                                text("OrderCreated"), text("{}"), created}};
    };
    Record record;
    Rejection rejection;
    REQUIRE(OutboxRouter(cfg).route(rel, row(null()), kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.timestamp_ms == kCommit.commit_time_unix_us / 1000);

    cfg.timestamp = TimestampSource::Produce;
    REQUIRE(OutboxRouter(cfg).route(rel, row(null()), kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.timestamp_ms == 0);  // the producer stamps it

    cfg.timestamp = TimestampSource::Column;
    cfg.columns.timestamp = "created_at";
    const OutboxRouter by_column(cfg);
    REQUIRE(by_column.route(rel, row(text("2020-01-02 03:04:05.678+00")), kCommit, record, rejection) ==
            RouteOutcome::Routed);
    CHECK(record.timestamp_ms == 1577934245678);
    REQUIRE(by_column.route(rel, row(null()), kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.timestamp_ms == kCommit.commit_time_unix_us / 1000);  // NULL: the commit time
    REQUIRE(by_column.route(rel, row(text("infinity")), kCommit, record, rejection) ==
            RouteOutcome::Rejected);
    CHECK(rejection.code == "invalid_timestamp");
    CHECK(rejection.detail.find("\"infinity\"") != std::string::npos);
    CHECK(by_column.missing_columns(outbox_relation()) ==
          std::vector<std::string>{"\"created_at\" (timestamp)"});
}

TEST_CASE("router: a header can take another name than its column") {
    auto cfg = default_config();
    cfg.headers = {HeaderColumn("type", "event-type")};
    const auto rel = outbox_relation();
    pgoutput::Tuple row{{text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("order"), text("o-42"),
                         text("OrderCreated"), text("{}")}};
    Record record;
    Rejection rejection;
    const OutboxRouter router(cfg);  // the record's header names are views into it
    REQUIRE(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    const auto h = headers_of(record);
    CHECK(h.at("event-type") == "OrderCreated");
    CHECK(h.count("type") == 0);
}

TEST_CASE(
    "router: with tombstone_on_empty_payload a blank payload is a tombstone, else it is sent as it is") {
    auto cfg = default_config();
    auto rel = outbox_relation(
        {{"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"type", 25}, {"payload", 25}});
    pgoutput::Tuple row{{text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("order"), text("o-42"),
                         text("OrderCreated"), text("  \n")}};
    Record record;
    Rejection rejection;
    REQUIRE(OutboxRouter(cfg).route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    REQUIRE(record.value);
    CHECK(*record.value == "  \n");
    cfg.tombstone_on_empty_payload = true;
    REQUIRE(OutboxRouter(cfg).route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK_FALSE(record.value);
    row.columns[4] = text("{}");
    REQUIRE(OutboxRouter(cfg).route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    CHECK(record.value == std::optional<std::string_view>("{}"));
}

TEST_CASE("router: rows from a UTF8 server are not checked for UTF-8 again, values from elsewhere are") {
    // set_rows_are_valid_utf8(true) is what the session sets for server_encoding = client_encoding
    // = UTF8, where PostgreSQL checked every text value on input. Bytes that are not UTF-8 can then
    // only come from elsewhere (a logical message, a polled row): route_values() still checks.
    OutboxRouter router(default_config());
    const auto rel = outbox_relation();
    const pgoutput::Tuple row{{text("1"), text("order"), text("caf\xE9"), text("t"), text("{}")}};
    Record record;
    Rejection rejection;
    REQUIRE(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.code == "invalid_utf8");

    router.set_rows_are_valid_utf8(true);
    CHECK(router.route(rel, row, kCommit, record, rejection) == RouteOutcome::Routed);
    REQUIRE(router.route_values(rel, row, kCommit, record, rejection) == RouteOutcome::Rejected);
    CHECK(rejection.code == "invalid_utf8");
}

// Found by fuzz_router from its committed seed fuzz/corpus/fuzz_router/seed-extreme-time (this input):
// a commit time of INT64_MIN µs made the rounding down to milliseconds overflow (UBSan:
// signed-integer-overflow in set_timestamp). The core takes any int64 there: the polling source
// builds commit times itself. The dead-letter copy rounds the same way (it truncated before).
TEST_CASE("router: commit times round down to milliseconds for every int64, dead-letter copies too") {
    OutboxOptions cfg;
    cfg.tables = {TableName{"public", "outbox"}};
    const OutboxRouter router(cfg);
    const auto rel =
        outbox_relation({{"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"payload", 3802}});
    const pgoutput::Tuple row{{text("1"), text("order"), text("k"), text("{}")}};
    const auto ms_of = [&](std::int64_t commit_us) {
        Record record;
        Rejection rejection;
        const CommitInfo commit{Lsn(0x153DF30), Xid(734), commit_us};
        REQUIRE(router.route(rel, row, commit, record, rejection) == RouteOutcome::Routed);
        Record dead;
        router.dead_letter_for_row(rel, row, commit, Rejection{"too_large", "test"}, record, dead);
        CHECK(dead.timestamp_ms == record.timestamp_ms);
        return record.timestamp_ms;
    };
    CHECK(ms_of(std::numeric_limits<std::int64_t>::min()) == -9223372036854776);
    CHECK(ms_of(std::numeric_limits<std::int64_t>::max()) == 9223372036854775);
    CHECK(ms_of(-1) == -1);
    CHECK(ms_of(-1000) == -1);
    CHECK(ms_of(-1001) == -2);
    CHECK(ms_of(999) == 0);
    CHECK(ms_of(1709212455123456) == 1709212455123);
}

// relay::Pipeline against a fake Sink: every delivery and rejection outcome, the dead-letter
// and on_invalid policies, backpressure and a full sink, without Kafka or PostgreSQL.

#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pgoutput/decoder.h"
#include "relay/pipeline.h"

using namespace outbox;
using namespace outbox::relay;
using pgoutput::ColumnKind;

namespace {

// A record as the sink saw it, copied (the pipeline's views end with the message).
struct Sent {
    std::uint64_t cookie = 0;
    std::string topic;
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::map<std::string, std::optional<std::string>> headers;
};

class FakeSink final : public Sink {
public:
    SendResult send(const Record& record, std::uint64_t cookie) override {
        ++attempts;
        SendResult result;
        if (!answers.empty()) {
            result = answers.front();
            answers.pop_front();
        }
        if (result.status == SendStatus::Queued) {
            Sent s{cookie, record.topic, {}, {}, {}};
            if (record.key) s.key = std::string(*record.key);
            if (record.value) s.value = std::string(*record.value);
            for (const auto& h : record.headers)
                s.headers[std::string(h.name)] =
                    h.value ? std::optional<std::string>(*h.value) : std::nullopt;
            sent.push_back(s);
        }
        return result;
    }
    void drop_unsent() noexcept override { ++drops; }

    std::deque<SendResult> answers;  // what the next sends answer (Queued when empty)
    std::vector<Sent> sent;
    int attempts = 0;
    int drops = 0;
};

class RecordingObserver final : public Observer {
public:
    void dead_lettered(const CommitInfo& txn, const Rejection& why, bool announced) override {
        dead_letters.push_back({txn.xid.value(), std::string(why.code), why.detail, announced});
    }
    void outbox_columns_missing(const pgoutput::RelationInfo& relation,
                                const std::vector<std::string>& missing) override {
        std::string list;
        for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        incomplete.push_back(relation.qualified_name() + ": " + list);
    }
    void refused_stopping(const CommitInfo& txn, const Rejection& why) override {
        stops.push_back({txn.xid.value(), std::string(why.code), why.detail});
    }
    void unexpected_operation(const CommitInfo& txn, const pgoutput::RelationInfo& relation,
                              std::string_view operation) override {
        operations.push_back(std::to_string(txn.xid.value()) + " " + std::string(operation) + " " +
                             relation.qualified_name());
    }
    std::vector<std::string> operations;  // unexpected_operation, one line each
    struct Note {
        std::uint32_t xid;
        std::string code;
        std::string detail;
        bool announced = false;
    };
    std::vector<Note> dead_letters;
    std::vector<Note> stops;
    std::vector<std::string> incomplete;  // outbox_columns_missing, one line each
};

constexpr std::uint32_t kTextOid = 25;
constexpr std::uint32_t kJsonbOid = 3802;
const RelationId kOutboxId(16384);
const RelationId kOrdersId(16390);

// Messages the way the decoder hands them over, with the strings they view kept alive here.
class Stream {
public:
    Stream() {
        outbox_ = pgoutput::Relation{std::nullopt,
                                     kOutboxId,
                                     "public",
                                     "outbox",
                                     pgoutput::ReplicaIdentity::Default,
                                     {{1, "id", kTextOid, -1},
                                      {0, "aggregatetype", kTextOid, -1},
                                      {0, "aggregateid", kTextOid, -1},
                                      {0, "payload", kJsonbOid, -1}}};
        outbox_without_payload_ = pgoutput::Relation{
            std::nullopt,
            kOutboxId,
            "public",
            "outbox",
            pgoutput::ReplicaIdentity::Default,
            {{1, "id", kTextOid, -1}, {0, "aggregatetype", kTextOid, -1}, {0, "aggregateid", kTextOid, -1}}};
        orders_ = pgoutput::Relation{std::nullopt,
                                     kOrdersId,
                                     "public",
                                     "orders",
                                     pgoutput::ReplicaIdentity::Default,
                                     {{1, "id", kTextOid, -1}}};
    }
    [[nodiscard]] pgoutput::Message outbox_relation() const { return outbox_; }
    [[nodiscard]] pgoutput::Message orders_relation() const { return orders_; }
    // The outbox table after ALTER TABLE outbox DROP COLUMN payload.
    [[nodiscard]] pgoutput::Message outbox_relation_without_payload() const {
        return outbox_without_payload_;
    }
    pgoutput::Message event_without_payload(std::string id, std::string type, std::string key) {
        values_.push_back(std::move(id));
        const std::string_view id_view = values_.back();
        values_.push_back(std::move(type));
        const std::string_view type_view = values_.back();
        values_.push_back(std::move(key));
        const std::string_view key_view = values_.back();
        return pgoutput::Insert{
            std::nullopt, kOutboxId,
            pgoutput::Tuple{
                {{ColumnKind::Text, id_view}, {ColumnKind::Text, type_view}, {ColumnKind::Text, key_view}}}};
    }
    static pgoutput::Message begin(std::uint32_t xid, std::uint64_t commit_lsn) {
        return pgoutput::Begin{Lsn(commit_lsn), pgoutput::PgTimestamp(1'000'000), Xid(xid)};
    }
    static pgoutput::Message commit(std::uint64_t commit_lsn, std::uint64_t end_lsn) {
        return pgoutput::Commit{0, Lsn(commit_lsn), Lsn(end_lsn), pgoutput::PgTimestamp(1'000'000)};
    }
    // An outbox row; nullopt aggregate type is NULL.
    pgoutput::Message event(std::string id, std::optional<std::string> type, std::string key,
                            std::string payload) {
        values_.push_back(std::move(id));
        const std::string_view id_view = values_.back();
        values_.push_back(type.value_or(""));
        const std::string_view type_view = values_.back();
        values_.push_back(std::move(key));
        const std::string_view key_view = values_.back();
        values_.push_back(std::move(payload));
        const std::string_view payload_view = values_.back();
        pgoutput::Tuple row{{{ColumnKind::Text, id_view},
                             type ? pgoutput::ColumnValue{ColumnKind::Text, type_view}
                                  : pgoutput::ColumnValue{ColumnKind::Null, {}},
                             {ColumnKind::Text, key_view},
                             {ColumnKind::Text, payload_view}}};
        return pgoutput::Insert{std::nullopt, kOutboxId, row};
    }
    static pgoutput::Message order() {
        return pgoutput::Insert{std::nullopt, kOrdersId, pgoutput::Tuple{{{ColumnKind::Text, "o-1"}}}};
    }

private:
    pgoutput::Relation outbox_;
    pgoutput::Relation outbox_without_payload_;
    pgoutput::Relation orders_;
    std::deque<std::string> values_;  // deque: views stay valid as it grows
};

PipelineOptions options(OnInvalid on_invalid = OnInvalid::DeadLetter) {
    PipelineOptions o;
    o.outbox.tables = {TableName{"public", "outbox"}};
    o.outbox.on_invalid = on_invalid;
    return o;
}

PipelineOptions operation_policies(OperationPolicy on_update, OperationPolicy on_delete) {
    PipelineOptions o = options();
    o.outbox.on_update = on_update;
    o.outbox.on_delete = on_delete;
    return o;
}

const Lsn kStart(0x1000);

Delivery acked(const Sent& s) {
    return Delivery{s.cookie, DeliveryStatus::Acknowledged, s.topic, {}, {}, nullptr};
}

// Feeds Relation, Begin, the given messages and Commit (commit LSN 0x2000, end 0x2010).
void one_transaction(Pipeline& p, Stream& s, std::vector<pgoutput::Message> rows, std::uint32_t xid = 700) {
    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(xid, 0x2000));
    for (const auto& m : rows) p.on_message(m);
    p.on_message(Stream::commit(0x2000, 0x2010));
}

// A pipeline over a fake sink, with the options the test case names.
struct PipelineWith {
    explicit PipelineWith(PipelineOptions o, Lsn start = kStart) : p(std::move(o), start, sink, observer) {}
    FakeSink sink;
    RecordingObserver observer;
    Stream s;
    Pipeline p;
};
struct DeadLetterPipeline : PipelineWith {
    DeadLetterPipeline() : PipelineWith(options(OnInvalid::DeadLetter)) {}
};
struct StopPipeline : PipelineWith {
    StopPipeline() : PipelineWith(options(OnInvalid::Stop)) {}
};

}  // namespace

TEST_CASE_FIXTURE(DeadLetterPipeline,
                  "pipeline: acknowledged events confirm their transaction only once all are acknowledged") {
    one_transaction(p, s, {s.event("e1", "order", "o-1", "{}"), s.event("e2", "order", "o-1", "{\"n\": 2}")});
    REQUIRE(sink.sent.size() == 2);
    CHECK(sink.sent[0].topic == "outbox.event.order");
    CHECK(sink.sent[0].key == "o-1");
    CHECK(sink.sent[1].value == "{\"n\": 2}");
    CHECK(sink.sent[0].headers.at("id") == "e1");
    CHECK(p.confirmable() == kStart);
    CHECK(p.unacknowledged() == 2);

    const Settled first = p.on_delivery(acked(sink.sent[0]));
    CHECK(first.event_published);
    CHECK(first.commit_time_unix_us == pgoutput::PgTimestamp(1'000'000).unix_micros());
    CHECK(p.confirmable() == kStart);  // half a transaction is not confirmable
    p.on_delivery(acked(sink.sent[1]));
    CHECK(p.confirmable() == Lsn(0x2010));
    CHECK(p.unacknowledged() == 0);
    CHECK(p.counters().events_published == 2);
    CHECK(p.counters().transactions == 1);
    CHECK(observer.dead_letters.empty());
    CHECK_FALSE(p.failure());
}

TEST_CASE_FIXTURE(
    DeadLetterPipeline,
    "pipeline: rows of other tables are no events, idle keepalives are confirmable, busy ones not") {
    p.on_message(s.orders_relation());
    p.on_message(Stream::begin(700, 0x2000));
    p.on_message(Stream::order());
    p.on_message(Stream::commit(0x2000, 0x2010));
    CHECK(sink.sent.empty());
    CHECK(p.confirmable() == Lsn(0x2010));
    p.on_keepalive(Lsn(0x3000));
    CHECK(p.confirmable() == Lsn(0x3000));

    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(701, 0x4000));
    p.on_message(s.event("e1", "order", "o-1", "{}"));
    p.on_message(Stream::commit(0x4000, 0x4010));
    p.on_keepalive(Lsn(0x5000));  // an event is in flight: the keepalive must not pass it
    CHECK(p.confirmable() == Lsn(0x3000));
    p.on_delivery(acked(sink.sent.at(0)));
    CHECK(p.confirmable() == Lsn(0x4010));
}

TEST_CASE_FIXTURE(
    DeadLetterPipeline,
    "pipeline: a failed delivery ends the session without confirming, and drops what is unsent once") {
    one_transaction(p, s, {s.event("e1", "order", "o-1", "{}"), s.event("e2", "order", "o-1", "{}")});
    p.on_delivery(Delivery{sink.sent[0].cookie,
                           DeliveryStatus::Failed,
                           "outbox.event.order",
                           {},
                           "Local: Message timed out",
                           nullptr});
    REQUIRE(p.failure());
    CHECK(p.failure()->kind == ErrorKind::Transient);
    CHECK(p.failure()->what == "Kafka delivery failed (Local: Message timed out)");
    CHECK(sink.drops == 1);
    CHECK_FALSE(p.wants_input());
    p.on_delivery(Delivery{sink.sent[1].cookie,
                           DeliveryStatus::Failed,
                           "outbox.event.order",
                           {},
                           "Local: Purged in queue",
                           nullptr});
    CHECK(sink.drops == 1);
    CHECK(p.failure()->what == "Kafka delivery failed (Local: Message timed out)");  // the first one stays
    CHECK(p.confirmable() == kStart);
}

TEST_CASE_FIXTURE(DeadLetterPipeline, "pipeline: a sink that cannot take records fails the session") {
    sink.answers.push_back({SendStatus::Failed, {}, "Local: Fatal error"});
    one_transaction(p, s, {s.event("e1", "order", "o-1", "{}")});
    REQUIRE(p.failure());
    CHECK(p.failure()->kind == ErrorKind::Transient);
    CHECK(p.failure()->what == "cannot produce to Kafka: Local: Fatal error");
    CHECK(p.confirmable() == kStart);
}

TEST_CASE_FIXTURE(
    DeadLetterPipeline,
    "pipeline: a record the sink refuses as too large goes to the dead-letter topic under the same cookie") {
    sink.answers.push_back({SendStatus::Refused, "too_large", "Broker: Message size too large"});
    one_transaction(p, s, {s.event("e1", "order", "o-1", std::string(100, 'x'))}, 712);
    REQUIRE(sink.sent.size() == 1);
    const Sent& copy = sink.sent[0];
    CHECK(copy.topic == "outbox.dead_letter");
    CHECK(copy.key == "o-1");
    CHECK_FALSE(copy.value);  // the payload is what was refused
    CHECK(copy.headers.at("outbox-error-code") == "too_large");
    CHECK(copy.headers.at("outbox-original-topic") == "outbox.event.order");
    CHECK(copy.headers.at("outbox-payload-bytes") == "100");
    CHECK(copy.headers.at("id") == "e1");
    REQUIRE(observer.dead_letters.size() == 1);
    CHECK(observer.dead_letters[0].xid == 712);
    CHECK(observer.dead_letters[0].code == "too_large");
    CHECK(observer.dead_letters[0].detail ==
          "Kafka refused the record for topic \"outbox.event.order\": Broker: Message size too large");
    CHECK(p.confirmable() == kStart);
    const Settled settled = p.on_delivery(acked(copy));
    CHECK_FALSE(settled.event_published);
    CHECK(p.confirmable() == Lsn(0x2010));
    CHECK(p.counters().events_dead_lettered == 1);
    CHECK(p.counters().events_published == 0);
}

TEST_CASE_FIXTURE(DeadLetterPipeline,
                  "pipeline: a delivery refused for good is dead-lettered from the record the sink reports") {
    one_transaction(p, s, {s.event("e1", "order", "o-1", "{}")});
    REQUIRE(sink.sent.size() == 1);
    // The sink's own copy of the record, as librdkafka hands it back in the report.
    Record refused;
    refused.topic = "outbox.event.order";
    refused.key = "o-1";
    refused.value = "{}";
    refused.headers = {{"id", "e1"}};
    p.on_delivery(Delivery{sink.sent[0].cookie, DeliveryStatus::Refused, "outbox.event.order",
                           "rejected_by_kafka", "Broker: Invalid record", &refused});
    REQUIRE(sink.sent.size() == 2);
    CHECK(sink.sent[1].cookie == sink.sent[0].cookie);
    CHECK(sink.sent[1].topic == "outbox.dead_letter");
    CHECK(sink.sent[1].headers.at("outbox-error-code") == "rejected_by_kafka");
    CHECK(sink.sent[1].headers.at("id") == "e1");
    CHECK(p.confirmable() == kStart);
    p.on_delivery(acked(sink.sent[1]));
    CHECK(p.confirmable() == Lsn(0x2010));
}

TEST_CASE_FIXTURE(
    DeadLetterPipeline,
    "pipeline: an invalid row goes to the dead-letter topic with the reason, and the slot moves past it") {
    one_transaction(p, s, {s.event("e1", std::nullopt, "o-1", "{}"), s.event("e2", "order", "o-2", "{}")});
    REQUIRE(sink.sent.size() == 2);
    CHECK(sink.sent[0].topic == "outbox.dead_letter");
    CHECK(sink.sent[0].headers.at("outbox-error-code") == "null_value");
    CHECK(sink.sent[0].headers.at("outbox-table") == "public.outbox");
    CHECK(sink.sent[0].value == "{}");
    CHECK(sink.sent[1].topic == "outbox.event.order");
    REQUIRE(observer.dead_letters.size() == 1);
    CHECK(observer.dead_letters[0].code == "null_value");
    p.on_delivery(acked(sink.sent[0]));
    p.on_delivery(acked(sink.sent[1]));
    CHECK(p.confirmable() == Lsn(0x2010));
    CHECK(p.counters().events_dead_lettered == 1);
    CHECK(p.counters().events_published == 1);
}

TEST_CASE_FIXTURE(StopPipeline,
                  "pipeline: on_invalid stop holds the bad row's transaction for good and stops reading") {
    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(700, 0x1800));
    p.on_message(s.event("e0", "order", "o-0", "{}"));
    p.on_message(Stream::commit(0x1800, 0x1810));
    p.on_message(Stream::begin(701, 0x2000));
    p.on_message(s.event("e1", std::nullopt, "o-1", "{}"));
    REQUIRE(p.stop_reason());
    CHECK(*p.stop_reason() == "null_value: aggregate_type column \"aggregatetype\" is NULL");
    CHECK_FALSE(p.wants_input());
    REQUIRE(observer.stops.size() == 1);
    CHECK(observer.stops[0].xid == 701);
    CHECK(sink.sent.size() == 1);  // nothing goes to a dead-letter topic
    p.on_message(Stream::commit(0x2000, 0x2010));
    p.on_delivery(acked(sink.sent[0]));
    CHECK(p.confirmable() == Lsn(0x1810));  // up to the transaction before, never past the bad row
    CHECK(p.unacknowledged() == 0);         // the held row is not waiting for Kafka
    CHECK_FALSE(p.failure());
}

TEST_CASE_FIXTURE(StopPipeline, "pipeline: on_invalid stop applies to a record Kafka refuses too") {
    sink.answers.push_back({SendStatus::Refused, "too_large", "Broker: Message size too large"});
    one_transaction(p, s, {s.event("e1", "order", "o-1", "{}")});
    REQUIRE(p.stop_reason());
    CHECK(p.stop_reason()->rfind("too_large: ", 0) == 0);
    CHECK(sink.sent.empty());
    CHECK(p.confirmable() == kStart);
    CHECK(p.unacknowledged() == 0);
}

TEST_CASE_FIXTURE(DeadLetterPipeline,
                  "pipeline: a dead-letter copy that is refused too is fatal, never skipped") {
    SUBCASE("refused when sent") {
        sink.answers.push_back({SendStatus::Refused, "too_large", "too large"});
        sink.answers.push_back({SendStatus::Refused, "too_large", "too large for the dead-letter topic"});
        one_transaction(p, s, {s.event("e1", "order", "o-1", "{}")});
        REQUIRE(p.failure());
        CHECK(p.failure()->kind == ErrorKind::Fatal);
        CHECK(p.failure()->what.find("the dead-letter topic refused an event too") != std::string::npos);
        CHECK(p.confirmable() == kStart);
    }
    SUBCASE("refused in its delivery report") {
        one_transaction(p, s, {s.event("e1", std::nullopt, "o-1", "{}")});
        REQUIRE(sink.sent.size() == 1);
        Record copy;
        copy.topic = "outbox.dead_letter";
        p.on_delivery(Delivery{sink.sent[0].cookie, DeliveryStatus::Refused, "outbox.dead_letter",
                               "too_large", "Broker: Message size too large", &copy});
        REQUIRE(p.failure());
        CHECK(p.failure()->kind == ErrorKind::Fatal);
        CHECK(p.confirmable() == kStart);
    }
    SUBCASE("no room for a copy made from a delivery report: the session restarts") {
        one_transaction(p, s, {s.event("e1", "order", "o-1", "{}")});
        Record refused;
        refused.topic = "outbox.event.order";
        sink.answers.push_back({SendStatus::NoRoom, {}, "Local: Queue full"});
        p.on_delivery(Delivery{sink.sent[0].cookie, DeliveryStatus::Refused, "outbox.event.order",
                               "too_large", "Broker: Message size too large", &refused});
        REQUIRE(p.failure());
        CHECK(p.failure()->kind == ErrorKind::Transient);
        CHECK(p.failure()->what == "cannot produce to the dead-letter topic: Local: Queue full");
    }
}

TEST_CASE_FIXTURE(
    DeadLetterPipeline,
    "pipeline: a full sink holds the record until resume() sends it, and reads nothing meanwhile") {
    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(700, 0x2000));
    sink.answers.push_back({SendStatus::NoRoom, {}, "Local: Queue full"});
    p.on_message(s.event("e1", "order", "o-1", "{\"a\": 1}"));
    CHECK(p.holding());
    CHECK_FALSE(p.wants_input());
    CHECK(sink.sent.empty());
    sink.answers.push_back({SendStatus::NoRoom, {}, "Local: Queue full"});
    CHECK_FALSE(p.resume());
    CHECK(p.resume());
    CHECK(p.wants_input());
    REQUIRE(sink.sent.size() == 1);
    CHECK(sink.sent[0].value == "{\"a\": 1}");
    CHECK(sink.sent[0].headers.at("id") == "e1");
    CHECK(sink.attempts == 3);
    p.on_message(Stream::commit(0x2000, 0x2010));
    CHECK(p.unacknowledged() == 1);  // one event, not one per attempt
    p.on_delivery(acked(sink.sent[0]));
    CHECK(p.confirmable() == Lsn(0x2010));
}

TEST_CASE("pipeline: reading stops at the in-flight bound and resumes as acknowledgements arrive") {
    FakeSink sink;
    RecordingObserver observer;
    PipelineOptions o = options();
    o.max_inflight_events = 2;
    Pipeline p(o, kStart, sink, observer);
    Stream s;
    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(700, 0x2000));
    p.on_message(s.event("e1", "order", "o-1", "{}"));
    CHECK(p.wants_input());
    p.on_message(s.event("e2", "order", "o-1", "{}"));
    CHECK(p.backpressured());
    CHECK_FALSE(p.wants_input());
    p.on_delivery(acked(sink.sent[0]));
    CHECK(p.wants_input());

    o.max_inflight_events = 1000;
    o.max_inflight_bytes = 50;
    FakeSink sink2;
    Pipeline bytes(o, kStart, sink2, observer);
    bytes.on_message(s.outbox_relation());
    bytes.on_message(Stream::begin(700, 0x2000));
    bytes.on_message(s.event("e1", "order", "o-1", std::string(60, 'p')));
    CHECK(bytes.inflight_bytes() >= 60);
    CHECK_FALSE(bytes.wants_input());
    bytes.on_delivery(acked(sink2.sent[0]));
    CHECK(bytes.inflight_bytes() == 0);
    CHECK(bytes.wants_input());
}

TEST_CASE_FIXTURE(DeadLetterPipeline, "pipeline: messages out of protocol order are protocol errors") {
    p.on_message(s.outbox_relation());
    try {
        p.on_message(s.event("e1", "order", "o-1", "{}"));
        FAIL("an Insert outside a transaction was accepted");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Protocol);
    }
    try {
        p.on_message(pgoutput::StreamStart{Xid(5), true});
        FAIL("a streamed transaction was accepted");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Protocol);
    }
    CHECK_THROWS_AS(p.on_delivery(Delivery{99, DeliveryStatus::Acknowledged, "t", {}, {}, nullptr}),
                    LedgerError);
}

// pgoutput messages written as hex, decoded as the session decodes them.
pgoutput::Message decoded(std::string_view hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    pgoutput::Message message = pgoutput::decode(bytes);
    REQUIRE(!std::holds_alternative<pgoutput::Insert>(message));  // no views into `bytes` survive
    return message;
}

// Found by fuzz_pgoutput_sequence: the ledger's "caller's bug" (LedgerError, ErrorKind::Fatal,
// exit 70) was reachable from the peer's bytes; the order of Begin and Commit is the peer's, so a
// broken one is a protocol error (exit 76) like an Insert outside a transaction.
TEST_CASE_FIXTURE(DeadLetterPipeline,
                  "pipeline: a Begin inside a transaction is a protocol error (fuzz finding)") {
    // The fuzzer's input, minimized: two Begins in a row.
    p.on_message(decoded("42ffffe0c00003040f67a682770000313030150000"));
    try {
        p.on_message(decoded("420000000174616c222e7d74741674240000167424"));
        FAIL("a second Begin was accepted");
    } catch (const LedgerError& e) {
        FAIL("the ledger's own check answered: " << std::string(e.what()));
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Protocol);
        CHECK(std::string(e.what()) ==
              "Begin of xid 1471524 inside the transaction of xid 806682624, which never committed");
    }
    CHECK(p.confirmable() == kStart);
}

TEST_CASE_FIXTURE(DeadLetterPipeline,
                  "pipeline: a Commit outside a transaction is a protocol error (fuzz finding)") {
    // The fuzzer's input: a Commit as the session's first message.
    try {
        p.on_message(
            decoded("4300"
                    "8888884343ffcf00"
                    "000000430a070a43"
                    "0088888843ffcf0a"));
        FAIL("a Commit without a Begin was accepted");
    } catch (const LedgerError& e) {
        FAIL("the ledger's own check answered: " << std::string(e.what()));
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Protocol);
        CHECK(std::string(e.what()) == "Commit outside a transaction");
    }
    CHECK(p.confirmable() == kStart);
}

TEST_CASE_FIXTURE(
    DeadLetterPipeline,
    "pipeline: an outbox table that loses a configured column is announced once per change, not per row") {
    p.on_message(s.outbox_relation_without_payload());
    REQUIRE(observer.incomplete.size() == 1);
    CHECK(observer.incomplete[0] == "public.outbox: \"payload\" (payload)");
    p.on_message(Stream::begin(700, 0x2000));
    p.on_message(s.event_without_payload("e1", "order", "o-1"));
    p.on_message(s.event_without_payload("e2", "order", "o-2"));
    p.on_message(Stream::commit(0x2000, 0x2010));
    REQUIRE(observer.dead_letters.size() == 2);
    CHECK(observer.dead_letters[0].code == "missing_column");
    CHECK(observer.dead_letters[0].announced);
    CHECK(observer.dead_letters[1].announced);
    CHECK(observer.incomplete.size() == 1);  // still one line for two rows
    CHECK(sink.sent.size() == 2);
    CHECK(sink.sent[0].topic == "outbox.dead_letter");

    // Fixed (ADD COLUMN payload): rows route again; a later loss is announced again.
    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(701, 0x3000));
    p.on_message(s.event("e3", "order", "o-3", "{}"));
    p.on_message(Stream::commit(0x3000, 0x3010));
    CHECK(sink.sent.back().topic == "outbox.event.order");
    p.on_message(s.outbox_relation_without_payload());
    CHECK(observer.incomplete.size() == 2);
    // Other rejections of the same relation are not "announced".
    p.on_message(s.outbox_relation());
    p.on_message(Stream::begin(702, 0x4000));
    p.on_message(s.event("e4", std::nullopt, "o-4", "{}"));
    p.on_message(Stream::commit(0x4000, 0x4010));
    CHECK_FALSE(observer.dead_letters.back().announced);
}

TEST_CASE("pipeline: UPDATE and DELETE of outbox rows follow on_update and on_delete") {
    Stream s;
    const pgoutput::Message update = pgoutput::Update{std::nullopt, kOutboxId, std::nullopt, {}};
    const pgoutput::Message del =
        pgoutput::Delete{std::nullopt, kOutboxId, pgoutput::OldTuple{pgoutput::OldTupleKind::Key, {}}};
    const pgoutput::Message other_update = pgoutput::Update{std::nullopt, kOrdersId, std::nullopt, {}};
    SUBCASE("ignore: nothing happens, the transaction confirms") {
        PipelineWith w(operation_policies(OperationPolicy::Ignore, OperationPolicy::Ignore));
        w.p.on_message(s.orders_relation());
        one_transaction(w.p, s, {update, del, other_update});
        CHECK(w.observer.operations.empty());
        CHECK(w.p.confirmable() == Lsn(0x2010));
    }
    SUBCASE("warn: each is reported, nothing is published, the transaction confirms") {
        PipelineWith w(operation_policies(OperationPolicy::Warn, OperationPolicy::Warn));
        w.p.on_message(s.orders_relation());
        one_transaction(w.p, s, {update, del, other_update}, 705);
        CHECK(w.observer.operations ==
              std::vector<std::string>{"705 update public.outbox", "705 delete public.outbox"});
        CHECK(w.sink.sent.empty());
        CHECK(w.p.confirmable() == Lsn(0x2010));
        CHECK_FALSE(w.p.stop_reason());
    }
    SUBCASE("stop: the transaction is held for good and reading stops") {
        PipelineWith w(operation_policies(OperationPolicy::Ignore, OperationPolicy::Stop));
        one_transaction(w.p, s, {s.event("e1", "order", "o-1", "{}"), del}, 706);
        REQUIRE(w.p.stop_reason());
        CHECK(*w.p.stop_reason() ==
              "unexpected_delete: a DELETE of a row of outbox table public.outbox "
              "(outbox.on_delete: stop)");
        REQUIRE(w.observer.stops.size() == 1);
        CHECK(w.observer.stops[0].xid == 706);
        CHECK_FALSE(w.p.wants_input());
        w.p.on_delivery(acked(w.sink.sent.at(0)));
        CHECK(w.p.confirmable() == kStart);
        CHECK(w.p.unacknowledged() == 0);
    }
}

namespace {

pgoutput::Message logical(bool transactional, std::string_view prefix, std::string_view content,
                          std::uint64_t lsn) {
    return pgoutput::LogicalMessage{
        std::nullopt, static_cast<std::uint8_t>(transactional ? pgoutput::LogicalMessage::kTransactional : 0),
        Lsn(lsn), prefix, content};
}

PipelineOptions with_messages(OnInvalid on_invalid = OnInvalid::DeadLetter) {
    PipelineOptions o = options(on_invalid);
    o.outbox.messages_prefix = "outbox";
    o.outbox.headers = {"type"};
    return o;
}

constexpr std::string_view kEvent =
    R"({"id": "e-1", "aggregatetype": "order", "aggregateid": "o-\u00e9", "type": "Created", "payload": {"n": [1, 2]}})";

}  // namespace

TEST_CASE("pipeline: a transactional logical message with the prefix is routed like a row with its members") {
    PipelineWith w(with_messages());
    w.p.on_message(Stream::begin(700, 0x2000));
    w.p.on_message(logical(true, "outbox", kEvent, 0x1F00));
    w.p.on_message(logical(true, "other", kEvent, 0x1F10));  // another prefix: not an event
    w.p.on_message(Stream::commit(0x2000, 0x2010));
    REQUIRE(w.sink.sent.size() == 1);
    const Sent& e = w.sink.sent[0];
    CHECK(e.topic == "outbox.event.order");
    CHECK(e.key == "o-\xc3\xa9");          // unescaped, UTF-8
    CHECK(e.value == R"({"n": [1, 2]})");  // an object member is its JSON text, like a jsonb column
    CHECK(e.headers.at("id") == "e-1");
    CHECK(e.headers.at("type") == "Created");
    CHECK(w.p.confirmable() == kStart);
    w.p.on_delivery(acked(e));
    CHECK(w.p.confirmable() == Lsn(0x2010));
}

TEST_CASE("pipeline: a non-transactional message is never an event: dead letter, or a stop") {
    SUBCASE("dead letter, and the position after it is confirmable once the copy is acknowledged") {
        PipelineWith w(with_messages());
        w.p.on_message(logical(false, "outbox", kEvent, 0x3000));
        REQUIRE(w.sink.sent.size() == 1);
        CHECK(w.sink.sent[0].topic == "outbox.dead_letter");
        CHECK(w.sink.sent[0].headers.at("outbox-error-code") == "non_transactional_message");
        CHECK(w.sink.sent[0].headers.at("outbox-table") == "message.outbox");
        CHECK(w.p.confirmable() == kStart);
        w.p.on_delivery(acked(w.sink.sent[0]));
        CHECK(w.p.confirmable() == Lsn(0x3000));
        CHECK(w.p.counters().events_dead_lettered == 1);
    }
    SUBCASE("stop") {
        PipelineWith w(with_messages(OnInvalid::Stop));
        w.p.on_message(logical(false, "outbox", kEvent, 0x3000));
        CHECK(w.sink.sent.empty());
        REQUIRE(w.p.stop_reason());
        CHECK(w.p.stop_reason()->rfind("non_transactional_message: ", 0) == 0);
        w.p.on_keepalive(Lsn(0x4000));
        CHECK(w.p.confirmable() == kStart);
    }
}

TEST_CASE("pipeline: a message that is not a JSON object, or lacks a routing member, follows on_invalid") {
    PipelineWith w(with_messages());
    w.p.on_message(Stream::begin(700, 0x2000));
    w.p.on_message(logical(true, "outbox", "not json", 0x1F00));
    w.p.on_message(logical(true, "outbox", R"({"id": "e-2", "aggregateid": "o-1", "payload": {}})", 0x1F10));
    w.p.on_message(logical(
        true, "outbox",
        R"({"id": "e-3", "aggregatetype": "order", "aggregateid": "o-1", "type": "T", "payload": {"deep": )",
        0x1F20));
    w.p.on_message(Stream::commit(0x2000, 0x2010));
    REQUIRE(w.sink.sent.size() == 3);
    CHECK(w.sink.sent[0].headers.at("outbox-error-code") == "invalid_message");
    CHECK(w.sink.sent[0].value == "not json");  // the content, for inspection
    CHECK(w.sink.sent[1].headers.at("outbox-error-code") == "missing_column");
    CHECK(w.sink.sent[2].headers.at("outbox-error-code") == "invalid_message");
    REQUIRE(w.observer.dead_letters.size() == 3);
    CHECK(w.observer.dead_letters[0].detail.find("not a JSON object: expected a JSON object at byte 0") !=
          std::string::npos);
}

TEST_CASE(
    "pipeline: a batch of polled rows completes when every row's event is acknowledged or dead-lettered") {
    PipelineWith w(options(), Lsn(0));  // positions count batches from 0
    pgoutput::RelationInfo outbox;
    outbox.namespace_name = "public";
    outbox.name = "outbox";
    for (const char* c : {"id", "aggregatetype", "aggregateid", "payload"})
        outbox.columns.push_back({c, 25, -1, false});
    const auto row = [](std::string_view id, std::optional<std::string_view> type) {
        return pgoutput::Tuple{{{ColumnKind::Text, id},
                                type ? pgoutput::ColumnValue{ColumnKind::Text, *type}
                                     : pgoutput::ColumnValue{ColumnKind::Null, {}},
                                {ColumnKind::Text, "o-1"},
                                {ColumnKind::Text, "{}"}}};
    };
    w.p.begin_batch();
    w.p.on_row(outbox, row("e1", "order"), CommitInfo{Lsn(), Xid(901), 0});
    w.p.on_row(outbox, row("e2", std::nullopt), CommitInfo{Lsn(), Xid(902), 0});
    w.p.end_batch(Lsn(1));
    REQUIRE(w.sink.sent.size() == 2);
    CHECK(w.sink.sent[0].topic == "outbox.event.order");
    CHECK(w.sink.sent[0].headers.at("outbox-xid") == "901");  // each row's own transaction
    CHECK(w.sink.sent[1].topic == "outbox.dead_letter");
    CHECK(w.p.confirmable() < Lsn(1));
    w.p.on_delivery(acked(w.sink.sent[0]));
    CHECK(w.p.confirmable() < Lsn(1));
    w.p.on_delivery(acked(w.sink.sent[1]));
    CHECK(w.p.confirmable() == Lsn(1));
    // An empty batch completes at once.
    w.p.begin_batch();
    w.p.end_batch(Lsn(2));
    CHECK(w.p.confirmable() == Lsn(2));
    CHECK_THROWS_AS(w.p.on_row(outbox, row("e3", "order"), CommitInfo{}), LedgerError);
}

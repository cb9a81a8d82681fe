// libFuzzer target: a whole replication session's pgoutput messages, in order, through the
// decoder, a relation cache and relay::Pipeline with a fake Sink, so Relation -> Begin -> Insert
// -> Commit orders, schema changes, the router, the dead-letter / on_invalid policy and the
// ledger all run on what a hostile or broken peer could send.
//
// Input (fuzz/make-seeds writes seeds in it):
//   byte 0: pipeline options: bit0 on_invalid stop (else dead_letter); bits1-2 topic template
//           (outbox.event.{aggregate_type} | events | {table}.{aggregate_id} | by-id.{id});
//           bit3 a header column "trace_id"; bit4 tiny in-flight limits (2 events, 256 bytes);
//           bit5 logical messages with prefix "outbox" are events (messages.prefix); bits6-7
//           on_update/on_delete: ignore/ignore, warn/stop, stop/warn, warn/warn with
//           tombstone_on_empty_payload
//   then records: [control: 1 byte][length: UInt16 big-endian][message: length bytes]; a length
//           past the end takes what is left.
//   control: bits0-2 how the sink answers sends during this message (0-4 queued, 5 no room
//           once, 6 refused, 7 failed); bits3-4 then settle deliveries (0 none, 1 acknowledge
//           the oldest, 2 acknowledge all, 3 one delivery of the oldest as bits5-6 say:
//           acknowledged, refused, failed, acknowledged); bit7 a keepalive afterwards at the
//           highest LSN seen so far.
//
// Expected: DecodeError and outbox::Error(Protocol) for what the peer got wrong; the session
// ends there, as the relay's does. Findings: any other exception, a sanitizer report, and the
// invariants checked after every step (std::abort): the confirmable LSN never moves back and
// never passes a transaction with an event Kafka has not acknowledged (a model of the ledger
// kept here from what the sink saw), one delivery per queued cookie, nothing left in flight
// once every delivery is acknowledged.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "finding.h"
#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"
#include "relay/ledger.h"
#include "relay/pipeline.h"

using namespace outbox;
namespace pg = outbox::pgoutput;

namespace {

// The harness's model of what may be confirmed (DESIGN rule 1), built only from the messages the
// pipeline accepted and what the sink saw.
struct Model {
    struct Txn {
        bool committed = false;
        Lsn end_lsn;
        std::uint64_t pending = 0;
    };
    std::deque<Txn> txns;  // front: oldest not yet complete
    std::uint64_t first_seq = 0;
    bool open = false;
    Lsn limit;  // the highest position the pipeline may confirm

    std::uint64_t open_seq() const { return first_seq + txns.size() - 1; }
    void advance() {
        while (!txns.empty() && txns.front().committed && txns.front().pending == 0) {
            limit = std::max(limit, txns.front().end_lsn);
            txns.pop_front();
            ++first_seq;
        }
    }
    Txn& at(std::uint64_t seq) { return txns.at(seq - first_seq); }
};

struct Copy {
    std::string topic;
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::vector<std::pair<std::string, std::optional<std::string>>> headers;
    bool purged = false;  // drop_unsent(): its delivery says Failed
};

class FakeSink final : public relay::Sink {
public:
    explicit FakeSink(Model& model) : model_(model) {}

    relay::SendResult send(const Record& record, std::uint64_t cookie) override {
        FUZZ_CHECK(cookie != 0);
        FUZZ_CHECK(!record.topic.empty());
        // Every event is counted against its transaction from its first send on; a dead-letter
        // copy travels under the event's own cookie.
        if (!cookie_txn.contains(cookie)) {
            FUZZ_CHECK(model_.open);
            cookie_txn[cookie] = model_.open_seq();
            ++model_.at(model_.open_seq()).pending;
        }
        relay::SendResult result;
        switch (answer) {
            case 5:
                answer = 0;  // no room once, then room
                result.status = relay::SendStatus::NoRoom;
                return result;
            case 6:
                result.status = relay::SendStatus::Refused;
                result.code = "too_large";
                result.detail = "fuzz: too large";
                last_refused = cookie;
                return result;
            case 7:
                result.status = relay::SendStatus::Failed;
                result.detail = "fuzz: producer failed";
                return result;
            default: break;
        }
        // Exactly one delivery per queued cookie: queuing one still in flight is a pipeline bug.
        FUZZ_CHECK(!queued.contains(cookie));
        Copy copy{record.topic, {}, {}, {}, false};
        if (record.key) copy.key = std::string(*record.key);
        if (record.value) copy.value = std::string(*record.value);
        for (const auto& h : record.headers) {
            copy.headers.emplace_back(
                std::string(h.name),
                h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
        }
        queued.emplace(cookie, std::move(copy));
        order.push_back(cookie);
        return result;
    }
    void drop_unsent() noexcept override {
        for (auto& [cookie, copy] : queued) copy.purged = true;
    }

    int answer = 0;
    std::uint64_t last_refused = 0;
    std::map<std::uint64_t, Copy> queued;
    std::deque<std::uint64_t> order;                    // queued cookies, oldest first
    std::map<std::uint64_t, std::uint64_t> cookie_txn;  // cookie -> transaction seq in the model

private:
    Model& model_;
};

class CheckingObserver final : public relay::Observer {
public:
    void dead_lettered(const CommitInfo&, const Rejection& why, bool) override {
        FUZZ_CHECK(!why.code.empty());
    }
    void outbox_columns_missing(const pg::RelationInfo&, const std::vector<std::string>& missing) override {
        FUZZ_CHECK(!missing.empty());
    }
    void unexpected_operation(const CommitInfo&, const pg::RelationInfo&,
                              std::string_view operation) override {
        FUZZ_CHECK(operation == "update" || operation == "delete");
    }
    void refused_stopping(const CommitInfo&, const Rejection& why) override {
        FUZZ_CHECK(!why.code.empty());
        ++stops;
    }
    int stops = 0;
};

relay::PipelineOptions options_from(std::uint8_t bits) {
    relay::PipelineOptions options;
    options.outbox.tables = {TableName{"public", "outbox"}, TableName{"pg_catalog", "outbox"}};
    options.outbox.on_invalid = (bits & 1) != 0 ? OnInvalid::Stop : OnInvalid::DeadLetter;
    using Kind = TopicSegment::Kind;
    switch ((bits >> 1) & 3) {
        case 0: break;  // the default: outbox.event.{aggregate_type}
        case 1:
            options.outbox.topic = "events";
            options.outbox.topic_segments = {{Kind::Literal, "events"}};
            break;
        case 2:
            options.outbox.topic = "{table}.{aggregate_id}";
            options.outbox.topic_segments = {
                {Kind::Table, ""}, {Kind::Literal, "."}, {Kind::AggregateId, ""}};
            break;
        case 3:
            options.outbox.topic = "by-id.{id}";
            options.outbox.topic_segments = {{Kind::Literal, "by-id."}, {Kind::Id, ""}};
            break;
    }
    if ((bits & 8) != 0) options.outbox.headers = {"trace_id"};
    if ((bits & 16) != 0) {
        options.max_inflight_events = 2;
        options.max_inflight_bytes = 256;
    }
    if ((bits & 32) != 0) options.outbox.messages_prefix = "outbox";
    using Policy = OperationPolicy;
    switch ((bits >> 6) & 3) {
        case 0: break;
        case 1: options.outbox.on_update = Policy::Warn, options.outbox.on_delete = Policy::Stop; break;
        case 2: options.outbox.on_update = Policy::Stop, options.outbox.on_delete = Policy::Warn; break;
        case 3:
            options.outbox.on_update = options.outbox.on_delete = Policy::Warn;
            options.outbox.tombstone_on_empty_payload = true;
            break;
    }
    return options;
}

class Session {
public:
    Session(std::uint8_t option_bits, Lsn start)
        : sink_(model_),
          messages_(((option_bits & 32) != 0)),
          pipeline_(options_from(option_bits), start, sink_, observer_) {
        model_.limit = start;
        last_confirmable_ = start;
    }

    bool alive() const { return alive_; }

    // Feeds one decoded message; false once the session has ended (by a peer's error or policy).
    void feed(const pg::Message& message) {
        make_room();
        if (!pipeline_.wants_input()) {
            alive_ = false;
            return;
        }
        const bool begin = std::holds_alternative<pg::Begin>(message);
        const auto* commit = std::get_if<pg::Commit>(&message);
        const int stops_before = observer_.stops;
        // A logical message with the configured prefix outside Begin/Commit is a transaction of
        // its own in the ledger, ending at the message's LSN.
        const auto* logical = std::get_if<pg::LogicalMessage>(&message);
        const bool own_transaction =
            logical != nullptr && messages_ && logical->prefix == "outbox" && !model_.open;
        if (own_transaction) {
            model_.txns.push_back({});
            model_.open = true;
        }
        try {
            pipeline_.on_message(message);
        } catch (const relay::LedgerError& e) {
            // Documented as a caller's bug, never a peer's input: a peer must not reach it.
            finding("LedgerError from a peer's message:", e.what());
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Protocol)
                finding("non-protocol error from a peer's message:", e.what());
            alive_ = false;  // the relay ends the session here
            return;
        }
        // on_invalid: stop on a row the router refused holds its event pending without a send
        // (so does on_update/on_delete: stop).
        if (observer_.stops != stops_before && sink_.last_refused == 0)
            ++model_.at(model_.open_seq()).pending;
        sink_.last_refused = 0;
        if (own_transaction) {
            model_.txns.back().committed = true;
            model_.txns.back().end_lsn = logical->lsn;
            model_.open = false;
            model_.advance();
        } else if (begin) {
            model_.txns.push_back({});
            model_.open = true;
        } else if (commit != nullptr) {
            FUZZ_CHECK(model_.open);
            model_.txns.back().committed = true;
            model_.txns.back().end_lsn = commit->end_lsn;
            model_.open = false;
            model_.advance();
        }
        check();
    }

    void keepalive(Lsn wal_end) {
        pipeline_.on_keepalive(wal_end);
        if (!model_.open && model_.txns.empty()) model_.limit = std::max(model_.limit, wal_end);
        check();
    }

    // One delivery of the oldest queued record: 0 acknowledged, 1 refused, 2 failed.
    void deliver_oldest(int how) {
        if (sink_.order.empty()) return;
        const std::uint64_t cookie = sink_.order.front();
        sink_.order.pop_front();
        auto node = sink_.queued.extract(cookie);
        FUZZ_CHECK(!node.empty());
        Copy& copy = node.mapped();
        if (copy.purged) how = 2;
        Record record;  // the sink's copy as a Record, for a refusal
        record.topic = copy.topic;
        if (copy.key) record.key = *copy.key;
        if (copy.value) record.value = *copy.value;
        for (const auto& [name, value] : copy.headers) {
            record.headers.push_back(
                {name, value ? std::optional<std::string_view>(*value) : std::optional<std::string_view>()});
        }
        relay::Delivery delivery{cookie, relay::DeliveryStatus::Acknowledged, copy.topic, {}, {}, nullptr};
        if (how == 1) {
            delivery.status = relay::DeliveryStatus::Refused;
            delivery.code = "too_large";
            delivery.detail = "fuzz: refused";
            delivery.record = &record;
            sink_.last_refused = cookie;
        } else if (how == 2) {
            delivery.status = relay::DeliveryStatus::Failed;
            delivery.detail = "fuzz: timed out";
        }
        try {
            (void)pipeline_.on_delivery(delivery);
        } catch (const Error& e) {
            finding("a delivery report of a queued record threw:", e.what());
        }
        if (how == 0) {
            const auto txn = sink_.cookie_txn.find(cookie);
            FUZZ_CHECK(txn != sink_.cookie_txn.end());
            auto& pending = model_.at(txn->second).pending;
            FUZZ_CHECK(pending > 0);
            --pending;
            sink_.cookie_txn.erase(txn);
            model_.advance();
        }
        sink_.last_refused = 0;
        check();
    }

    void settle(std::uint8_t control) {
        switch ((control >> 3) & 3) {
            case 0: break;
            case 1: deliver_oldest(0); break;
            case 2:
                while (!sink_.order.empty()) deliver_oldest(0);
                break;
            case 3: deliver_oldest(((control >> 5) & 3) == 3 ? 0 : (control >> 5) & 3); break;
        }
        if (pipeline_.holding()) sink_.answer = 0, (void)pipeline_.resume();
        check();
    }

    // The end of the input: the producer acknowledges everything still queued.
    void drain() {
        sink_.answer = 0;
        while (pipeline_.holding() || !sink_.order.empty()) {
            while (!sink_.order.empty()) deliver_oldest(0);
            if (pipeline_.holding()) (void)pipeline_.resume();
        }
        if (!pipeline_.failure() && !pipeline_.stop_reason()) {
            // Nothing is in flight any more: every event is settled, every byte given back.
            FUZZ_CHECK(pipeline_.unacknowledged() == 0);
            FUZZ_CHECK(pipeline_.inflight_bytes() == 0);
        }
    }

    FakeSink& sink() { return sink_; }

private:
    // Backpressure and a held record: serve deliveries until the pipeline wants input again.
    void make_room() {
        sink_.answer = sink_.answer == 5 ? 0 : sink_.answer;
        while (!pipeline_.failure() && !pipeline_.stop_reason() &&
               (pipeline_.holding() || pipeline_.backpressured()) && !sink_.order.empty()) {
            deliver_oldest(0);
            if (pipeline_.holding()) (void)pipeline_.resume();
        }
        if (pipeline_.holding()) (void)pipeline_.resume();
    }

    void check() {
        const Lsn now = pipeline_.confirmable();
        FUZZ_CHECK(now >= last_confirmable_);  // never moves back
        FUZZ_CHECK(now <= model_.limit);       // never past an unacknowledged event
        last_confirmable_ = now;
    }

    Model model_;
    FakeSink sink_;
    bool messages_;
    CheckingObserver observer_;
    relay::Pipeline pipeline_;
    Lsn last_confirmable_;
    bool alive_ = true;
};

std::uint64_t highest_lsn(const pg::Message& message) {
    if (const auto* b = std::get_if<pg::Begin>(&message)) return b->final_lsn.value();
    if (const auto* c = std::get_if<pg::Commit>(&message)) return c->end_lsn.value();
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    Session session(static_cast<std::uint8_t>(input[0]), Lsn(0x1000));
    pg::Decoder decoder;
    pg::RelationCache relations;  // the decoder's view, also for Update and Delete
    bool in_stream = false;
    std::uint64_t highest = 0;

    std::size_t at = 1;
    while (at < input.size()) {
        const auto control = static_cast<std::uint8_t>(input[at]);
        std::size_t length = 0;
        if (at + 3 <= input.size()) {
            length = (static_cast<std::size_t>(static_cast<std::uint8_t>(input[at + 1])) << 8) |
                     static_cast<std::uint8_t>(input[at + 2]);
        }
        at = std::min(at + 3, input.size());
        length = std::min(length, input.size() - at);
        const std::string_view bytes = input.substr(at, length);
        at += length;

        const pg::Message* message = nullptr;
        try {
            message = &decoder.decode(bytes, in_stream);
        } catch (const pg::DecodeError&) {
            // The relay ends the session at a malformed message; the decoder itself carries on
            // here so later messages are explored too.
            continue;
        }
        if (std::holds_alternative<pg::StreamStart>(*message)) in_stream = true;
        if (std::holds_alternative<pg::StreamStop>(*message)) in_stream = false;
        if (const auto* relation = std::get_if<pg::Relation>(message)) {
            const pg::RelationInfo& info = relations.update(*relation);
            FUZZ_CHECK(relations.find(relation->id) == &info);
            FUZZ_CHECK(info.columns.size() == relation->columns.size());
        }
        try {
            if (const auto* insert = std::get_if<pg::Insert>(message)) {
                relations.get(insert->relation).check_tuple(insert->new_tuple);
            } else if (const auto* update = std::get_if<pg::Update>(message)) {
                const pg::RelationInfo& info = relations.get(update->relation);
                info.check_tuple(update->new_tuple);
                if (update->old_tuple) info.check_tuple(update->old_tuple->tuple);
            } else if (const auto* del = std::get_if<pg::Delete>(message)) {
                relations.get(del->relation).check_tuple(del->old_tuple.tuple);
            }
        } catch (const pg::DecodeError&) {
        }
        (void)pg::message_name(*message);
        highest = std::max(highest, highest_lsn(*message));

        if (!session.alive()) continue;
        session.sink().answer = control & 7;
        session.feed(*message);
        if (!session.alive()) continue;
        session.settle(control);
        if ((control & 0x80) != 0) session.keepalive(Lsn(highest));
    }
    if (session.alive()) session.drain();
    return 0;
}

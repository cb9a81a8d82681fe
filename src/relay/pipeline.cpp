#include "relay/pipeline.h"

#include <algorithm>
#include <string>
#include <utility>
#include <variant>

namespace outbox::relay {

Pipeline::Pipeline(PipelineOptions options, Lsn start, Sink& sink, Observer& observer)
    : options_(std::move(options)),
      router_(options_.outbox),
      sink_(sink),
      observer_(observer),
      ledger_(start) {
    router_.set_rows_are_valid_utf8(options_.rows_are_valid_utf8);
}

void Pipeline::on_message(const pgoutput::Message& message) {
    if (const auto* insert = std::get_if<pgoutput::Insert>(&message)) {
        on_insert(*insert);
    } else if (const auto* begin = std::get_if<pgoutput::Begin>(&message)) {
        // The peer's order is checked here: the ledger's own checks are for its callers' bugs.
        if (ledger_.in_transaction()) {
            throw Error(ErrorKind::Protocol, "Begin of xid " + std::to_string(begin->xid.value()) +
                                                 " inside the transaction of xid " +
                                                 std::to_string(commit_.xid.value()) +
                                                 ", which never committed");
        }
        commit_ = CommitInfo{begin->final_lsn, begin->xid, begin->commit_time.unix_micros()};
        ticket_ = ledger_.begin(commit_.commit_time_unix_us);
    } else if (const auto* commit = std::get_if<pgoutput::Commit>(&message)) {
        if (!ledger_.in_transaction()) throw Error(ErrorKind::Protocol, "Commit outside a transaction");
        ledger_.commit(commit->end_lsn);
        ++counters_.transactions;
    } else if (const auto* relation = std::get_if<pgoutput::Relation>(&message)) {
        on_relation(relations_.update(*relation));
    } else if (const auto* logical = std::get_if<pgoutput::LogicalMessage>(&message)) {
        on_logical_message(*logical);
    } else if (const auto* update = std::get_if<pgoutput::Update>(&message)) {
        on_change(update->relation, options_.outbox.on_update, "update");
    } else if (const auto* del = std::get_if<pgoutput::Delete>(&message)) {
        on_change(del->relation, options_.outbox.on_delete, "delete");
    } else if (std::holds_alternative<pgoutput::StreamStart>(message) ||
               std::holds_alternative<pgoutput::StreamCommit>(message) ||
               std::holds_alternative<pgoutput::StreamAbort>(message) ||
               std::holds_alternative<pgoutput::StreamStop>(message)) {
        throw Error(ErrorKind::Protocol, "received a streamed transaction, but streaming was not requested");
    }
    // Truncate, Type and Origin carry no outbox events; a publication for
    // inserts (and the updates/deletes a policy asks for) does not send Truncate at all.
}

void Pipeline::on_relation(const pgoutput::RelationInfo& relation) {
    const auto known = std::find(incomplete_relations_.begin(), incomplete_relations_.end(), relation.id);
    if (known != incomplete_relations_.end()) incomplete_relations_.erase(known);
    if (!router_.is_outbox_table(relation)) return;
    const std::vector<std::string> missing = router_.missing_columns(relation);
    if (missing.empty()) return;
    incomplete_relations_.push_back(relation.id);
    observer_.outbox_columns_missing(relation, missing);
}

void Pipeline::on_change(RelationId relation_id, OperationPolicy policy, std::string_view operation) {
    if (!ledger_.in_transaction())
        throw Error(ErrorKind::Protocol, std::string(operation) + " outside a transaction");
    const pgoutput::RelationInfo& relation = relations_.get(relation_id);
    if (policy == OperationPolicy::Ignore || !router_.is_outbox_table(relation)) return;
    if (policy == OperationPolicy::Warn) {
        observer_.unexpected_operation(commit_, relation, operation);
        return;
    }
    // Stop: like on_invalid: stop, the transaction is held for good and nothing more is read.
    const Rejection why{operation == "update" ? "unexpected_update" : "unexpected_delete",
                        std::string(operation == "update" ? "an UPDATE" : "a DELETE") +
                            " of a row of outbox table " + relation.qualified_name() + " (outbox.on_" +
                            std::string(operation) + ": stop)"};
    observer_.refused_stopping(commit_, why);
    if (!stop_reason_) stop_reason_ = std::string(why.code) + ": " + why.detail;
    slots_.acquire({ticket_, 0, commit_, false});
    ledger_.add_event();
    ++poisoned_events_;
}

void Pipeline::on_logical_message(const pgoutput::LogicalMessage& message) {
    const auto& prefix = options_.outbox.messages_prefix;
    if (!prefix || message.prefix != *prefix) return;
    constexpr std::uint32_t kTextOid = 25;
    constexpr std::uint32_t kJsonbOid = 3802;
    // The members as the columns of a row of "message.<prefix>".
    std::string error;
    auto members = parse_json_object(message.content, error);
    message_relation_.id = RelationId(0);
    message_relation_.namespace_name = "message";
    message_relation_.name = std::string(message.prefix);
    message_relation_.columns.clear();
    message_tuple_.columns.clear();
    if (members) {
        message_members_ = std::move(*members);
    } else {
        // Not a JSON object: a dead-letter copy carries the content as its payload.
        message_members_.assign(1, JsonMember{options_.outbox.columns.payload, JsonMember::Kind::String,
                                              std::string(message.content)});
    }
    for (const JsonMember& m : message_members_) {
        message_relation_.columns.push_back(
            {m.name, m.kind == JsonMember::Kind::Raw ? kJsonbOid : kTextOid, -1, false});
        message_tuple_.columns.push_back(m.kind == JsonMember::Kind::Null
                                             ? pgoutput::ColumnValue{pgoutput::ColumnKind::Null, {}}
                                             : pgoutput::ColumnValue{pgoutput::ColumnKind::Text, m.value});
    }
    // A non-transactional message comes on its own, outside Begin/Commit: it gets a transaction
    // of its own in the ledger, ending at its LSN, so that nothing is confirmed past it before its
    // dead-letter copy is acknowledged (or ever, under on_invalid: stop).
    const bool own_transaction = !ledger_.in_transaction();
    if (own_transaction) {
        commit_ = CommitInfo{message.lsn, Xid(0), 0};
        ticket_ = ledger_.begin(0);
    }
    Rejection rejection;
    if (!message.transactional()) {
        reject(
            Rejection{"non_transactional_message",
                      "a non-transactional logical message (prefix \"" + std::string(message.prefix) +
                          "\"): it is written even when its transaction rolls back, so it is never an event"},
            commit_, nullptr, &message_relation_, &message_tuple_, 0);
    } else if (!members) {
        reject(Rejection{"invalid_message", "logical message content is not a JSON object: " + error},
               commit_, nullptr, &message_relation_, &message_tuple_, 0);
    } else if (router_.route_values(message_relation_, message_tuple_, commit_, record_, rejection) ==
               RouteOutcome::Routed) {
        publish(record_, false);
    } else {
        reject(rejection, commit_, nullptr, &message_relation_, &message_tuple_, 0);
    }
    if (own_transaction) ledger_.commit(message.lsn);
}

void Pipeline::begin_batch() {
    commit_ = CommitInfo{};
    ticket_ = ledger_.begin(0);
}

void Pipeline::on_row(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& row,
                      const CommitInfo& txn) {
    if (!ledger_.in_transaction()) throw LedgerError("on_row() outside a batch");
    relation.check_tuple(row);
    commit_ = txn;
    Rejection rejection;
    switch (router_.route_values(relation, row, commit_, record_, rejection)) {
        case RouteOutcome::Routed: publish(record_, false); return;
        case RouteOutcome::Rejected: reject(rejection, commit_, nullptr, &relation, &row, 0); return;
        case RouteOutcome::NotOutbox: return;  // route_values() never says so
    }
}

void Pipeline::end_batch(Lsn position) {
    ledger_.commit(position);
}

void Pipeline::on_keepalive(Lsn wal_end) noexcept {
    ledger_.keepalive(wal_end);
}

void Pipeline::on_insert(const pgoutput::Insert& insert) {
    if (!ledger_.in_transaction()) throw Error(ErrorKind::Protocol, "Insert outside a transaction");
    const pgoutput::RelationInfo& relation = relations_.get(insert.relation);
    relation.check_tuple(insert.new_tuple);
    Rejection rejection;
    switch (router_.route(relation, insert.new_tuple, commit_, record_, rejection)) {
        case RouteOutcome::NotOutbox: return;
        case RouteOutcome::Routed: publish(record_, false); return;
        case RouteOutcome::Rejected:
            reject(rejection, commit_, nullptr, &relation, &insert.new_tuple, 0);
            return;
    }
}

void Pipeline::publish(Record& record, bool dead_letter) {
    const std::uint64_t bytes = record.size_bytes();
    const std::uint64_t cookie = slots_.acquire({ticket_, bytes, commit_, dead_letter});
    ledger_.add_event();
    inflight_bytes_ += bytes;
    send(cookie, record, true);
}

void Pipeline::send(std::uint64_t cookie, Record& record, bool can_hold) {
    const SendResult r = sink_.send(record, cookie);
    if (r.status == SendStatus::Queued) return;
    if (r.status == SendStatus::NoRoom && can_hold) {
        // Rare: the in-flight bound sits below the sink's queue. Wait for room without reading
        // on; the record's views stay valid as long as its message does.
        held_cookie_ = cookie;
        held_record_ = &record;
        return;
    }
    const InflightSlots::Slot& slot = slots_.at(cookie);
    if (r.status == SendStatus::Refused) {
        // The event's policy applies; a refused dead-letter copy is fatal (reject() says so).
        reject(Rejection{r.code, "Kafka refused the record for topic \"" + record.topic + "\": " + r.detail},
               slot.commit, &record, nullptr, nullptr, cookie);
        return;
    }
    fail(ErrorKind::Transient, std::string(slot.dead_letter ? "cannot produce to the dead-letter topic: "
                                                            : "cannot produce to Kafka: ") +
                                   r.detail);
}

bool Pipeline::resume() {
    if (held_cookie_ == 0) return true;
    const std::uint64_t cookie = std::exchange(held_cookie_, 0);
    Record* record = std::exchange(held_record_, nullptr);
    send(cookie, *record, true);
    return held_cookie_ == 0;
}

void Pipeline::reject(const Rejection& rejection, const CommitInfo& txn, const Record* refused,
                      const pgoutput::RelationInfo* relation, const pgoutput::Tuple* tuple,
                      std::uint64_t cookie) {
    if (options_.outbox.on_invalid == OnInvalid::Stop) {
        observer_.refused_stopping(txn, rejection);
        if (!stop_reason_) stop_reason_ = std::string(rejection.code) + ": " + rejection.detail;
        // The event stays pending for good: its transaction never becomes confirmable.
        if (cookie == 0) {
            slots_.acquire({ticket_, 0, commit_, false});
            ledger_.add_event();
        }
        ++poisoned_events_;
        return;
    }
    if (cookie != 0 && slots_.at(cookie).dead_letter) {
        fail(ErrorKind::Fatal, "the dead-letter topic refused an event too (" + rejection.detail +
                                   "); stopping rather than losing it");
        return;
    }
    const bool announced = rejection.code == "missing_column" && relation != nullptr &&
                           std::find(incomplete_relations_.begin(), incomplete_relations_.end(),
                                     relation->id) != incomplete_relations_.end();
    observer_.dead_lettered(txn, rejection, announced);
    ++counters_.events_dead_lettered;
    if (refused != nullptr) {
        router_.dead_letter_for_record(*refused, rejection, dead_letter_record_);
    } else {
        router_.dead_letter_for_row(*relation, *tuple, commit_, rejection, record_, dead_letter_record_);
    }
    if (cookie == 0) {
        publish(dead_letter_record_, true);
        return;
    }
    // Same cookie: the ledger's pending count for this event is settled by the copy's delivery.
    // A copy made from a delivery report cannot wait for room: its views end with the report.
    slots_.at(cookie).dead_letter = true;
    send(cookie, dead_letter_record_, refused == &record_);
}

Settled Pipeline::on_delivery(const Delivery& delivery) {
    InflightSlots::Slot& slot = slots_.at(delivery.cookie);
    switch (delivery.status) {
        case DeliveryStatus::Acknowledged: {
            const Settled settled{!slot.dead_letter, slot.commit.commit_time_unix_us};
            if (settled.event_published) ++counters_.events_published;
            ++counters_.acknowledged;
            inflight_bytes_ -= std::min(inflight_bytes_, slot.bytes);
            ledger_.acknowledge(slot.ticket);
            slots_.release(delivery.cookie);
            return settled;
        }
        case DeliveryStatus::Refused:
            if (delivery.record == nullptr) {
                fail(ErrorKind::Fatal, "a refused delivery came without its record");
                return {};
            }
            reject(Rejection{delivery.code, "Kafka refused the record for topic \"" +
                                                std::string(delivery.record->topic) +
                                                "\": " + std::string(delivery.detail)},
                   slot.commit, delivery.record, nullptr, nullptr, delivery.cookie);
            return {};
        case DeliveryStatus::Failed:
            // Possibly persisted, possibly not: never confirm past it; the session replays.
            if (!failure_) {
                fail(ErrorKind::Transient, "Kafka delivery failed (" + std::string(delivery.detail) + ")");
                // Later events of the same key must not reach the broker before this one's replay.
                sink_.drop_unsent();
            }
            return {};
    }
    return {};
}

void Pipeline::fail(ErrorKind kind, std::string what) {
    if (!failure_) failure_ = PipelineFailure{kind, std::move(what)};
}

}  // namespace outbox::relay

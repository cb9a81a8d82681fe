#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json_object.h"
#include "common/lsn.h"
#include "outbox/options.h"
#include "outbox/record.h"
#include "outbox/router.h"
#include "pgoutput/messages.h"
#include "pgoutput/relation_cache.h"
#include "relay/inflight_slots.h"
#include "relay/ledger.h"
#include "relay/sink.h"

namespace outbox::relay {

struct PipelineOptions {
    OutboxOptions outbox;
    // Reading stops (backpressure) while this many events or bytes wait for the sink.
    std::uint64_t max_inflight_events = 100000;
    std::uint64_t max_inflight_bytes = 64ull * 1024 * 1024;
    // The rows' text is valid UTF-8 by the server's guarantee (OutboxRouter::set_rows_are_valid_utf8):
    // true only when the server says so (server_encoding and client_encoding UTF8).
    bool rows_are_valid_utf8 = false;
};

// What an operator must hear about. The pipeline neither logs nor counts in metrics: the
// caller does, through this interface. `txn` is the transaction of the event concerned.
class Observer {
public:
    virtual ~Observer() = default;
    // An event goes to the dead-letter topic instead of its own (on_invalid: dead_letter).
    // `announced`: its cause was reported already (outbox_columns_missing), so one line per
    // relation change is enough, not one per row.
    virtual void dead_lettered(const CommitInfo& txn, const Rejection& why, bool announced) = 0;
    // A Relation message (an ALTER TABLE while streaming) shows an outbox table without some
    // configured columns: its rows will be refused until the table or the configuration is fixed.
    virtual void outbox_columns_missing(const pgoutput::RelationInfo& relation,
                                        const std::vector<std::string>& missing) = 0;
    // An UPDATE or DELETE of an outbox row under on_update/on_delete: warn ("update"/"delete").
    // With stop, refused_stopping() is called instead.
    virtual void unexpected_operation(const CommitInfo& txn, const pgoutput::RelationInfo& relation,
                                      std::string_view operation) = 0;
    // An event was refused under on_invalid: stop; nothing from it on will be confirmed.
    virtual void refused_stopping(const CommitInfo& txn, const Rejection& why) = 0;
};

// Why the session must end without confirming anything more. Transient: the next session
// replays from the slot (duplicates, never loss). Fatal: continuing could lose an event.
struct PipelineFailure {
    ErrorKind kind = ErrorKind::Transient;
    std::string what;
};

// What a delivery settled, for the caller's latency and per-topic figures.
struct Settled {
    bool event_published = false;  // an event reached its own topic (not a dead-letter copy)
    std::int64_t commit_time_unix_us = 0;
};

struct PipelineCounters {
    std::uint64_t transactions = 0;          // commits seen (with or without events)
    std::uint64_t events_published = 0;      // acknowledged on their own topic
    std::uint64_t events_dead_lettered = 0;  // sent to the dead-letter topic instead
    std::uint64_t acknowledged = 0;          // any acknowledgement, dead-letter copies included
};

// The relay's core (DESIGN: Layers): decoded pgoutput messages in, records out through a Sink,
// delivery outcomes back in, the WAL position that is safe to confirm out. Owns the relation
// cache, the router, the ledger, the in-flight slots, the open transaction and the policy for
// events that retrying cannot fix (dead-letter or stop). One pipeline per replication session.
// Pure: no I/O, no clock, no logging.
//
// Records the pipeline sends hold views into the message it was fed; when the sink has no room
// the record is held, and the caller must keep that message's frame alive and feed nothing new
// until resume() has sent it (wants_input() says when).
class Pipeline {
public:
    // `start`: the slot's confirmed position. `sink` and `observer` must outlive the pipeline.
    Pipeline(PipelineOptions options, Lsn start, Sink& sink, Observer& observer);
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    // Throws Error(Protocol) for messages that break the protocol's order (an Insert or a Commit
    // outside a transaction, a Begin inside one, a streamed transaction that was never asked for)
    // and DecodeError for rows
    // that do not match their relation.
    void on_message(const pgoutput::Message& message);
    // Idle is not stuck: a keepalive's WAL end is confirmable when nothing is open or in flight.
    void on_keepalive(Lsn wal_end) noexcept;

    // Rows from elsewhere than the WAL (the polling source): a batch of rows read in one database
    // transaction is one ledger transaction. begin_batch(), then on_row() per row (the row's own
    // transaction in `txn`), then end_batch(position): once confirmable() reaches `position`,
    // every event of the batch and of every batch before is acknowledged (or dead-lettered) and
    // the rows may be deleted. Positions must grow from batch to batch (a counter will do).
    void begin_batch();
    void on_row(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& row, const CommitInfo& txn);
    void end_batch(Lsn position);
    // Sends the held record again; true when nothing is held any more.
    bool resume();
    // Settles the delivery report of one record sent through the sink.
    Settled on_delivery(const Delivery& delivery);

    // May the caller feed the next message?
    [[nodiscard]] bool wants_input() const noexcept {
        return held_cookie_ == 0 && !backpressured() && !stop_reason_ && !failure_;
    }
    [[nodiscard]] bool holding() const noexcept { return held_cookie_ != 0; }
    [[nodiscard]] bool backpressured() const noexcept {
        return ledger_.pending_events() >= options_.max_inflight_events ||
               inflight_bytes_ >= options_.max_inflight_bytes;
    }
    [[nodiscard]] bool in_transaction() const noexcept { return ledger_.in_transaction(); }
    [[nodiscard]] Lsn confirmable() const noexcept { return ledger_.confirmable(); }
    // Events waiting for the sink, not counting those held back for good by on_invalid: stop.
    [[nodiscard]] std::uint64_t unacknowledged() const noexcept {
        return ledger_.pending_events() - poisoned_events_;
    }
    [[nodiscard]] std::uint64_t inflight_bytes() const noexcept { return inflight_bytes_; }
    // Commit time (µs since the Unix epoch) of the oldest transaction not yet confirmable.
    [[nodiscard]] std::optional<std::int64_t> oldest_pending_commit_time() const noexcept {
        return ledger_.oldest_pending_commit_time();
    }
    // Commit time of the last transaction that became confirmable (0 before the first).
    [[nodiscard]] std::int64_t confirmed_commit_time() const noexcept {
        return ledger_.confirmed_commit_time();
    }
    [[nodiscard]] const std::optional<PipelineFailure>& failure() const noexcept { return failure_; }
    // Set when on_invalid: stop refused an event ("code: detail"); nothing past it is confirmed.
    [[nodiscard]] const std::optional<std::string>& stop_reason() const noexcept { return stop_reason_; }
    [[nodiscard]] const PipelineCounters& counters() const noexcept { return counters_; }

private:
    void on_insert(const pgoutput::Insert& insert);
    void on_relation(const pgoutput::RelationInfo& relation);
    // A logical message with the configured prefix: an event routed from its JSON members.
    void on_logical_message(const pgoutput::LogicalMessage& message);
    // An UPDATE or DELETE of a row of `relation`, under `policy`.
    void on_change(RelationId relation, OperationPolicy policy, std::string_view operation);
    // Reserves a slot for `record` in the open transaction and sends it.
    void publish(Record& record, bool dead_letter);
    // Hands `record` to the sink under `cookie`; `can_hold`: its views outlive this call.
    void send(std::uint64_t cookie, Record& record, bool can_hold);
    // Applies on_invalid to a refused event. `cookie` 0: a row the router refused (not yet in
    // flight); else the event in flight under `cookie`, refused by the sink (`refused`).
    void reject(const Rejection& rejection, const CommitInfo& txn, const Record* refused,
                const pgoutput::RelationInfo* relation, const pgoutput::Tuple* tuple, std::uint64_t cookie);
    void fail(ErrorKind kind, std::string what);

    PipelineOptions options_;
    OutboxRouter router_;
    Sink& sink_;
    Observer& observer_;
    pgoutput::RelationCache relations_;
    Ledger ledger_;
    InflightSlots slots_;
    TxnTicket ticket_;  // the open transaction's
    CommitInfo commit_;
    Record record_;
    Record dead_letter_record_;
    std::uint64_t held_cookie_ = 0;  // a record the sink had no room for
    Record* held_record_ = nullptr;
    std::uint64_t inflight_bytes_ = 0;
    std::uint64_t poisoned_events_ = 0;  // held pending for good by on_invalid: stop
    std::optional<PipelineFailure> failure_;
    std::optional<std::string> stop_reason_;
    PipelineCounters counters_;
    std::vector<RelationId> incomplete_relations_;  // outbox tables announced as missing columns
    // The last logical message as a row: its members (which the tuple's values view) and a
    // relation naming them. Kept until the next message: a held record views them.
    std::vector<JsonMember> message_members_;
    pgoutput::RelationInfo message_relation_;
    pgoutput::Tuple message_tuple_;
};

}  // namespace outbox::relay

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"
#include "support/kcat.h"      // KafkaRecord
#include "support/workload.h"  // CommittedEvent

// The invariant checker (DESIGN.md, "Test infrastructure"): compares what the workload committed
// with what arrived in Kafka. Pure: values in, a verdict out; no servers.

namespace outbox::test {

// The slot's confirmed_flush_lsn as read during a scenario, with the wall-clock time (ms since
// the epoch, CLOCK_REALTIME) at which the read had returned.
struct SlotSample {
    Lsn confirmed;
    std::int64_t wall_ms = 0;
};

struct CheckOptions {
    // The LSN the relay had confirmed to PostgreSQL when the fault hit: best the slot's
    // confirmed_flush_lsn read right after the kill -9 (exact); read before it, it may be lower,
    // which only loosens the check. Duplicates are only allowed for events the relay may replay
    // from there: outbox-lsn (the commit record's LSN, Begin.final_lsn) >= this position, since
    // PostgreSQL skips only transactions whose commit record starts before it.
    // nullopt: duplicates are counted but not judged. With several faults, pass the lowest.
    std::optional<Lsn> confirmed_at_fault;
    std::string topic_prefix = "outbox.event.";  // expected topic = prefix + aggregate type
    std::string dead_letter_topic = "outbox.dead_letter";
    bool check_values = true;  // value == CommittedEvent::payload when that is not empty
    bool check_xids = true;    // outbox-xid == CommittedEvent::xid when that is not 0
    // outbox-lsn constant within a transaction and growing along a key's commit order. false for
    // source: poll, whose records carry outbox-lsn 0/0 (a polled row has no WAL position).
    bool check_lsns = true;
    // A finite message.timeout.ms lets librdkafka deliver a later event of a key before an earlier
    // one whose delivery timed out and which the relay then replays (docs/configuration.md,
    // kafka.properties). true: an order violation whose late event is replayable from
    // confirmed_at_fault (its first delivery's outbox-lsn at or after it) is counted in
    // Verdict::reordered_by_timeout instead of order_violations. One below the window still fails,
    // and so does any without confirmed_at_fault.
    bool timeouts_may_reorder = false;
    std::size_t max_examples = 5;  // problem lines kept per kind
    // Checkpoint: the slot never passes an event that was not yet acknowledged. For each sample,
    // every event whose outbox-lsn (commit record) is below `confirmed` must have been produced
    // by then: its earliest record's timestamp (the producer's create time, before the
    // acknowledgement) must not be after `wall_ms`. A record produced later proves a confirm
    // ahead of Kafka. Empty: not checked.
    std::vector<SlotSample> slot_samples;
};

struct Verdict {
    std::size_t committed = 0;         // committed events expected (normal + dead letter)
    std::size_t records = 0;           // Kafka records examined
    std::size_t delivered_unique = 0;  // committed events found at their expected topic
    std::size_t lost = 0;              // committed events not found at their expected topic
    std::size_t phantoms = 0;          // distinct ids in Kafka that were rolled back or never generated
    std::size_t duplicates = 0;        // extra deliveries: records beyond the first per event
    std::size_t duplicates_outside_window = 0;  // of those, not replayable from confirmed_at_fault
    std::size_t order_violations = 0;           // per key, a first delivery after one that committed later
    std::size_t reordered_by_timeout = 0;       // such, allowed by CheckOptions::timeouts_may_reorder
    std::size_t dead_lettered = 0;              // expected dead-letter events found on the dead-letter topic
    std::size_t misrouted = 0;  // records of known events on a wrong topic; keys split over partitions
    std::size_t malformed = 0;  // records with a missing/wrong id, key, value, outbox-xid, outbox-lsn
    // outbox-lsn not constant within one transaction, or going back along a key's commit order.
    std::size_t lsn_inconsistencies = 0;
    std::size_t checkpoint_violations = 0;  // slot samples that confirmed past an event produced later
    std::size_t slot_samples = 0;           // samples judged
    std::vector<std::string> problems;      // the first few examples of each kind

    [[nodiscard]] bool ok() const noexcept {
        return lost == 0 && phantoms == 0 && duplicates_outside_window == 0 && order_violations == 0 &&
               misrouted == 0 && malformed == 0 && lsn_inconsistencies == 0 && checkpoint_violations == 0;
    }
    // A markdown table row: | committed | delivered | lost | phantoms | duplicates | outside window |
    // order | dead-lettered | misrouted | malformed | lsn | checkpoint | verdict |
    [[nodiscard]] std::string summary() const;
    // The header (two lines) matching summary().
    [[nodiscard]] static std::string summary_header();
    // summary() plus the problems, one per line: for failure messages.
    [[nodiscard]] std::string describe() const;
};

Verdict check_invariants(const std::vector<CommittedEvent>& committed,
                         const std::vector<std::string>& rolled_back_ids,
                         const std::vector<KafkaRecord>& records, const CheckOptions& options);

Verdict check_invariants(const std::vector<CommittedEvent>& committed,
                         const std::vector<std::string>& rolled_back_ids,
                         const std::vector<KafkaRecord>& records,
                         std::optional<Lsn> confirmed_at_fault = std::nullopt);

}  // namespace outbox::test

#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "common/error.h"
#include "common/lsn.h"
#include "common/named_type.h"

namespace outbox::relay {

// Identifies the transaction an event belongs to; travels with the event's cookie so the
// delivery report can find its way back.
using TxnTicket = NamedType<std::uint64_t, struct TxnTicketTag>;

// Which WAL position is safe to confirm to PostgreSQL (DESIGN rule 1).
//
// Transactions enter in commit order (pgoutput sends them so). Each counts its events still
// waiting for Kafka; the confirmable LSN is the end LSN of the last transaction such that it
// and every earlier one are committed and fully acknowledged. A transaction without events
// completes at once. The confirmable LSN never moves back. Pure: no I/O, no clock.
class Ledger {
public:
    // Starts from what the slot had confirmed.
    explicit Ledger(Lsn start = Lsn()) noexcept : confirmable_(start) {}

    // A transaction begins; events added until commit() belong to it. `commit_time_unix_us` is
    // kept for the lag figures below (the ledger does not interpret it).
    TxnTicket begin(std::int64_t commit_time_unix_us = 0);
    // One more event of the open transaction is on its way to Kafka.
    void add_event();
    // The open transaction committed; its commit record ends at `end_lsn` (which may be at or
    // before the confirmable position for a replayed transaction: it never moves it back).
    void commit(Lsn end_lsn);
    // Kafka acknowledged one event of the transaction `ticket`.
    void acknowledge(TxnTicket ticket);

    // Idle is not stuck (DESIGN rule 2): with no transaction open and nothing in flight, a
    // keepalive's WAL end may be confirmed so a quiet outbox does not pin WAL.
    void keepalive(Lsn wal_end) noexcept;

    [[nodiscard]] Lsn confirmable() const noexcept { return confirmable_; }
    [[nodiscard]] bool idle() const noexcept { return !open_ && txns_.empty(); }
    [[nodiscard]] bool in_transaction() const noexcept { return open_; }
    [[nodiscard]] std::uint64_t pending_events() const noexcept { return pending_events_; }
    // Transactions received but not yet confirmable (the open one included).
    [[nodiscard]] std::size_t pending_transactions() const noexcept { return txns_.size(); }
    // Commit time of the oldest transaction not yet confirmable; nullopt when there is none.
    [[nodiscard]] std::optional<std::int64_t> oldest_pending_commit_time() const noexcept {
        if (txns_.empty()) return std::nullopt;
        return txns_.front().commit_time_unix_us;
    }
    // Commit time of the last transaction that became confirmable (0 before the first).
    [[nodiscard]] std::int64_t confirmed_commit_time() const noexcept { return confirmed_commit_time_; }

private:
    struct Txn {
        std::uint64_t seq = 0;
        std::uint64_t pending = 0;
        bool committed = false;
        Lsn end_lsn;
        std::int64_t commit_time_unix_us = 0;
    };
    void advance() noexcept;

    std::deque<Txn> txns_;  // front: oldest not yet confirmable
    std::uint64_t next_seq_ = 1;
    std::uint64_t pending_events_ = 0;
    bool open_ = false;
    Lsn confirmable_;
    std::int64_t confirmed_commit_time_ = 0;
};

// The ledger was driven against its contract (a bug in the caller, never a peer's input).
class LedgerError : public Error {
public:
    explicit LedgerError(const std::string& what) : Error(ErrorKind::Fatal, "ledger: " + what) {}
};

}  // namespace outbox::relay

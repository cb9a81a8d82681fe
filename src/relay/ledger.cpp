#include "relay/ledger.h"

#include <string>

namespace outbox::relay {

TxnTicket Ledger::begin(std::int64_t commit_time_unix_us) {
    if (open_) throw LedgerError("begin() while a transaction is open");
    open_ = true;
    txns_.push_back(Txn{next_seq_++, 0, false, Lsn(), commit_time_unix_us});
    return TxnTicket(txns_.back().seq);
}

void Ledger::add_event() {
    if (!open_) throw LedgerError("add_event() outside a transaction");
    ++txns_.back().pending;
    ++pending_events_;
}

void Ledger::commit(Lsn end_lsn) {
    if (!open_) throw LedgerError("commit() without begin()");
    // A commit ending at or before the confirmable position was confirmed before (the server
    // replays from a position, not a transaction): it completes, the position does not go back.
    open_ = false;
    txns_.back().committed = true;
    txns_.back().end_lsn = end_lsn;
    advance();
}

void Ledger::acknowledge(TxnTicket ticket) {
    if (txns_.empty() || ticket.value() < txns_.front().seq || ticket.value() > txns_.back().seq) {
        throw LedgerError("acknowledgement for unknown transaction " + std::to_string(ticket.value()));
    }
    Txn& txn = txns_[static_cast<std::size_t>(ticket.value() - txns_.front().seq)];
    if (txn.pending == 0) {
        throw LedgerError("more acknowledgements than events for transaction " +
                          std::to_string(ticket.value()));
    }
    --txn.pending;
    --pending_events_;
    advance();
}

void Ledger::keepalive(Lsn wal_end) noexcept {
    if (idle() && wal_end > confirmable_) confirmable_ = wal_end;
}

void Ledger::advance() noexcept {
    while (!txns_.empty() && txns_.front().committed && txns_.front().pending == 0) {
        if (txns_.front().end_lsn > confirmable_) confirmable_ = txns_.front().end_lsn;
        confirmed_commit_time_ = txns_.front().commit_time_unix_us;
        txns_.pop_front();
    }
}

}  // namespace outbox::relay

#pragma once

#include <cstdint>
#include <vector>

#include "outbox/record.h"
#include "relay/ledger.h"

namespace outbox::relay {

// The per-event state that travels with a record as its cookie: which transaction it belongs
// to and what it holds. Slots are reused (no heap allocation per event once grown).
class InflightSlots {
public:
    struct Slot {
        TxnTicket ticket;
        std::uint64_t bytes = 0;
        CommitInfo commit;         // the event's transaction, for messages about it
        bool dead_letter = false;  // this record is the dead-letter copy of a refused event
    };
    std::uint64_t acquire(const Slot& slot);  // returns the cookie (never 0)
    // Throws LedgerError for a cookie that is not in flight (a sink's bug, never an input's).
    Slot& at(std::uint64_t cookie);
    void release(std::uint64_t cookie);

private:
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;
};

}  // namespace outbox::relay

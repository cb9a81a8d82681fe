#include "relay/inflight_slots.h"

namespace outbox::relay {

std::uint64_t InflightSlots::acquire(const Slot& slot) {
    if (free_.empty()) {
        slots_.push_back(slot);
        return slots_.size();
    }
    const std::uint32_t index = free_.back();
    free_.pop_back();
    slots_[index] = slot;
    return static_cast<std::uint64_t>(index) + 1;
}

InflightSlots::Slot& InflightSlots::at(std::uint64_t cookie) {
    if (cookie == 0 || cookie > slots_.size()) throw LedgerError("delivery report for an unknown message");
    return slots_[cookie - 1];
}

void InflightSlots::release(std::uint64_t cookie) {
    free_.push_back(static_cast<std::uint32_t>(cookie - 1));
}

}  // namespace outbox::relay

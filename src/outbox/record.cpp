#include "outbox/record.h"

namespace outbox {

std::size_t Record::size_bytes() const noexcept {
    std::size_t n = topic.size() + (key ? key->size() : 0) + (value ? value->size() : 0);
    for (const auto& h : headers) n += h.name.size() + (h.value ? h.value->size() : 0);
    return n;
}

}  // namespace outbox

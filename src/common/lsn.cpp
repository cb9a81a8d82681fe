#include "common/lsn.h"

#include <cstdio>
#include <ostream>

namespace outbox {
namespace {

std::optional<std::uint32_t> parse_hex32(std::string_view text) noexcept {
    if (text.empty() || text.size() > 8) return std::nullopt;
    std::uint32_t value = 0;
    for (char c : text) {
        std::uint32_t digit = 0;
        if (c >= '0' && c <= '9')
            digit = static_cast<std::uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = static_cast<std::uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = static_cast<std::uint32_t>(c - 'A' + 10);
        else
            return std::nullopt;
        value = (value << 4) | digit;
    }
    return value;
}

}  // namespace

std::optional<Lsn> Lsn::parse(std::string_view text) noexcept {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto hi = parse_hex32(text.substr(0, slash));
    const auto lo = parse_hex32(text.substr(slash + 1));
    if (!hi || !lo) return std::nullopt;
    return Lsn((static_cast<std::uint64_t>(*hi) << 32) | *lo);
}

std::string Lsn::to_string() const {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(value() >> 32),
                  static_cast<unsigned>(value() & 0xFFFFFFFFu));
    return buf;
}

std::ostream& operator<<(std::ostream& out, Lsn lsn) {
    return out << lsn.to_string();
}

}  // namespace outbox

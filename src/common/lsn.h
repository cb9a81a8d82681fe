#pragma once

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "common/named_type.h"

namespace outbox {

// A WAL position. Distinct from any other integer: construct explicitly, compare with <=>,
// print and parse in PostgreSQL's "X/X" form (upper 32 bits / lower 32 bits, hex).
// 0 is InvalidXLogRecPtr.
class Lsn : public NamedType<std::uint64_t, struct LsnTag> {
public:
    using NamedType::NamedType;

    [[nodiscard]] constexpr bool is_valid() const noexcept { return value() != 0; }

    // Parses "16/B374D848". Returns nullopt for anything else (no sign, no spaces, 1-8 hex
    // digits per half).
    static std::optional<Lsn> parse(std::string_view text) noexcept;
    [[nodiscard]] std::string to_string() const;

    constexpr auto operator<=>(const Lsn&) const noexcept = default;
};

// For test failure messages and logs: prints the X/X form.
std::ostream& operator<<(std::ostream& out, Lsn lsn);

// Bytes of WAL between two positions (0 when `to` is not after `from`).
constexpr std::uint64_t bytes_between(Lsn from, Lsn to) noexcept {
    return to > from ? to.value() - from.value() : 0;
}

// A transaction id as pgoutput sends it.
using Xid = NamedType<std::uint32_t, struct XidTag>;

// A relation's OID as pgoutput sends it.
using RelationId = NamedType<std::uint32_t, struct RelationIdTag>;

}  // namespace outbox

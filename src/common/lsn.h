#pragma once

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace outbox {

// A WAL position. Distinct from any other integer: construct explicitly, compare with <=>,
// print and parse in PostgreSQL's "X/X" form (upper 32 bits / lower 32 bits, hex).
class Lsn {
public:
    constexpr Lsn() noexcept = default;
    constexpr explicit Lsn(std::uint64_t value) noexcept : value_(value) {}

    [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }
    [[nodiscard]] constexpr bool is_valid() const noexcept { return value_ != 0; }

    // Parses "16/B374D848". Returns nullopt for anything else (no sign, no spaces, 1-8 hex
    // digits per half).
    static std::optional<Lsn> parse(std::string_view text) noexcept;
    [[nodiscard]] std::string to_string() const;

    constexpr auto operator<=>(const Lsn&) const noexcept = default;

private:
    std::uint64_t value_ = 0;  // 0 is InvalidXLogRecPtr
};

// For test failure messages and logs: prints the X/X form.
std::ostream& operator<<(std::ostream& out, Lsn lsn);

// Bytes of WAL between two positions (0 when `to` is not after `from`).
constexpr std::uint64_t bytes_between(Lsn from, Lsn to) noexcept {
    return to > from ? to.value() - from.value() : 0;
}

class Xid {
public:
    constexpr Xid() noexcept = default;
    constexpr explicit Xid(std::uint32_t value) noexcept : value_(value) {}
    [[nodiscard]] constexpr std::uint32_t value() const noexcept { return value_; }
    constexpr auto operator<=>(const Xid&) const noexcept = default;

private:
    std::uint32_t value_ = 0;
};

// A relation's OID as pgoutput sends it.
class RelationId {
public:
    constexpr RelationId() noexcept = default;
    constexpr explicit RelationId(std::uint32_t value) noexcept : value_(value) {}
    [[nodiscard]] constexpr std::uint32_t value() const noexcept { return value_; }
    constexpr auto operator<=>(const RelationId&) const noexcept = default;

private:
    std::uint32_t value_ = 0;
};

}  // namespace outbox

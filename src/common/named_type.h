#pragma once

#include <compare>

namespace outbox {

// A value of type T that means one thing in the domain (a transaction id, a relation's OID...):
// constructed explicitly, compared only with its own kind, never converted implicitly. Each
// `Tag` makes a distinct type, so an Xid cannot be passed where a RelationId is expected.
template <typename T, typename Tag>
class NamedType {
public:
    using value_type = T;

    constexpr NamedType() noexcept = default;
    constexpr explicit NamedType(T value) noexcept : value_(value) {}

    [[nodiscard]] constexpr T value() const noexcept { return value_; }

    constexpr auto operator<=>(const NamedType&) const noexcept = default;

private:
    T value_{};
};

}  // namespace outbox

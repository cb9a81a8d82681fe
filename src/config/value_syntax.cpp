#include "config/value_syntax.h"

#include <algorithm>
#include <array>
#include <limits>

#include <fmt/format.h>

#include "config/text.h"

namespace outbox::config {

namespace {

constexpr std::string_view kDurationHint = "e.g. 500ms, 10s, 2m, 1h";

constexpr std::string_view kSizeHint =
    "plain bytes or a number with B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), "
    "e.g. 64MiB";

struct Unit {
    std::string_view name;
    std::uint64_t factor;
};

// " 64 MiB ": the leading digits and the trimmed rest.
struct NumberAndUnit {
    std::string_view number;
    std::string_view unit;
};

NumberAndUnit number_and_unit(std::string_view text) {
    const std::string_view s = trim(text);
    std::size_t i = 0;
    while (i < s.size() && is_digit(s[i])) ++i;
    return {s.substr(0, i), trim(s.substr(i))};
}

// Stores a parsed value that must not be zero ("0s", "0MiB" are errors, not "off").
template <class T>
std::string store_positive(const Parsed<T>& parsed, std::string_view text, T& out) {
    if (!parsed.value) return parsed.error;
    if (*parsed.value == T{}) return fmt::format("must be greater than 0, got {}", quote(text));
    out = *parsed.value;
    return {};
}

}  // namespace

Parsed<std::chrono::milliseconds> parse_duration_explained(std::string_view text) {
    const NumberAndUnit written = number_and_unit(text);
    if (written.number.empty()) {
        return {std::nullopt, fmt::format("expected a duration ({}), got {}", kDurationHint, quote(text))};
    }
    if (written.unit.empty()) {
        return {std::nullopt,
                fmt::format("expected a duration, got the bare number {}: units are required ({})",
                            quote(text), kDurationHint)};
    }
    static constexpr std::array<Unit, 4> kUnits{{
        {"ms", 1},
        {"s", 1000},
        {"m", 60ull * 1000},
        {"h", 60ull * 60 * 1000},
    }};
    const auto it =
        std::find_if(kUnits.begin(), kUnits.end(), [&](const Unit& u) { return u.name == written.unit; });
    if (it == kUnits.end()) {
        return {std::nullopt, fmt::format("expected a duration with unit ms, s, m or h ({}), got {}",
                                          kDurationHint, quote(text))};
    }
    const auto n = parse_uint(written.number);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!n || *n > kMax / it->factor) {
        return {std::nullopt, fmt::format("duration {} is too large", quote(text))};
    }
    return {std::chrono::milliseconds(static_cast<std::int64_t>(*n * it->factor)), {}};
}

Parsed<std::uint64_t> parse_size_explained(std::string_view text) {
    const NumberAndUnit written = number_and_unit(text);
    static constexpr std::array<Unit, 8> kUnits{{
        {"", 1},
        {"B", 1},
        {"KiB", 1024ull},
        {"MiB", 1024ull * 1024},
        {"GiB", 1024ull * 1024 * 1024},
        {"KB", 1000ull},
        {"MB", 1000ull * 1000},
        {"GB", 1000ull * 1000 * 1000},
    }};
    const auto it =
        std::find_if(kUnits.begin(), kUnits.end(), [&](const Unit& u) { return u.name == written.unit; });
    if (written.number.empty() || it == kUnits.end()) {
        return {std::nullopt, fmt::format("expected a size ({}), got {}", kSizeHint, quote(text))};
    }
    const auto n = parse_uint(written.number);
    if (!n || *n > std::numeric_limits<std::uint64_t>::max() / it->factor) {
        return {std::nullopt, fmt::format("size {} is too large", quote(text))};
    }
    return {*n * it->factor, {}};
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    return parse_duration_explained(text).value;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    return parse_size_explained(text).value;
}

std::string format_duration(std::chrono::milliseconds duration) {
    const auto ms = duration.count();
    if (ms == 0) return "0s";
    if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
    if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
    if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
    return fmt::format("{}ms", ms);
}

std::string format_size(std::uint64_t bytes) {
    if (bytes == 0) return "0B";
    // Largest unit that divides exactly: the shortest spelling.
    static constexpr std::array<Unit, 6> kUnits{{
        {"GiB", 1024ull * 1024 * 1024},
        {"GB", 1000ull * 1000 * 1000},
        {"MiB", 1024ull * 1024},
        {"MB", 1000ull * 1000},
        {"KiB", 1024ull},
        {"KB", 1000ull},
    }};
    for (const auto& u : kUnits) {
        if (bytes % u.factor == 0) return fmt::format("{}{}", bytes / u.factor, u.name);
    }
    return fmt::format("{}B", bytes);
}

// ---- the syntaxes of the key table -------------------------------------------------------

std::string Text::parse(std::string text, Value& out) {
    if (text.empty()) return "must not be empty";
    out = std::move(text);
    return {};
}

std::string Boolean::parse(const std::string& text, Value& out) {
    const std::string v = lower(text);
    if (v == "true") {
        out = true;
    } else if (v == "false") {
        out = false;
    } else {
        return fmt::format("expected true or false, got {}", quote(text));
    }
    return {};
}

std::string PositiveInteger::parse(const std::string& text, Value& out) {
    const std::string_view v = trim(text);
    const auto n = parse_uint(v);
    if (!n && !v.empty() && std::all_of(v.begin(), v.end(), is_digit)) {
        return fmt::format("{} is too large", quote(text));
    }
    if (!n || *n == 0) return fmt::format("expected a positive integer, got {}", quote(text));
    out = *n;
    return {};
}

std::string OptionalText::parse(std::string text, Value& out) {
    std::string value;
    if (std::string error = Text::parse(std::move(text), value); !error.empty()) return error;
    out = std::move(value);
    return {};
}

std::string Duration::parse(const std::string& text, Value& out) {
    return store_positive(parse_duration_explained(text), text, out);
}

std::string StatusInterval::parse(const std::string& text, Value& out) {
    Value value = out;
    if (std::string error = Duration::parse(text, value); !error.empty()) return error;
    if (value > kMax) {
        return "must be at most " + format_duration(kMax) + ", got " + quote(text) +
               " (the server's wal_sender_timeout is 60s by default)";
    }
    out = value;
    return {};
}

std::string Size::parse(const std::string& text, Value& out) {
    return store_positive(parse_size_explained(text), text, out);
}

}  // namespace outbox::config

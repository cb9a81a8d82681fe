#pragma once

// Text operations of the configuration module. ASCII only, so that what a key accepts never
// depends on the process locale.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outbox::config {

constexpr bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);

// A value quoted for an error message: "value", with control characters escaped and long
// values shortened.
std::string quote(std::string_view s);

// Optimal string alignment distance (Levenshtein plus adjacent transpositions), for "did you
// mean ...?" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);

// Parses a non-negative decimal integer made of digits only; nullopt on overflow or junk.
std::optional<std::uint64_t> parse_uint(std::string_view s);

}  // namespace outbox::config

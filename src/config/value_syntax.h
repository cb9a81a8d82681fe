#pragma once

// How values are written in the configuration file (docs/configuration.md, "Value syntax"):
// strings, booleans, positive integers, durations and sizes. Each kind is a ValueSyntax: what
// the YAML node must be, how its text is parsed (with the loader's error message) and how
// describe() shows the value. The key table (keys.cpp) names one syntax per key.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outbox::config {

// "500ms", "10s", "2m", "1h" (whitespace between number and unit allowed). A bare number
// has no unit and is rejected. nullopt on any syntax error or overflow.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// Plain bytes ("1048576") or with a unit: B, KiB, MiB, GiB (powers of 1024), KB, MB, GB
// (powers of 1000). nullopt on any syntax error or overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);
// Shortest exact spelling: 10000ms -> "10s", 90000ms -> "90s", 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds duration);
// 67108864 -> "64MiB", 1000000 -> "1MB", 1234 -> "1234B".
std::string format_size(std::uint64_t bytes);

// A parsed value, or why the text is not one.
template <class T>
struct Parsed {
    std::optional<T> value;
    std::string error;
};
// parse_duration() and parse_size() with the reason for the loader's message.
Parsed<std::chrono::milliseconds> parse_duration_explained(std::string_view text);
Parsed<std::uint64_t> parse_size_explained(std::string_view text);

// The syntax of one kind of value. parse() takes the scalar's text (${ENV} already expanded,
// by value where the value keeps it)
// and returns an error message, or "" after it has stored the value in `out`; on error `out`
// is left as it was. expected() completes "expected ..., got a map".
template <class S>
concept ValueSyntax = requires(std::string text, typename S::Value& out, const typename S::Value& value) {
    { S::expected() } -> std::convertible_to<std::string_view>;
    { S::parse(std::move(text), out) } -> std::same_as<std::string>;
    { S::show(value) } -> std::same_as<std::string>;
};

// Any scalar but the empty string.
struct Text {
    using Value = std::string;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value) { return value; }
};

// A string that may be left out (std::nullopt); the empty string is refused like Text's.
struct OptionalText {
    using Value = std::optional<std::string>;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value) { return value ? *value : "(not set)"; }
};

// true or false, in any letter case.
struct Boolean {
    using Value = bool;
    static std::string_view expected() { return "true or false"; }
    static std::string parse(const std::string& text, Value& out);
    static std::string show(const Value& value) { return value ? "true" : "false"; }
};

// Decimal digits, > 0.
struct PositiveInteger {
    using Value = std::uint64_t;
    static std::string_view expected() { return "a positive integer"; }
    static std::string parse(const std::string& text, Value& out);
    static std::string show(const Value& value) { return std::to_string(value); }
};

// A duration with its unit, > 0.
struct Duration {
    using Value = std::chrono::milliseconds;
    static std::string_view expected() { return "a duration"; }
    static std::string parse(const std::string& text, Value& out);
    static std::string show(const Value& value) { return format_duration(value); }
};

// postgres.status_interval: a Duration of at most 10 minutes. Status updates also tell the server
// how far WAL may be released; far apart, a quiet relay pins WAL and looks dead to monitoring.
struct StatusInterval {
    using Value = std::chrono::milliseconds;
    static constexpr std::chrono::minutes kMax{10};
    static std::string_view expected() { return "a duration"; }
    static std::string parse(const std::string& text, Value& out);
    static std::string show(const Value& value) { return format_duration(value); }
};

// A size in bytes, > 0.
struct Size {
    using Value = std::uint64_t;
    static std::string_view expected() { return "a size"; }
    static std::string parse(const std::string& text, Value& out);
    static std::string show(const Value& value) { return format_size(value); }
};

}  // namespace outbox::config

#pragma once

// How durations and sizes are written in the configuration file (docs/configuration.md,
// "Value syntax"): parsing with the loader's error messages, and the shortest exact spelling
// for describe().

#include <chrono>
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

}  // namespace outbox::config

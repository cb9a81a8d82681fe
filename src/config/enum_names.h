#pragma once

// The names the configuration file uses for enum values, each declared once in a {value, name}
// table: parsing, the "expected one of a, b, c" message and to_string() all read it.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "config/config.h"
#include "config/text.h"

namespace outbox::config {

template <class Enum>
struct EnumName {
    Enum value;
    std::string_view name;
};

// EnumNames<E>::table lists the names of E in the order the docs list them.
template <class Enum>
struct EnumNames;

template <>
struct EnumNames<Source> {
    static constexpr std::array<EnumName<Source>, 2> table{{
        {Source::Wal, "wal"},
        {Source::Poll, "poll"},
    }};
};

template <>
struct EnumNames<AfterPublish> {
    static constexpr std::array<EnumName<AfterPublish>, 2> table{{
        {AfterPublish::Delete, "delete"},
        {AfterPublish::Mark, "mark"},
    }};
};

template <>
struct EnumNames<OnInvalid> {
    static constexpr std::array<EnumName<OnInvalid>, 2> table{{
        {OnInvalid::DeadLetter, "dead_letter"},
        {OnInvalid::Stop, "stop"},
    }};
};

template <>
struct EnumNames<OperationPolicy> {
    static constexpr std::array<EnumName<OperationPolicy>, 3> table{{
        {OperationPolicy::Ignore, "ignore"},
        {OperationPolicy::Warn, "warn"},
        {OperationPolicy::Stop, "stop"},
    }};
};

template <>
struct EnumNames<TimestampSource> {
    static constexpr std::array<EnumName<TimestampSource>, 3> table{{
        {TimestampSource::Commit, "commit"},
        {TimestampSource::Produce, "produce"},
        {TimestampSource::Column, "column"},
    }};
};

template <>
struct EnumNames<SlotFailover> {
    static constexpr std::array<EnumName<SlotFailover>, 3> table{{
        {SlotFailover::Auto, "auto"},
        {SlotFailover::Enabled, "true"},
        {SlotFailover::Disabled, "false"},
    }};
};

template <>
struct EnumNames<LogLevel> {
    static constexpr std::array<EnumName<LogLevel>, 7> table{{
        {LogLevel::Trace, "trace"},
        {LogLevel::Debug, "debug"},
        {LogLevel::Info, "info"},
        {LogLevel::Warn, "warn"},
        {LogLevel::Error, "error"},
        {LogLevel::Critical, "critical"},
        {LogLevel::Off, "off"},
    }};
};

template <>
struct EnumNames<LogFormat> {
    static constexpr std::array<EnumName<LogFormat>, 2> table{{
        {LogFormat::Text, "text"},
        {LogFormat::Json, "json"},
    }};
};

// The value called exactly `name` (names are case-sensitive), or nullopt.
template <class Enum>
constexpr std::optional<Enum> enum_value(std::string_view name) {
    for (const auto& entry : EnumNames<Enum>::table) {
        if (entry.name == name) return entry.value;
    }
    return std::nullopt;
}

// The name of `value`; "unknown" for a value outside the table (a cast, never the loader).
template <class Enum>
constexpr std::string_view enum_name(Enum value) noexcept {
    for (const auto& entry : EnumNames<Enum>::table) {
        if (entry.value == value) return entry.name;
    }
    return "unknown";
}

// "a, b, c", with the given decoration around each name ("{" "}" for placeholders).
template <class Enum>
std::string enum_name_list(std::string_view before = {}, std::string_view after = {}) {
    std::string out;
    for (const auto& entry : EnumNames<Enum>::table) {
        if (!out.empty()) out += ", ";
        out += fmt::format("{}{}{}", before, entry.name, after);
    }
    return out;
}

// The ValueSyntax (value_syntax.h) of a key whose value is one of the names of Enum.
template <class Enum>
struct Choice {
    using Value = Enum;
    static std::string expected() { return "one of " + enum_name_list<Enum>(); }
    static std::string parse(const std::string& text, Value& out) {
        const std::optional<Enum> value = enum_value<Enum>(text);
        if (!value) return fmt::format("expected one of {}, got {}", enum_name_list<Enum>(), quote(text));
        out = *value;
        return {};
    }
    static std::string show(const Value& value) { return std::string(enum_name(value)); }
};

}  // namespace outbox::config

#pragma once

// The configuration keys, each declared once (keys.cpp): its dotted name, the member it sets
// and the syntax of its value, and how describe() shows it. The loader reads the file by this
// table; its unknown-key and required-key checks, describe() and the documentation test read
// the same table. Adding a key is one entry here and one row in docs/configuration.md.

#include <span>
#include <string>
#include <string_view>

namespace outbox::config {

struct Config;
class Problems;
struct Section;
class Value;

struct Key {
    using Read = void (*)(const Value& value, Config& config);
    using Show = std::string (*)(const Config& config);

    std::string_view path;  // dotted, as in messages and the docs: "postgres.status_interval"
    // Parses the value into the member(s) it sets; records what is wrong in the document.
    Read read = nullptr;
    // The value as describe() shows it on the key's line; nullptr when another key's line
    // (`shown_with`) includes it. A value that starts with a newline is a block of indented
    // lines under the label (kafka.properties).
    Show show = nullptr;
    std::string_view label;       // the line's label in describe() when not the key's name
    std::string_view shown_with;  // the key whose describe() line shows this one
    // A sibling key that takes a list instead of the one value (outbox.table, outbox.tables):
    // exactly one of the two may be set, and a required key is satisfied by either.
    std::string_view list_form;
    bool is_required = false;
    // A required key is satisfied too when this other key (dotted) is set.
    std::string_view unless_set;

    [[nodiscard]] constexpr Key required() const {
        Key key = *this;
        key.is_required = true;
        return key;
    }
    [[nodiscard]] constexpr Key required_unless(std::string_view other_key) const {
        Key key = required();
        key.unless_set = other_key;
        return key;
    }
    [[nodiscard]] constexpr Key or_list(std::string_view list_key) const {
        Key key = *this;
        key.list_form = list_key;
        return key;
    }
    [[nodiscard]] constexpr Key shown_as(Show show_value, std::string_view line_label = {}) const {
        Key key = *this;
        key.show = show_value;
        key.label = line_label;
        return key;
    }
    [[nodiscard]] constexpr Key shown_in_line_of(std::string_view other_key) const {
        Key key = *this;
        key.show = nullptr;
        key.shown_with = other_key;
        return key;
    }

    // "outbox.columns" for "outbox.columns.id"; "" for a key at the top level ("source").
    [[nodiscard]] constexpr std::string_view section() const {
        const std::size_t dot = path.rfind('.');
        return dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
    }
    // "id" for "outbox.columns.id".
    [[nodiscard]] constexpr std::string_view name() const { return path.substr(path.rfind('.') + 1); }
};

// Every key, in the order the loader reads them and describe() shows them. The order matters
// where one key's check depends on another's value (dead_letter_topic after on_invalid).
std::span<const Key> keys();

// A rule between keys of one section, checked once the loader has read the whole section.
struct Constraint {
    std::string_view section;
    void (*check)(const Config& config, const Section& section, Problems& problems);
};

std::span<const Constraint> constraints();

}  // namespace outbox::config

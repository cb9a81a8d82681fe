#pragma once

// The YAML side of the loader: a value as it stands in the document (its node, line and
// dotted key path), read as a key's syntax expects, and the problems found on the way. Every
// message names origin, line and path:
//   config.yaml:12: outbox.on_invalid: expected one of dead_letter, stop, got "skip"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace outbox::config {

// Where a value was written: its 1-based line and dotted key path ("" for the document).
struct Place {
    int line = 0;
    std::string path;
};

// "outbox" + "table" -> "outbox.table"; "" + "outbox" -> "outbox".
std::string dotted(std::string_view parent, std::string_view key);

// All problems of one document, so that the operator sees them together.
class Problems {
public:
    explicit Problems(std::string origin) : origin_(std::move(origin)) {}

    void add(const Place& place, std::string_view message);
    // Throws Error(Config) listing every problem, one per line, in file order.
    void throw_if_any();

private:
    struct Problem {
        int line;
        std::string text;
    };
    std::string origin_;
    std::vector<Problem> problems_;
};

// One string of a list, and where it was written ("outbox.tables[1]").
struct Item {
    std::string text;
    Place place;
};

// A node of the document as a configuration value. The readers record what is wrong with it
// in the document's Problems and return what they could read.
class Value {
public:
    Value(const YAML::Node& node, Place place, Problems& problems, std::string key = {})
        : node_(node), place_(std::move(place)), problems_(&problems), key_(std::move(key)) {}

    [[nodiscard]] const YAML::Node& node() const { return node_; }
    [[nodiscard]] const Place& place() const { return place_; }
    // The map key that introduced the value (the last part of its path).
    [[nodiscard]] const std::string& key() const { return key_; }

    // A scalar stands for a list of one: outbox.table for outbox.tables.
    void read_as_list_of_one() { list_of_one_ = true; }

    // The scalar's text with ${ENV} references expanded; nullopt when it is something else
    // ("expected <expected>, got a map") or a reference cannot be expanded.
    [[nodiscard]] std::optional<std::string> text(std::string_view expected = "a string") const;

    // The non-empty strings of a sequence; items that are not are reported and left out.
    [[nodiscard]] std::vector<Item> items() const;

    // The entries of a map (none for no value) in file order. Duplicate keys and keys that are
    // not plain names are reported and left out, and so is a key for which `refuse` (when
    // given) returns a message.
    using Refuse = std::function<std::string(std::string_view key)>;
    [[nodiscard]] std::vector<Value> entries(const Refuse& refuse = {}) const;

    void error(std::string_view message) const { problems_->add(place_, message); }
    void error(const Place& place, std::string_view message) const { problems_->add(place, message); }

private:
    YAML::Node node_;
    Place place_;
    Problems* problems_;
    std::string key_;
    bool list_of_one_ = false;
};

// A map of the document read as a section of the configuration.
struct Section {
    Place place;  // of the key that introduced it; the parent's line when the section is missing
    std::vector<Value> entries;

    [[nodiscard]] const Value* find(std::string_view key) const;
};

}  // namespace outbox::config

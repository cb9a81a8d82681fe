#include "config/yaml_value.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "config/env.h"

namespace outbox::config {

namespace {

std::string_view node_kind(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a sequence";
        case YAML::NodeType::Scalar: return "a scalar";
        case YAML::NodeType::Null: return "no value";
        case YAML::NodeType::Undefined: break;
    }
    return "nothing";
}

int line_of(const YAML::Node& node, int fallback) {
    const YAML::Mark mark = node.Mark();
    return mark.line >= 0 ? mark.line + 1 : fallback;
}

const Value* find_entry(const std::vector<Value>& entries, std::string_view key) {
    const auto it =
        std::find_if(entries.begin(), entries.end(), [&](const Value& e) { return e.key() == key; });
    return it == entries.end() ? nullptr : &*it;
}

}  // namespace

std::string dotted(std::string_view parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    return fmt::format("{}.{}", parent, key);
}

void Problems::add(const Place& place, std::string_view message) {
    std::string text =
        place.line > 0 ? fmt::format("{}:{}: ", origin_, place.line) : fmt::format("{}: ", origin_);
    if (!place.path.empty()) text += fmt::format("{}: ", place.path);
    text += message;
    problems_.push_back({place.line, std::move(text)});
}

void Problems::throw_if_any() {
    if (problems_.empty()) return;
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    std::string message;
    for (const auto& p : problems_) {
        if (!message.empty()) message += '\n';
        message += p.text;
    }
    throw Error(ErrorKind::Config, message);
}

std::optional<std::string> Value::text(std::string_view expected) const {
    if (!node_.IsScalar()) {
        error(fmt::format("expected {}, got {}", expected, node_kind(node_)));
        return std::nullopt;
    }
    Expanded expanded = expand_env(node_.Scalar());
    if (!expanded.error.empty()) {
        error(expanded.error);
        return std::nullopt;
    }
    return std::move(expanded.value);
}

std::vector<Item> Value::items() const {
    std::vector<Item> out;
    if (list_of_one_) {
        if (auto value = text()) out.push_back({std::move(*value), place_});
        return out;
    }
    if (!node_.IsSequence()) {
        error(fmt::format("expected a sequence, got {}", node_kind(node_)));
        return out;
    }
    std::size_t index = 0;
    for (auto it = node_.begin(); it != node_.end(); ++it, ++index) {
        const Value item(*it, Place{line_of(*it, place_.line), fmt::format("{}[{}]", place_.path, index)},
                         *problems_);
        auto value = item.text();
        if (!value) continue;
        if (value->empty()) {
            item.error("must not be empty");
            continue;
        }
        out.push_back({std::move(*value), item.place()});
    }
    return out;
}

std::vector<Value> Value::entries(const Refuse& refuse) const {
    std::vector<Value> out;
    if (node_.IsNull()) return out;
    if (!node_.IsMap()) {
        if (place_.path.empty()) {
            error(Place{line_of(node_, place_.line), ""},
                  fmt::format("expected a map at the top level, got {}", node_kind(node_)));
        } else {
            error(fmt::format("expected a map, got {}", node_kind(node_)));
        }
        return out;
    }
    for (auto it = node_.begin(); it != node_.end(); ++it) {
        const YAML::Node key_node = it->first;
        const int key_line = line_of(key_node, place_.line);
        if (!key_node.IsScalar()) {
            error(Place{key_line, place_.path},
                  fmt::format("keys must be plain names, got {}", node_kind(key_node)));
            continue;
        }
        const std::string& key = key_node.Scalar();
        Place key_place{key_line, dotted(place_.path, key)};
        if (const Value* previous = find_entry(out, key)) {
            error(key_place, fmt::format("duplicate key (first set at line {})", previous->place().line));
            continue;
        }
        if (refuse) {
            if (std::string why = refuse(key); !why.empty()) {
                error(key_place, why);
                continue;
            }
        }
        out.emplace_back(it->second, std::move(key_place), *problems_, key);
    }
    return out;
}

const Value* Section::find(std::string_view key) const {
    return find_entry(entries, key);
}

}  // namespace outbox::config

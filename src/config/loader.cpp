#include <algorithm>
#include <limits>
#include <map>
#include <span>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "config/config.h"
#include "config/file_contents.h"
#include "config/keys.h"
#include "config/text.h"
#include "config/yaml_value.h"

namespace outbox::config {

namespace {

bool in_section(const Key& key, std::string_view section) {
    return key.path.size() > section.size() && key.path.starts_with(section) &&
           key.path[section.size()] == '.';
}

// The names a section accepts, in table order: its keys, their list forms and its
// sub-sections. "" is the top level.
std::vector<std::string_view> names_in(std::string_view section) {
    std::vector<std::string_view> names;
    const auto add = [&names](std::string_view name) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    };
    for (const Key& key : keys()) {
        std::string_view rest = key.path;
        if (!section.empty()) {
            if (!in_section(key, section)) continue;
            rest.remove_prefix(section.size() + 1);
        }
        add(rest.substr(0, rest.find('.')));
        if (!key.list_form.empty() && key.section() == section) add(key.list_form);
    }
    return names;
}

// Every section in table order, the top level ("") first.
std::vector<std::string_view> section_paths() {
    std::vector<std::string_view> paths{""};
    for (const Key& key : keys()) {
        for (std::size_t dot = key.path.find('.'); dot != std::string_view::npos;
             dot = key.path.find('.', dot + 1)) {
            const std::string_view path = key.path.substr(0, dot);
            if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
        }
    }
    return paths;
}

// " (did you mean status_interval?)": the nearest name of the section, or the section where
// the key belongs; "" when neither is close.
std::string unknown_key_hint(std::string_view section, std::string_view key,
                             std::span<const std::string_view> known) {
    if (key == "<<") return " (YAML merge keys are not supported)";
    const std::size_t threshold = std::max<std::size_t>(1, std::min<std::size_t>(3, key.size() / 4));
    const std::string lowered = lower(key);
    std::string_view best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const auto candidate : known) {
        // The distance is at least the length difference: a candidate that far off can never be
        // the suggestion, and a long hostile key costs no O(length x length) table per candidate.
        const std::size_t gap = lowered.size() > candidate.size() ? lowered.size() - candidate.size()
                                                                  : candidate.size() - lowered.size();
        if (gap > threshold) continue;
        const std::size_t d = edit_distance(lowered, candidate);
        if (d < best_distance) {
            best_distance = d;
            best = candidate;
        }
    }
    if (!best.empty() && best_distance <= threshold) return fmt::format(" (did you mean {}?)", best);
    // The right key in the wrong section.
    for (const std::string_view other : section_paths()) {
        if (other == section) continue;
        const auto names = names_in(other);
        if (std::find(names.begin(), names.end(), key) != names.end()) {
            return fmt::format(" (did you mean {}?)", dotted(other, key));
        }
    }
    return {};
}

Value::Refuse refuse_unknown(std::string_view section) {
    return [section, known = names_in(section)](std::string_view key) -> std::string {
        if (std::find(known.begin(), known.end(), key) != known.end()) return {};
        return "unknown key" + unknown_key_hint(section, key, known);
    };
}

// "postgres.dsn, outbox.table and kafka.bootstrap_servers"
std::string required_keys() {
    std::vector<std::string_view> paths;
    for (const Key& key : keys()) {
        if (key.is_required) paths.push_back(key.path);
    }
    std::string out;
    for (std::size_t i = 0; i < paths.size(); ++i) {
        if (i > 0) out += i + 1 == paths.size() ? " and " : ", ";
        out += paths[i];
    }
    return out;
}

// Reads a document key by key, in the order of the key table, collecting every problem.
class Loader {
public:
    explicit Loader(std::string origin) : origin_(origin), problems_(std::move(origin)) {}

    Config load(const YAML::Node& root) {
        Config config;
        config.origin = origin_;
        if (root.IsNull()) {
            problems_.add(Place{1, ""},
                          fmt::format("the configuration is empty ({} are required)", required_keys()));
            problems_.throw_if_any();
        }
        const Value document(root, Place{1, ""}, problems_);
        sections_.emplace("", Section{document.place(), document.entries(refuse_unknown(""))});
        if (!root.IsMap()) problems_.throw_if_any();  // nothing else worth saying

        const std::span<const Key> all = keys();
        for (std::size_t i = 0; i < all.size(); ++i) {
            read(all[i], config);
            for (const Constraint& constraint : constraints()) {
                const bool section_done =
                    in_section(all[i], constraint.section) &&
                    (i + 1 == all.size() || !in_section(all[i + 1], constraint.section));
                if (section_done) constraint.check(config, open(constraint.section), problems_);
            }
        }
        problems_.throw_if_any();
        return config;
    }

private:
    // A section, read (and its keys checked) when the first of its keys is read: problems
    // come out in the order of the table even within one line. A missing section is empty,
    // at the line of its parent.
    const Section& open(std::string_view path) {
        if (const auto it = sections_.find(path); it != sections_.end()) return it->second;
        const std::size_t dot = path.rfind('.');
        const std::string_view parent_path = dot == std::string_view::npos ? "" : path.substr(0, dot);
        const std::string_view name = dot == std::string_view::npos ? path : path.substr(dot + 1);
        const Section& parent = open(parent_path);
        Section section{Place{parent.place.line, dotted(parent.place.path, name)}, {}};
        if (const Value* value = parent.find(name)) {
            section = Section{value->place(), value->entries(refuse_unknown(path))};
        }
        return sections_.emplace(std::string(path), std::move(section)).first->second;
    }

    // Whether the document sets the dotted key `path` ("" is never set).
    bool is_set(std::string_view path) {
        if (path.empty()) return false;
        const std::size_t dot = path.rfind('.');
        return open(path.substr(0, dot)).find(path.substr(dot + 1)) != nullptr;
    }

    void read(const Key& key, Config& config) {
        const Section& section = open(key.section());
        const Value* single = section.find(key.name());
        const Value* list = key.list_form.empty() ? nullptr : section.find(key.list_form);
        if (single != nullptr && list != nullptr) {
            problems_.add(Place{list->place().line, section.place.path},
                          fmt::format("set either {} or {}, not both", key.name(), key.list_form));
            return;
        }
        if (single == nullptr && list == nullptr) {
            if (!key.is_required || is_set(key.unless_set)) return;
            std::string message = "required key is missing";
            if (!key.list_form.empty()) {
                message +=
                    fmt::format(" (or list several under {})", dotted(section.place.path, key.list_form));
            }
            if (!key.unless_set.empty()) message += fmt::format(", or set {}", key.unless_set);
            problems_.add(Place{section.place.line, dotted(section.place.path, key.name())}, message);
            return;
        }
        Value value = single != nullptr ? *single : *list;
        if (single != nullptr && !key.list_form.empty()) value.read_as_list_of_one();
        if (list != nullptr && key.is_required && list->node().IsSequence() && list->node().size() == 0) {
            value.error(fmt::format("must list at least one {}", key.name()));
        }
        key.read(value, config);
    }

    std::string origin_;
    Problems problems_;
    std::map<std::string, Section, std::less<>> sections_;
};

}  // namespace

namespace {

// yaml-cpp accepts a double-quoted scalar that is never closed: it runs to the end of the file and
// swallows every key after it, which then reads as "required key is missing". Find such a scalar
// (the first one whose closing quote is absent) and name its line instead.
void refuse_unclosed_quote(const YAML::Node& node, std::string_view yaml, const std::string& origin) {
    if (node.IsMap()) {
        for (const auto& entry : node) {
            refuse_unclosed_quote(entry.first, yaml, origin);
            refuse_unclosed_quote(entry.second, yaml, origin);
        }
    } else if (node.IsSequence()) {
        for (const auto& item : node) refuse_unclosed_quote(item, yaml, origin);
    } else if (node.IsScalar() && node.Tag() == "!") {
        const YAML::Mark mark = node.Mark();
        if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= yaml.size() || yaml[mark.pos] != '"')
            return;
        for (std::size_t i = static_cast<std::size_t>(mark.pos) + 1; i < yaml.size(); ++i) {
            if (yaml[i] == '\\') {
                ++i;
            } else if (yaml[i] == '"') {
                return;
            }
        }
        throw Error(
            ErrorKind::Config,
            fmt::format("{}:{}:{}: this double-quoted string is never closed (everything after it up to "
                        "the end of the file became part of it)",
                        origin, mark.line + 1, mark.column + 1));
    }
}

}  // namespace

Config load_config_string(std::string_view yaml, std::string_view origin_name) {
    const std::string origin(origin_name);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        if (e.mark.line >= 0) {
            throw Error(ErrorKind::Config,
                        fmt::format("{}:{}:{}: {}", origin, e.mark.line + 1, e.mark.column + 1, e.msg));
        }
        throw Error(ErrorKind::Config, fmt::format("{}: {}", origin, e.msg));
    }
    refuse_unclosed_quote(root, yaml, origin);
    return Loader(origin).load(root);
}

Config load_config_file(const std::string& path) {
    std::string err;
    const auto text = read_file_contents(path, err);
    if (!text) throw Error(ErrorKind::Config, fmt::format("cannot read config file \"{}\": {}", path, err));
    return load_config_string(*text, path);
}

}  // namespace outbox::config

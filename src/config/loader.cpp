#include <algorithm>
#include <array>
#include <cstdlib>
#include <limits>
#include <span>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "config/config.h"
#include "config/enum_names.h"
#include "config/env.h"
#include "config/file_contents.h"
#include "config/listen_address.h"
#include "config/postgres_names.h"
#include "config/text.h"
#include "config/topic_names.h"
#include "config/value_syntax.h"
#include "kafka/property_policy.h"

namespace outbox::config {

namespace {

using namespace std::string_view_literals;

// ---- known keys --------------------------------------------------------------------------

constexpr std::array kTopKeys{"postgres"sv, "outbox"sv, "kafka"sv, "limits"sv, "metrics"sv, "log"sv};
constexpr std::array kPostgresKeys{
    "dsn"sv,         "password_file"sv,      "slot"sv,           "publication"sv,
    "create_slot"sv, "create_publication"sv, "status_interval"sv};
constexpr std::array kOutboxKeys{"table"sv,   "tables"sv,     "columns"sv,          "topic"sv,
                                 "headers"sv, "on_invalid"sv, "dead_letter_topic"sv};
constexpr std::array kColumnKeys{"id"sv, "aggregate_type"sv, "aggregate_id"sv, "payload"sv};
constexpr std::array kKafkaKeys{"bootstrap_servers"sv, "properties"sv};
constexpr std::array kLimitsKeys{"max_inflight_events"sv, "max_inflight_bytes"sv};
constexpr std::array kMetricsKeys{"listen"sv};
constexpr std::array kLogKeys{"level"sv, "format"sv};

struct Section {
    std::string_view path;
    std::span<const std::string_view> keys;
};
constexpr std::array<Section, 8> kSections{{
    {"", kTopKeys},
    {"postgres", kPostgresKeys},
    {"outbox", kOutboxKeys},
    {"outbox.columns", kColumnKeys},
    {"kafka", kKafkaKeys},
    {"limits", kLimitsKeys},
    {"metrics", kMetricsKeys},
    {"log", kLogKeys},
}};

std::string dotted(std::string_view parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    return fmt::format("{}.{}", parent, key);
}

std::string unknown_key_hint(std::string_view path, std::string_view key,
                             std::span<const std::string_view> known) {
    if (key == "<<") return " (YAML merge keys are not supported)";
    std::string_view best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const auto candidate : known) {
        const std::size_t d = edit_distance(lower(key), candidate);
        if (d < best_distance) {
            best_distance = d;
            best = candidate;
        }
    }
    const std::size_t threshold = std::max<std::size_t>(1, std::min<std::size_t>(3, key.size() / 4));
    if (!best.empty() && best_distance <= threshold) return fmt::format(" (did you mean {}?)", best);
    // The right key in the wrong section.
    for (const auto& section : kSections) {
        if (section.path == path) continue;
        if (std::find(section.keys.begin(), section.keys.end(), key) != section.keys.end()) {
            return fmt::format(" (did you mean {}?)", dotted(section.path, key));
        }
    }
    return {};
}

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

// ---- the loader --------------------------------------------------------------------------

struct Entry {
    std::string key;
    std::string path;
    int line = 0;  // of the key
    YAML::Node value;
};

struct MapView {
    std::string path;
    int line = 1;  // of the key that introduced the map (1 for the root)
    std::vector<Entry> entries;

    [[nodiscard]] const Entry* find(std::string_view key) const {
        for (const auto& e : entries) {
            if (e.key == key) return &e;
        }
        return nullptr;
    }
};

class Loader {
public:
    explicit Loader(std::string origin) : origin_(std::move(origin)) {}

    Config load(const YAML::Node& root) {
        Config config;
        config.origin = origin_;
        if (root.IsNull()) {
            error(1, "",
                  "the configuration is empty (postgres.dsn, outbox.table and kafka.bootstrap_servers "
                  "are required)");
            finish();
        }
        const MapView top = map(root, "", 1, kTopKeys);
        if (!root.IsMap()) finish();  // nothing else worth saying
        load_postgres(section(top, "postgres", kPostgresKeys), config.postgres);
        load_outbox(section(top, "outbox", kOutboxKeys), config.outbox);
        load_kafka(section(top, "kafka", kKafkaKeys), config.kafka);
        load_limits(section(top, "limits", kLimitsKeys), config.limits);
        load_metrics(section(top, "metrics", kMetricsKeys), config.metrics);
        load_log(section(top, "log", kLogKeys), config.log);
        finish();
        return config;
    }

private:
    struct Problem {
        int line;
        std::string text;
    };

    void error(int line, std::string_view path, std::string_view message) {
        std::string text = line > 0 ? fmt::format("{}:{}: ", origin_, line) : fmt::format("{}: ", origin_);
        if (!path.empty()) text += fmt::format("{}: ", path);
        text += message;
        problems_.push_back({line, std::move(text)});
    }

    void finish() {
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

    // A map (null counts as an empty map) whose keys are checked against `known`; an empty
    // `known` accepts any key.
    MapView map(const YAML::Node& node, std::string path, int line, std::span<const std::string_view> known,
                bool any_key = false) {
        MapView view{std::move(path), line, {}};
        if (node.IsNull()) return view;
        if (!node.IsMap()) {
            if (view.path.empty()) {
                error(line_of(node, line), "",
                      fmt::format("expected a map at the top level, got {}", node_kind(node)));
            } else {
                error(line, view.path, fmt::format("expected a map, got {}", node_kind(node)));
            }
            return view;
        }
        for (auto it = node.begin(); it != node.end(); ++it) {
            const YAML::Node key_node = it->first;
            const int key_line = line_of(key_node, line);
            if (!key_node.IsScalar()) {
                error(key_line, view.path,
                      fmt::format("keys must be plain names, got {}", node_kind(key_node)));
                continue;
            }
            const std::string& key = key_node.Scalar();
            std::string key_path = dotted(view.path, key);
            if (const Entry* previous = view.find(key)) {
                error(key_line, key_path,
                      fmt::format("duplicate key (first set at line {})", previous->line));
                continue;
            }
            if (!any_key && std::find(known.begin(), known.end(), key) == known.end()) {
                error(key_line, key_path,
                      fmt::format("unknown key{}", unknown_key_hint(view.path, key, known)));
                continue;
            }
            view.entries.push_back({key, std::move(key_path), key_line, it->second});
        }
        return view;
    }

    MapView section(const MapView& parent, std::string_view key, std::span<const std::string_view> known) {
        if (const Entry* e = parent.find(key)) return map(e->value, e->path, e->line, known);
        return MapView{dotted(parent.path, key), parent.line, {}};
    }

    // The expanded text of a scalar; nullopt (error recorded) for other node types.
    std::optional<std::string> scalar(const YAML::Node& node, int line, std::string_view path,
                                      std::string_view expected = "a string") {
        if (!node.IsScalar()) {
            error(line, path, fmt::format("expected {}, got {}", expected, node_kind(node)));
            return std::nullopt;
        }
        Expanded expanded = expand_env(node.Scalar());
        if (!expanded.error.empty()) {
            error(line, path, expanded.error);
            return std::nullopt;
        }
        return std::move(expanded.value);
    }

    std::optional<std::string> scalar(const Entry& e, std::string_view expected = "a string") {
        return scalar(e.value, e.line, e.path, expected);
    }

    void missing(const MapView& m, std::string_view key) {
        error(m.line, dotted(m.path, key), "required key is missing");
    }

    // Optional or required non-empty string.
    void get_string(const MapView& m, std::string_view key, std::string& target, bool required) {
        const Entry* e = m.find(key);
        if (e == nullptr) {
            if (required) missing(m, key);
            return;
        }
        auto value = scalar(*e);
        if (!value) return;
        if (value->empty()) {
            error(e->line, e->path, "must not be empty");
            return;
        }
        target = std::move(*value);
    }

    void get_bool(const MapView& m, std::string_view key, bool& target) {
        const Entry* e = m.find(key);
        if (e == nullptr) return;
        auto value = scalar(*e, "true or false");
        if (!value) return;
        const std::string v = lower(*value);
        if (v == "true") {
            target = true;
        } else if (v == "false") {
            target = false;
        } else {
            error(e->line, e->path, fmt::format("expected true or false, got {}", quote(*value)));
        }
    }

    void get_positive(const MapView& m, std::string_view key, std::uint64_t& target) {
        const Entry* e = m.find(key);
        if (e == nullptr) return;
        auto value = scalar(*e, "a positive integer");
        if (!value) return;
        const std::string_view v = trim(*value);
        const auto n = parse_uint(v);
        if (!n && !v.empty() && std::all_of(v.begin(), v.end(), is_digit)) {
            error(e->line, e->path, fmt::format("{} is too large", quote(*value)));
        } else if (!n || *n == 0) {
            error(e->line, e->path, fmt::format("expected a positive integer, got {}", quote(*value)));
        } else {
            target = *n;
        }
    }

    void get_size(const MapView& m, std::string_view key, std::uint64_t& target) {
        const Entry* e = m.find(key);
        if (e == nullptr) return;
        auto value = scalar(*e, "a size");
        if (!value) return;
        const Parsed<std::uint64_t> r = parse_size_explained(*value);
        if (!r.value) {
            error(e->line, e->path, r.error);
        } else if (*r.value == 0) {
            error(e->line, e->path, fmt::format("must be greater than 0, got {}", quote(*value)));
        } else {
            target = *r.value;
        }
    }

    void get_duration(const MapView& m, std::string_view key, std::chrono::milliseconds& target) {
        const Entry* e = m.find(key);
        if (e == nullptr) return;
        auto value = scalar(*e, "a duration");
        if (!value) return;
        const Parsed<std::chrono::milliseconds> r = parse_duration_explained(*value);
        if (!r.value) {
            error(e->line, e->path, r.error);
        } else if (r.value->count() == 0) {
            error(e->line, e->path, fmt::format("must be greater than 0, got {}", quote(*value)));
        } else {
            target = *r.value;
        }
    }

    template <class Enum>
    void get_choice(const MapView& m, std::string_view key, Enum& target) {
        const Entry* e = m.find(key);
        if (e == nullptr) return;
        auto value = scalar(*e, "one of " + enum_name_list<Enum>());
        if (!value) return;
        if (const std::optional<Enum> v = enum_value<Enum>(*value)) {
            target = *v;
            return;
        }
        error(e->line, e->path,
              fmt::format("expected one of {}, got {}", enum_name_list<Enum>(), quote(*value)));
    }

    struct Item {
        std::string value;
        int line;
        std::string path;  // key[index]
    };

    // A sequence of non-empty strings with their lines.
    std::vector<Item> string_list(const Entry& e) {
        std::vector<Item> out;
        if (!e.value.IsSequence()) {
            error(e.line, e.path, fmt::format("expected a sequence, got {}", node_kind(e.value)));
            return out;
        }
        std::size_t index = 0;
        for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
            const YAML::Node item = *it;
            const int line = line_of(item, e.line);
            const std::string path = fmt::format("{}[{}]", e.path, index);
            auto value = scalar(item, line, path);
            if (!value) continue;
            if (value->empty()) {
                error(line, path, "must not be empty");
                continue;
            }
            out.push_back({std::move(*value), line, path});
        }
        return out;
    }

    void load_postgres(const MapView& m, PostgresConfig& pg) {
        get_string(m, "dsn", pg.dsn, true);
        if (const Entry* e = m.find("password_file")) {
            if (auto value = scalar(*e); value && !value->empty()) {
                std::string path = std::move(*value);
                const char* creds = std::getenv("CREDENTIALS_DIRECTORY");  // NOLINT(concurrency-mt-unsafe)
                if (path.front() != '/' && creds != nullptr && *creds != '\0') {
                    std::string dir = creds;
                    if (dir.back() != '/') dir += '/';
                    path = dir + path;
                }
                pg.password_file = std::move(path);
            }
        }
        if (const Entry* e = m.find("slot")) {
            if (auto value = scalar(*e)) {
                const bool ok = !value->empty() && value->size() <= kMaxIdentifierBytes &&
                                std::all_of(value->begin(), value->end(), [](char c) {
                                    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_';
                                });
                if (ok) {
                    pg.slot = std::move(*value);
                } else {
                    error(e->line, e->path,
                          fmt::format("expected a replication slot name (1 to 63 lower-case letters, digits "
                                      "and underscores), got {}",
                                      quote(*value)));
                }
            }
        }
        if (const Entry* e = m.find("publication")) {
            if (auto value = scalar(*e)) {
                const bool ok =
                    !value->empty() && value->size() <= kMaxIdentifierBytes && !is_digit(value->front()) &&
                    std::all_of(value->begin(), value->end(),
                                [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_'; });
                if (ok) {
                    pg.publication = std::move(*value);
                } else {
                    error(e->line, e->path,
                          fmt::format("expected a publication name (1 to 63 lower-case letters, digits and "
                                      "underscores, not starting with a digit), got {}",
                                      quote(*value)));
                }
            }
        }
        get_bool(m, "create_slot", pg.create_slot);
        get_bool(m, "create_publication", pg.create_publication);
        get_duration(m, "status_interval", pg.status_interval);
    }

    void add_table(OutboxConfig& outbox, const std::string& text, int line, const std::string& path,
                   std::vector<int>& lines) {
        TableName table;
        if (auto err = parse_table_name(text, table); !err.empty()) {
            error(line, path, err);
            return;
        }
        const auto it = std::find(outbox.tables.begin(), outbox.tables.end(), table);
        if (it != outbox.tables.end()) {
            error(line, path,
                  fmt::format("duplicate table {} (also at line {})", table.qualified(),
                              lines[static_cast<std::size_t>(it - outbox.tables.begin())]));
            return;
        }
        outbox.tables.push_back(std::move(table));
        lines.push_back(line);
    }

    void load_outbox(const MapView& m, OutboxConfig& outbox) {
        outbox.tables.clear();
        const Entry* table = m.find("table");
        const Entry* tables = m.find("tables");
        std::vector<int> table_lines;
        if (table != nullptr && tables != nullptr) {
            error(tables->line, m.path, "set either table or tables, not both");
        } else if (table == nullptr && tables == nullptr) {
            error(m.line, dotted(m.path, "table"),
                  "required key is missing (or list several under outbox.tables)");
        } else if (table != nullptr) {
            if (auto value = scalar(*table)) add_table(outbox, *value, table->line, table->path, table_lines);
        } else {
            const auto items = string_list(*tables);
            if (tables->value.IsSequence() && tables->value.size() == 0) {
                error(tables->line, tables->path, "must list at least one table");
            }
            for (const auto& item : items) add_table(outbox, item.value, item.line, item.path, table_lines);
        }

        const MapView columns = section(m, "columns", kColumnKeys);
        get_string(columns, "id", outbox.columns.id, false);
        get_string(columns, "aggregate_type", outbox.columns.aggregate_type, false);
        get_string(columns, "aggregate_id", outbox.columns.aggregate_id, false);
        get_string(columns, "payload", outbox.columns.payload, false);

        int topic_line = 0;
        if (const Entry* e = m.find("topic")) {
            topic_line = e->line;
            if (auto value = scalar(*e)) {
                std::vector<TopicSegment> segments;
                if (auto err = parse_topic_template(*value, segments); !err.empty()) {
                    error(e->line, e->path, err);
                } else {
                    outbox.topic = std::move(*value);
                    outbox.topic_segments = std::move(segments);
                }
            }
        }

        if (const Entry* e = m.find("headers")) {
            std::vector<int> lines;
            for (auto& item : string_list(*e)) {
                const auto it = std::find(outbox.headers.begin(), outbox.headers.end(), item.value);
                if (it != outbox.headers.end()) {
                    const std::size_t index = static_cast<std::size_t>(it - outbox.headers.begin());
                    error(item.line, item.path,
                          fmt::format("duplicate header column {} (also at line {})", quote(item.value),
                                      lines[index]));
                    continue;
                }
                outbox.headers.push_back(std::move(item.value));
                lines.push_back(item.line);
            }
        }

        get_choice(m, "on_invalid", outbox.on_invalid);

        if (const Entry* e = m.find("dead_letter_topic")) {
            if (auto value = scalar(*e)) {
                if (value->empty()) {
                    if (outbox.on_invalid == OnInvalid::DeadLetter) {
                        error(e->line, e->path, "must not be empty when outbox.on_invalid is dead_letter");
                    } else {
                        outbox.dead_letter_topic.clear();
                    }
                } else if (auto err = check_topic_name(*value); !err.empty()) {
                    error(e->line, e->path, err);
                } else {
                    outbox.dead_letter_topic = std::move(*value);
                }
            }
        }
        if (outbox.on_invalid == OnInvalid::DeadLetter && outbox.topic_is_fixed() &&
            outbox.topic == outbox.dead_letter_topic) {
            const Entry* e = m.find("dead_letter_topic");
            error(
                e != nullptr ? e->line : (topic_line > 0 ? topic_line : m.line),
                e != nullptr ? e->path : dotted(m.path, "dead_letter_topic"),
                fmt::format("the dead-letter topic must differ from outbox.topic ({})", quote(outbox.topic)));
        }
    }

    void load_kafka(const MapView& m, KafkaConfig& kafka) {
        get_string(m, "bootstrap_servers", kafka.bootstrap_servers, true);
        if (const Entry* e = m.find("properties")) {
            const MapView props = map(e->value, e->path, e->line, {}, true);
            for (const Entry& p : props.entries) {
                if (p.key.empty()) {
                    error(p.line, p.path, "property names must not be empty");
                    continue;
                }
                auto value = scalar(p, "a string, number or boolean");
                if (!value) continue;
                if (auto refusal = kafka::refusal(p.key, *value, quote(*value)))
                    error(p.line, p.path, *refusal);
                kafka.properties.emplace_back(p.key, std::move(*value));
            }
        }
    }

    void load_limits(const MapView& m, Limits& limits) {
        get_positive(m, "max_inflight_events", limits.max_inflight_events);
        get_size(m, "max_inflight_bytes", limits.max_inflight_bytes);
    }

    void load_metrics(const MapView& m, MetricsConfig& metrics) {
        if (const Entry* e = m.find("listen")) {
            if (auto value = scalar(*e)) {
                MetricsConfig parsed;
                if (auto err = parse_listen(*value, parsed); !err.empty()) {
                    error(e->line, e->path, err);
                } else {
                    metrics = std::move(parsed);
                }
            }
        }
    }

    void load_log(const MapView& m, LogConfig& log) {
        get_choice(m, "level", log.level);
        get_choice(m, "format", log.format);
    }

    std::string origin_;
    std::vector<Problem> problems_;
};

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
    return Loader(origin).load(root);
}

Config load_config_file(const std::string& path) {
    std::string err;
    const auto text = read_file_contents(path, err);
    if (!text) throw Error(ErrorKind::Config, fmt::format("cannot read config file \"{}\": {}", path, err));
    return load_config_string(*text, path);
}

}  // namespace outbox::config

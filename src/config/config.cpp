#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <span>
#include <system_error>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "kafka/property_policy.h"

namespace outbox::config {

namespace {

using namespace std::string_view_literals;

// ---- small text helpers ------------------------------------------------------------------

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_lower(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return to_lower(x) == to_lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// A value quoted for an error message: "value", with control characters escaped and long
// values shortened.
std::string quote(std::string_view s) {
    constexpr std::size_t kMax = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
        const char c = s[i];
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
            out += c;
        }
    }
    if (s.size() > kMax) out += "...";
    out += '"';
    return out;
}

std::string join(std::span<const std::string_view> items, std::string_view sep) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += sep;
        out += items[i];
    }
    return out;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1, 0));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[n][m];
}

// Parses a non-negative decimal integer made of digits only; nullopt on overflow or junk.
std::optional<std::uint64_t> parse_uint(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::uint64_t value = 0;
    for (const char c : s) {
        if (!is_digit(c)) return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

// ---- durations and sizes (with error messages for the loader) -----------------------------

struct DurationResult {
    std::optional<std::chrono::milliseconds> value;
    std::string error;
};

constexpr std::string_view kDurationHint = "e.g. 500ms, 10s, 2m, 1h";

DurationResult parse_duration_detailed(std::string_view text) {
    const std::string_view s = trim(text);
    std::size_t i = 0;
    while (i < s.size() && is_digit(s[i])) ++i;
    const std::string_view number = s.substr(0, i);
    std::string_view unit = trim(s.substr(i));
    if (number.empty()) {
        return {std::nullopt, fmt::format("expected a duration ({}), got {}", kDurationHint, quote(text))};
    }
    if (unit.empty()) {
        return {std::nullopt,
                fmt::format("expected a duration, got the bare number {}: units are required ({})",
                            quote(text), kDurationHint)};
    }
    std::uint64_t factor = 0;
    if (unit == "ms") {
        factor = 1;
    } else if (unit == "s") {
        factor = 1000;
    } else if (unit == "m") {
        factor = 60ull * 1000;
    } else if (unit == "h") {
        factor = 60ull * 60 * 1000;
    } else {
        return {std::nullopt, fmt::format("expected a duration with unit ms, s, m or h ({}), got {}",
                                          kDurationHint, quote(text))};
    }
    const auto n = parse_uint(number);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!n || *n > kMax / factor) {
        return {std::nullopt, fmt::format("duration {} is too large", quote(text))};
    }
    return {std::chrono::milliseconds(static_cast<std::int64_t>(*n * factor)), {}};
}

struct SizeResult {
    std::optional<std::uint64_t> value;
    std::string error;
};

constexpr std::string_view kSizeHint =
    "plain bytes or a number with B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), "
    "e.g. 64MiB";

SizeResult parse_size_detailed(std::string_view text) {
    const std::string_view s = trim(text);
    std::size_t i = 0;
    while (i < s.size() && is_digit(s[i])) ++i;
    const std::string_view number = s.substr(0, i);
    const std::string_view unit = trim(s.substr(i));
    struct Unit {
        std::string_view name;
        std::uint64_t factor;
    };
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
    const auto it = std::find_if(kUnits.begin(), kUnits.end(), [&](const Unit& u) { return u.name == unit; });
    if (number.empty() || it == kUnits.end()) {
        return {std::nullopt, fmt::format("expected a size ({}), got {}", kSizeHint, quote(text))};
    }
    const auto n = parse_uint(number);
    if (!n || *n > std::numeric_limits<std::uint64_t>::max() / it->factor) {
        return {std::nullopt, fmt::format("size {} is too large", quote(text))};
    }
    return {*n * it->factor, {}};
}

// ---- ${ENV} expansion --------------------------------------------------------------------

struct Expanded {
    std::string value;
    std::string error;  // empty on success
};

bool is_env_name(std::string_view name) {
    if (name.empty() || is_digit(name.front())) return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
}

// ${NAME} (must be set; may be empty), ${NAME:-default} (default when unset or empty; the
// default is taken literally), $$ for a literal $. Any other $ is kept as it is.
Expanded expand_env(std::string_view in) {
    Expanded out;
    std::size_t i = 0;
    while (i < in.size()) {
        const char c = in[i];
        if (c != '$' || i + 1 >= in.size()) {
            out.value += c;
            ++i;
            continue;
        }
        if (in[i + 1] == '$') {
            out.value += '$';
            i += 2;
            continue;
        }
        if (in[i + 1] != '{') {
            out.value += c;
            ++i;
            continue;
        }
        const std::size_t close = in.find('}', i + 2);
        if (close == std::string_view::npos) {
            out.error = fmt::format("unterminated \"${{\" in {} (write $$ for a literal $)", quote(in));
            return out;
        }
        const std::string_view body = in.substr(i + 2, close - i - 2);
        const std::size_t sep = body.find(":-");
        const std::string_view name = body.substr(0, sep);
        if (!is_env_name(name)) {
            out.error = fmt::format(
                "invalid environment variable reference \"${{{}}}\" (expected ${{NAME}} or "
                "${{NAME:-default}}; write $$ for a literal $)",
                body);
            return out;
        }
        // The configuration is loaded at start-up, before any other thread exists.
        const char* value = std::getenv(std::string(name).c_str());  // NOLINT(concurrency-mt-unsafe)
        if (sep != std::string_view::npos) {
            if (value != nullptr && *value != '\0') {
                out.value += value;
            } else {
                out.value += body.substr(sep + 2);
            }
        } else if (value != nullptr) {
            out.value += value;
        } else {
            out.error = fmt::format(
                "environment variable {} is not set (use ${{{}:-default}} to give a default)", name, name);
            return out;
        }
        i = close + 1;
    }
    return out;
}

// ---- identifiers, topics, listen addresses -----------------------------------------------

constexpr std::size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

// One SQL identifier: "quoted" (verbatim, "" for ") or unquoted (folded to lower case).
// Advances `pos`. Returns an error message or empty.
std::string parse_identifier(std::string_view s, std::size_t& pos, std::string& ident) {
    ident.clear();
    if (pos < s.size() && s[pos] == '"') {
        ++pos;
        for (;;) {
            if (pos >= s.size()) return "unterminated double quote";
            if (s[pos] == '"') {
                if (pos + 1 < s.size() && s[pos + 1] == '"') {
                    ident += '"';
                    pos += 2;
                    continue;
                }
                ++pos;
                break;
            }
            ident += s[pos++];
        }
        if (ident.empty()) return "empty quoted identifier";
    } else {
        const std::size_t start = pos;
        while (pos < s.size() && s[pos] != '.') {
            const char c = s[pos];
            const bool high = static_cast<unsigned char>(c) >= 0x80;
            const bool ok = is_alpha(c) || c == '_' || high || (pos > start && (is_digit(c) || c == '$'));
            if (!ok) {
                return fmt::format(
                    "{} is not allowed in an unquoted identifier (double-quote the name, "
                    "e.g. '\"My Table\"')",
                    quote(std::string_view(&s[pos], 1)));
            }
            ident += to_lower(c);
            ++pos;
        }
        if (ident.empty()) return "empty identifier";
    }
    if (ident.size() > kMaxIdentifierBytes) {
        return fmt::format("identifier {} is longer than {} bytes", quote(ident), kMaxIdentifierBytes);
    }
    return {};
}

std::string parse_table_name(std::string_view text, TableName& table) {
    std::vector<std::string> parts;
    std::size_t pos = 0;
    for (;;) {
        std::string ident;
        if (auto err = parse_identifier(text, pos, ident); !err.empty()) {
            return fmt::format("expected schema.table or table, got {}: {}", quote(text), err);
        }
        parts.push_back(std::move(ident));
        if (pos >= text.size()) break;
        if (text[pos] != '.') {
            return fmt::format("expected schema.table or table, got {}: unexpected {} after a quoted name",
                               quote(text), quote(text.substr(pos, 1)));
        }
        ++pos;
        if (pos >= text.size()) {
            return fmt::format("expected schema.table or table, got {}: empty identifier", quote(text));
        }
    }
    if (parts.size() > 2) {
        return fmt::format("expected schema.table or table, got {} (too many dots)", quote(text));
    }
    if (parts.size() == 2) {
        table.schema = std::move(parts[0]);
        table.name = std::move(parts[1]);
    } else {
        table.schema = "public";
        table.name = std::move(parts[0]);
    }
    return {};
}

bool is_topic_char(char c) {
    return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
}

constexpr std::size_t kMaxTopicLength = 249;

std::string check_topic_name(std::string_view name) {
    if (name.empty()) return "must not be empty";
    if (name.size() > kMaxTopicLength) {
        return fmt::format("{} is not a legal Kafka topic name (at most {} characters, got {})", quote(name),
                           kMaxTopicLength, name.size());
    }
    if (name == "." || name == "..") {
        return fmt::format("{} is not a legal Kafka topic name", quote(name));
    }
    for (const char c : name) {
        if (!is_topic_char(c)) {
            return fmt::format(
                "{} is not a legal Kafka topic name: {} is not allowed (use a-z, A-Z, 0-9, '.', "
                "'_' and '-')",
                quote(name), quote(std::string_view(&c, 1)));
        }
    }
    return {};
}

struct Placeholder {
    std::string_view name;
    TopicSegment::Kind kind;
};
constexpr std::array<Placeholder, 4> kPlaceholders{{
    {"aggregate_type", TopicSegment::Kind::AggregateType},
    {"aggregate_id", TopicSegment::Kind::AggregateId},
    {"id", TopicSegment::Kind::Id},
    {"table", TopicSegment::Kind::Table},
}};

std::string parse_topic_template(std::string_view text, std::vector<TopicSegment>& segments) {
    segments.clear();
    if (text.empty()) return "must not be empty";
    if (text.find_first_of("{}") == std::string_view::npos) {  // a fixed topic name
        segments.push_back({TopicSegment::Kind::Literal, std::string(text)});
        return check_topic_name(text);
    }
    std::string literal;
    std::size_t literal_chars = 0;
    bool has_placeholder = false;
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '{') {
            const std::size_t close = text.find_first_of("{}", i + 1);
            if (close == std::string_view::npos || text[close] != '}') {
                return fmt::format("unterminated placeholder in topic template {}", quote(text));
            }
            const std::string_view name = text.substr(i + 1, close - i - 1);
            const auto it = std::find_if(kPlaceholders.begin(), kPlaceholders.end(),
                                         [&](const Placeholder& p) { return p.name == name; });
            if (it == kPlaceholders.end()) {
                return fmt::format(
                    "unknown placeholder {{{}}} in topic template {} (known: {{aggregate_type}}, "
                    "{{aggregate_id}}, {{id}}, {{table}})",
                    name, quote(text));
            }
            if (!literal.empty()) segments.push_back({TopicSegment::Kind::Literal, std::move(literal)});
            literal.clear();
            segments.push_back({it->kind, {}});
            has_placeholder = true;
            i = close + 1;
            continue;
        }
        if (c == '}') return fmt::format("unmatched '}}' in topic template {}", quote(text));
        if (!is_topic_char(c)) {
            return fmt::format(
                "{} is not allowed in a Kafka topic name (topic template {}; use a-z, A-Z, 0-9, "
                "'.', '_', '-' and placeholders)",
                quote(std::string_view(&c, 1)), quote(text));
        }
        literal += c;
        ++literal_chars;
        ++i;
    }
    if (!literal.empty()) segments.push_back({TopicSegment::Kind::Literal, std::move(literal)});
    if (!has_placeholder) return check_topic_name(text);
    if (literal_chars > kMaxTopicLength) {
        return fmt::format("topic template {} is longer than a Kafka topic name may be ({} characters)",
                           quote(text), kMaxTopicLength);
    }
    return {};
}

std::string parse_listen(std::string_view text, MetricsConfig& metrics) {
    if (text.empty()) {
        metrics.enabled = false;
        metrics.host.clear();
        metrics.port = 0;
        return {};
    }
    const auto bad = [&](std::string_view why) {
        return fmt::format("expected host:port (or \"\" to disable), got {}: {}", quote(text), why);
    };
    std::string host;
    std::string_view port_text;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        host = std::string(text.substr(1, close - 1));
        if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :port");
        port_text = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("missing :port");
        host = std::string(text.substr(0, colon));
        if (host.find(':') != std::string::npos)
            return bad("write IPv6 addresses in brackets, e.g. [::1]:9187");
        port_text = text.substr(colon + 1);
    }
    if (host.empty()) return bad("the host is missing (use 0.0.0.0 to listen on all interfaces)");
    if (std::any_of(host.begin(), host.end(), is_space)) return bad("the host contains whitespace");
    const auto port = parse_uint(port_text);
    if (!port || *port > 65535) return bad("the port must be a number from 0 to 65535");
    metrics.enabled = true;
    metrics.host = std::move(host);
    metrics.port = static_cast<std::uint16_t>(*port);
    return {};
}

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
        const SizeResult r = parse_size_detailed(*value);
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
        const DurationResult r = parse_duration_detailed(*value);
        if (!r.value) {
            error(e->line, e->path, r.error);
        } else if (r.value->count() == 0) {
            error(e->line, e->path, fmt::format("must be greater than 0, got {}", quote(*value)));
        } else {
            target = *r.value;
        }
    }

    template <class Enum, std::size_t N>
    void get_choice(const MapView& m, std::string_view key,
                    const std::array<std::pair<std::string_view, Enum>, N>& choices, Enum& target) {
        const Entry* e = m.find(key);
        if (e == nullptr) return;
        std::array<std::string_view, N> names{};
        for (std::size_t i = 0; i < N; ++i) names[i] = choices[i].first;
        auto value = scalar(*e, fmt::format("one of {}", join(names, ", ")));
        if (!value) return;
        for (const auto& [name, v] : choices) {
            if (name == *value) {
                target = v;
                return;
            }
        }
        error(e->line, e->path, fmt::format("expected one of {}, got {}", join(names, ", "), quote(*value)));
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

        static constexpr std::array<std::pair<std::string_view, OnInvalid>, 2> kOnInvalid{{
            {"dead_letter", OnInvalid::DeadLetter},
            {"stop", OnInvalid::Stop},
        }};
        get_choice(m, "on_invalid", kOnInvalid, outbox.on_invalid);

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
        static constexpr std::array<std::pair<std::string_view, LogLevel>, 7> kLevels{{
            {"trace", LogLevel::Trace},
            {"debug", LogLevel::Debug},
            {"info", LogLevel::Info},
            {"warn", LogLevel::Warn},
            {"error", LogLevel::Error},
            {"critical", LogLevel::Critical},
            {"off", LogLevel::Off},
        }};
        static constexpr std::array<std::pair<std::string_view, LogFormat>, 2> kFormats{{
            {"text", LogFormat::Text},
            {"json", LogFormat::Json},
        }};
        get_choice(m, "level", kLevels, log.level);
        get_choice(m, "format", kFormats, log.format);
    }

    std::string origin_;
    std::vector<Problem> problems_;
};

// ---- files -------------------------------------------------------------------------------

// Reads a whole file; on failure returns nullopt and sets `err` to the errno message.
std::optional<std::string> read_whole_file(const std::string& path, std::string& err) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = std::generic_category().message(errno);
        return std::nullopt;
    }
    std::string data;
    std::array<char, 8192> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            err = std::generic_category().message(errno);
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        data.append(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return data;
}

// ---- DSN masking -------------------------------------------------------------------------

constexpr std::string_view kMask = "***";

bool looks_like_uri(std::string_view s, std::size_t& prefix_len) {
    for (const std::string_view scheme : {"postgresql://"sv, "postgres://"sv}) {
        if (istarts_with(s, scheme)) {
            prefix_len = scheme.size();
            return true;
        }
    }
    return false;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string mask_uri(std::string_view uri, std::size_t prefix_len) {
    std::string out(uri.substr(0, prefix_len));
    std::string_view rest = uri.substr(prefix_len);
    // libpq takes user[:password] up to an '@' that comes before the first '/'. Use the last
    // such '@' so that an unencoded '@' in the password is masked too.
    const std::size_t slash = rest.find('/');
    const std::size_t at = rest.substr(0, slash).rfind('@');
    if (at != std::string_view::npos) {
        const std::size_t colon = rest.substr(0, at).find(':');
        if (colon != std::string_view::npos) {
            out += rest.substr(0, colon + 1);
            out += kMask;
        } else {
            out += rest.substr(0, at);
        }
        out += '@';
        rest = rest.substr(at + 1);
    }
    const std::size_t question = rest.find('?');
    out += rest.substr(0, question);
    if (question == std::string_view::npos) return out;
    out += '?';
    std::string_view query = rest.substr(question + 1);
    bool first = true;
    while (true) {
        const std::size_t amp = query.find('&');
        const std::string_view param = query.substr(0, amp);
        if (!first) out += '&';
        first = false;
        const std::size_t eq = param.find('=');
        if (eq != std::string_view::npos && iequals(percent_decode(param.substr(0, eq)), "password")) {
            out += param.substr(0, eq + 1);
            out += kMask;
        } else {
            out += param;
        }
        if (amp == std::string_view::npos) break;
        query = query.substr(amp + 1);
    }
    return out;
}

std::string quote_conninfo_value(std::string_view value) {
    std::string out = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

std::string mask_conninfo(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        if (is_space(s[i])) {
            out += s[i++];
            continue;
        }
        const std::size_t key_start = i;
        while (i < n && !is_space(s[i]) && s[i] != '=') ++i;
        const std::string_view key = s.substr(key_start, i - key_start);
        out += key;
        while (i < n && is_space(s[i])) out += s[i++];
        if (i >= n || s[i] != '=') {
            out += s.substr(i);  // malformed: libpq would reject it; nothing recognisable to mask
            break;
        }
        out += s[i++];
        while (i < n && is_space(s[i])) out += s[i++];
        const std::size_t value_start = i;
        std::string value;
        if (i < n && s[i] == '\'') {
            ++i;
            while (i < n) {
                if (s[i] == '\\' && i + 1 < n) {
                    value += s[i + 1];
                    i += 2;
                } else if (s[i] == '\'') {
                    ++i;
                    break;
                } else {
                    value += s[i++];
                }
            }
        } else {
            while (i < n && !is_space(s[i])) {
                if (s[i] == '\\' && i + 1 < n) {
                    value += s[i + 1];
                    i += 2;
                } else {
                    value += s[i++];
                }
            }
        }
        const std::string_view raw = s.substr(value_start, i - value_start);
        if (iequals(key, "password")) {
            out += kMask;
        } else if (key == "dbname") {
            // libpq expands a dbname that is itself a conninfo string or URI.
            const std::string masked = mask_dsn(value);
            out += masked == value ? std::string(raw) : quote_conninfo_value(masked);
        } else {
            out += raw;
        }
    }
    return out;
}

std::string format_listen(const MetricsConfig& metrics) {
    if (!metrics.enabled) return "\"\" (disabled)";
    if (metrics.host.find(':') != std::string::npos)
        return fmt::format("[{}]:{}", metrics.host, metrics.port);
    return fmt::format("{}:{}", metrics.host, metrics.port);
}

}  // namespace

// ---- public API --------------------------------------------------------------------------

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
    const auto text = read_whole_file(path, err);
    if (!text) throw Error(ErrorKind::Config, fmt::format("cannot read config file \"{}\": {}", path, err));
    return load_config_string(*text, path);
}

std::optional<std::string> read_password(const PostgresConfig& postgres) {
    if (!postgres.password_file || postgres.password_file->empty()) return std::nullopt;
    const std::string& path = *postgres.password_file;
    std::string err;
    auto text = read_whole_file(path, err);
    if (!text) {
        throw Error(ErrorKind::Config,
                    fmt::format("postgres.password_file: cannot read password file \"{}\": {}", path, err));
    }
    if (!text->empty() && text->back() == '\n') {
        text->pop_back();
        if (!text->empty() && text->back() == '\r') text->pop_back();
    }
    if (text->empty()) {
        throw Error(ErrorKind::Config,
                    fmt::format("postgres.password_file: password file \"{}\" is empty", path));
    }
    return text;
}

std::string mask_dsn(std::string_view dsn) {
    std::size_t prefix_len = 0;
    if (looks_like_uri(trim(dsn), prefix_len)) {
        const std::size_t lead = dsn.find_first_not_of(" \t\r\n\f\v");
        return std::string(dsn.substr(0, lead)) + mask_uri(dsn.substr(lead), prefix_len);
    }
    return mask_conninfo(dsn);
}

bool is_secret_property(std::string_view key) {
    return kafka::is_secret_property(key);
}

std::string describe(const Config& config) {
    std::string out;
    const auto line = [&out](std::string_view text) {
        out += text;
        out += '\n';
    };
    line(fmt::format("configuration from {}", config.origin.empty() ? "(defaults)" : config.origin));

    const PostgresConfig& pg = config.postgres;
    line("postgres:");
    line(fmt::format("  dsn: {}", mask_dsn(pg.dsn)));
    line(fmt::format("  password_file: {}", pg.password_file ? *pg.password_file : "(not set)"));
    line(fmt::format("  slot: {}{}", pg.slot, pg.create_slot ? " (created if missing)" : " (must exist)"));
    line(fmt::format("  publication: {}{}", pg.publication,
                     pg.create_publication ? " (created if missing)" : " (must exist)"));
    line(fmt::format("  status_interval: {}", format_duration(pg.status_interval)));

    const OutboxConfig& ob = config.outbox;
    line("outbox:");
    std::string tables;
    for (const auto& t : ob.tables) {
        if (!tables.empty()) tables += ", ";
        tables += t.qualified();
    }
    line(fmt::format("  tables: {}", tables.empty() ? "(none)" : tables));
    line(fmt::format("  columns: id={}, aggregate_type={}, aggregate_id={}, payload={}", ob.columns.id,
                     ob.columns.aggregate_type, ob.columns.aggregate_id, ob.columns.payload));
    line(fmt::format("  topic: {}{}", ob.topic, ob.topic_is_fixed() ? " (fixed)" : ""));
    std::string headers;
    for (const auto& h : ob.headers) {
        if (!headers.empty()) headers += ", ";
        headers += h;
    }
    line(fmt::format("  headers: {}", headers.empty() ? "(none)" : headers));
    if (ob.on_invalid == OnInvalid::DeadLetter) {
        line(fmt::format("  on_invalid: dead_letter -> {}", ob.dead_letter_topic));
    } else {
        line("  on_invalid: stop");
    }

    line("kafka:");
    line(fmt::format("  bootstrap_servers: {}", config.kafka.bootstrap_servers));
    if (config.kafka.properties.empty()) {
        line("  properties: (none)");
    } else {
        line("  properties:");
        for (const auto& [key, value] : config.kafka.properties) {
            line(fmt::format("    {}: {}", key, is_secret_property(key) ? std::string(kMask) : value));
        }
    }

    line("limits:");
    line(fmt::format("  max_inflight_events: {}", config.limits.max_inflight_events));
    line(fmt::format("  max_inflight_bytes: {}", format_size(config.limits.max_inflight_bytes)));
    line("metrics:");
    line(fmt::format("  listen: {}", format_listen(config.metrics)));
    line("log:");
    line(fmt::format("  level: {}", to_string(config.log.level)));
    line(fmt::format("  format: {}", to_string(config.log.format)));
    return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    return parse_duration_detailed(text).value;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    return parse_size_detailed(text).value;
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
    struct Unit {
        std::string_view name;
        std::uint64_t factor;
    };
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

std::string_view to_string(OnInvalid value) noexcept {
    switch (value) {
        case OnInvalid::DeadLetter: return "dead_letter";
        case OnInvalid::Stop: return "stop";
    }
    return "unknown";
}

std::string_view to_string(LogLevel value) noexcept {
    switch (value) {
        case LogLevel::Trace: return "trace";
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warn: return "warn";
        case LogLevel::Error: return "error";
        case LogLevel::Critical: return "critical";
        case LogLevel::Off: return "off";
    }
    return "unknown";
}

std::string_view to_string(LogFormat value) noexcept {
    switch (value) {
        case LogFormat::Text: return "text";
        case LogFormat::Json: return "json";
    }
    return "unknown";
}

}  // namespace outbox::config

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "config/config.h"
#include "config/enum_names.h"
#include "config/keys.h"
#include "kafka/property_policy.h"

using namespace outbox::config;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in, "cannot read " << path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string configuration_doc() {
    return read_text(OUTBOX_FIXTURE_DIR "/../../../docs/configuration.md");
}

// The names in the first cell of each row of the tables whose header starts with `header`, as
// "<section>.<name>" where <section> is the last "## `section`" heading above the row, or as
// "<name>" under any other "## " heading ("## Top level").
std::set<std::string> documented(const std::string& doc, std::string_view header) {
    std::set<std::string> out;
    std::istringstream lines(doc);
    std::string line;
    std::string section;
    bool in_table = false;
    while (std::getline(lines, line)) {
        if (line.rfind("## `", 0) == 0) {
            section = line.substr(4, line.find('`', 4) - 4);
        } else if (line.rfind("## ", 0) == 0) {
            section.clear();
        }
        if (line.rfind(header, 0) == 0) {
            in_table = true;
        } else if (in_table && line.rfind("| `", 0) == 0) {
            // Every `name` of the first cell: "| `acks`, `request.required.acks` |".
            const std::string cell = line.substr(1, line.find('|', 1) - 1);
            for (std::size_t open = cell.find('`'); open != std::string::npos;
                 open = cell.find('`', open + 1)) {
                const std::size_t close = cell.find('`', open + 1);
                const std::string name = cell.substr(open + 1, close - open - 1);
                out.insert(section.empty() ? name : section + "." + name);
                open = close;
            }
        } else if (line.rfind("|", 0) != 0) {
            in_table = false;
        }
    }
    return out;
}

// Whether the document sets the dotted `path` (const access: yaml-cpp adds no nodes; a missing
// key gives an invalid node, which only IsDefined() may ask).
bool is_set(const YAML::Node& node, std::string_view path) {
    const std::size_t dot = path.find('.');
    const YAML::Node child = node[std::string(path.substr(0, dot))];
    if (dot == std::string_view::npos) return child.IsDefined();
    return child.IsDefined() && child.IsMap() && is_set(child, path.substr(dot + 1));
}

// The fixtures that set every key between them: the WAL's and the poller's keys exclude each other.
const char* const kFullFixtures[] = {"/config/full.yaml", "/config/full_poll.yaml"};

// "outbox.tables" for outbox.table.
std::string dotted_list_form(const Key& key) {
    return std::string(key.section()) + "." + std::string(key.list_form);
}

const Key* find_key(std::string_view path) {
    for (const Key& key : keys()) {
        if (key.path == path) return &key;
    }
    return nullptr;
}

std::string load_error(const std::string& yaml) {
    try {
        load_config_string(yaml, "config.yaml");
    } catch (const outbox::Error& e) {
        return e.what();
    }
    FAIL("expected a configuration error for:\n" << yaml);
    return {};
}

const std::string kMinimal = "postgres: {dsn: x=y}\noutbox: {table: t}\nkafka: {bootstrap_servers: k:1}\n";

template <class Enum>
void check_names_round_trip() {
    std::set<std::string_view> seen;
    for (const auto& [value, name] : EnumNames<Enum>::table) {
        CAPTURE(name);
        CHECK(seen.insert(name).second);
        CHECK(enum_value<Enum>(name) == value);
        CHECK(to_string(value) == name);
        CHECK(Choice<Enum>::expected().find(name) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("config keys: the key table and the docs' key tables list the same keys") {
    std::set<std::string> in_table;
    for (const Key& key : keys()) {
        in_table.insert(std::string(key.path));
        if (!key.list_form.empty()) in_table.insert(dotted_list_form(key));
    }
    const std::set<std::string> in_doc = documented(configuration_doc(), "| Key |");
    for (const auto& path : in_table) {
        CAPTURE(path);
        CHECK_MESSAGE(in_doc.count(path) == 1, "key missing from docs/configuration.md");
    }
    for (const auto& path : in_doc) {
        CAPTURE(path);
        CHECK_MESSAGE(in_table.count(path) == 1, "documented key missing from the key table");
    }
}

TEST_CASE("config keys: the full fixtures (WAL, poll) set every key, so the round-trip tests cover it") {
    std::vector<YAML::Node> fixtures;
    for (const char* name : kFullFixtures)
        fixtures.push_back(YAML::LoadFile(OUTBOX_FIXTURE_DIR + std::string(name)));
    for (const Key& key : keys()) {
        CAPTURE(key.path);
        bool set = false;
        for (const YAML::Node& full : fixtures) {
            set = set || is_set(full, key.path) ||
                  (!key.list_form.empty() && is_set(full, dotted_list_form(key)));
        }
        CHECK(set);
    }
}

TEST_CASE("config keys: describe() shows every key, on its own line or on the line it names") {
    std::string text;
    for (const char* name : kFullFixtures)
        text += describe(load_config_file(OUTBOX_FIXTURE_DIR + std::string(name)));
    const auto top_section = [](std::string_view path) { return path.substr(0, path.find('.')); };
    for (const Key& key : keys()) {
        CAPTURE(key.path);
        const bool own_line = key.show != nullptr;
        if (own_line) {
            CHECK(key.shown_with.empty());
            const std::string label(key.label.empty() ? key.name() : key.label);
            const std::string indent = key.section().empty() ? "" : "  ";
            CHECK(text.find("\n" + indent + label + ":") != std::string::npos);
            continue;
        }
        const Key* line = find_key(key.shown_with);
        REQUIRE_MESSAGE(line != nullptr, "shown_with names no key");
        const bool named_line_is_shown = line->show != nullptr;
        CHECK(named_line_is_shown);
        CHECK(top_section(line->path) == top_section(key.path));
    }
}

TEST_CASE("config keys: an empty file names every required key") {
    CHECK(load_error("") ==
          "config.yaml:1: the configuration is empty (postgres.dsn, outbox.table and kafka.bootstrap_servers "
          "are required)");
    for (const Key& key : keys()) {
        if (key.is_required) CHECK(load_error("").find(key.path) != std::string::npos);
    }
}

TEST_CASE("config enums: every name round-trips through parsing, to_string and the loader") {
    check_names_round_trip<Source>();
    check_names_round_trip<AfterPublish>();
    check_names_round_trip<OnInvalid>();
    check_names_round_trip<LogLevel>();
    check_names_round_trip<LogFormat>();
    for (const auto& [value, name] : EnumNames<LogLevel>::table) {
        CHECK(load_config_string(kMinimal + "log: {level: " + std::string(name) + "}\n", "t").log.level ==
              value);
    }
    for (const auto& [value, name] : EnumNames<LogFormat>::table) {
        CHECK(load_config_string(kMinimal + "log: {format: " + std::string(name) + "}\n", "t").log.format ==
              value);
    }
    for (const auto& [value, name] : EnumNames<OnInvalid>::table) {
        const std::string yaml =
            "postgres: {dsn: x=y}\nkafka: {bootstrap_servers: k:1}\noutbox: {table: t, on_invalid: " +
            std::string(name) + "}\n";
        CHECK(load_config_string(yaml, "t").outbox.on_invalid == value);
    }
    CHECK(to_string(static_cast<LogLevel>(99)) == "unknown");
    CHECK_FALSE(enum_value<LogLevel>("INFO").has_value());  // names are case-sensitive
}

TEST_CASE("kafka property policy: owned properties are documented and refused only when weakened") {
    const std::set<std::string> in_doc = documented(configuration_doc(), "| Property (and alias) |");
    for (const auto& owned : outbox::kafka::owned_properties()) {
        CAPTURE(owned.name);
        CHECK(in_doc.count("kafka." + std::string(owned.name)) == 1);
        if (!owned.alias.empty()) CHECK(in_doc.count("kafka." + std::string(owned.alias)) == 1);
    }
    struct Row {
        const char* name;
        const char* value;
        bool refused;
    };
    const Row rows[] = {
        {"bootstrap.servers", "k:1", true},
        {"metadata.broker.list", "k:1", true},
        {"enable.idempotence", " TRUE ", false},
        {"enable.idempotence", "false", true},
        {"acks", "ALL", false},
        {"acks", "-1", false},
        {"request.required.acks", "1", true},
        {"max.in.flight.requests.per.connection", "5", false},
        {"max.in.flight", "6", true},
        {"max.in.flight", "many", false},  // not a number: librdkafka rejects it
        {"retries", "0", true},
        {"message.send.max.retries", "3", false},
        {"delivery.report.only.error", "false", false},
        {"delivery.report.only.error", "true", true},
        {"transactional.id", "x", true},
        {"enable.auto.commit", "false", true},
        {"linger.ms", "5", false},
        {"ACKS", "1", false},  // matched exactly, like librdkafka looks names up
    };
    for (const auto& row : rows) {
        CAPTURE(row.name);
        CAPTURE(row.value);
        CHECK(outbox::kafka::refusal(row.name, row.value, "<shown>").has_value() == row.refused);
    }
    CHECK(
        *outbox::kafka::refusal("acks", "1", "\"1\"") ==
        "the relay requires acks=all (-1), got \"1\": an event's WAL position is confirmed to PostgreSQL as "
        "soon as Kafka acknowledges it, so with fewer acks a broker failure can lose events that PostgreSQL "
        "has already released; remove the key, the relay sets it");
    CHECK(outbox::kafka::is_secret_property("SASL.JAAS.CONFIG"));
    CHECK(outbox::kafka::is_secret_property("ssl.key.pem"));
    CHECK(outbox::kafka::is_secret_property("sasl.oauthbearer.config"));
    CHECK(outbox::kafka::is_secret_property("some.token"));
    CHECK_FALSE(outbox::kafka::is_secret_property("ssl.key.location"));
}

TEST_CASE("config: a header column named like a header the relay sets is refused, naming it and the line") {
    const std::string error = load_error(
        "postgres: {dsn: x=y}\noutbox:\n  table: t\n  headers: [type, outbox-lsn]\nkafka: "
        "{bootstrap_servers: k:1}\n");
    CHECK(error.find("config.yaml:4: outbox.headers[1]: \"outbox-lsn\" is a header the relay sets itself") !=
          std::string::npos);
    CHECK(load_error(
              "postgres: {dsn: x=y}\noutbox: {table: t, headers: [id]}\nkafka: {bootstrap_servers: k:1}\n")
              .find("\"id\" is a header the relay sets itself") != std::string::npos);
}

TEST_CASE("config: status_interval is at most 10 minutes") {
    const std::string error = load_error(
        "postgres: {dsn: x=y, status_interval: 2h}\noutbox: {table: t}\nkafka: {bootstrap_servers: k:1}\n");
    CHECK(error.find("config.yaml:1: postgres.status_interval: must be at most 10m, got \"2h\"") !=
          std::string::npos);
    CHECK(load_config_string("postgres: {dsn: x=y, status_interval: 10m}\noutbox: {table: t}\n"
                             "kafka: {bootstrap_servers: k:1}\n",
                             "ok.yaml")
              .postgres.status_interval == std::chrono::minutes(10));
}

TEST_CASE("config: a double-quoted string that is never closed is named at its line, not as missing keys") {
    const std::string error =
        load_error("postgres:\n  dsn: \"host=x\noutbox:\n  table: t\nkafka:\n  bootstrap_servers: k:1\n");
    CHECK(error ==
          "config.yaml:2:8: this double-quoted string is never closed (everything after it up to the end "
          "of the file became part of it)");
    // Closed over several lines, with an escaped quote inside: fine.
    CHECK(load_config_string("postgres:\n  dsn: \"host=x\n    user=\\\"u\\\"\"\noutbox: {table: t}\nkafka: "
                             "{bootstrap_servers: k:1}\n",
                             "ok.yaml")
              .postgres.dsn == "host=x user=\"u\"");
}

#include "config/keys.h"

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "config/config.h"
#include "config/enum_names.h"
#include "config/listen_address.h"
#include "config/postgres_names.h"
#include "config/secrets.h"
#include "config/state_path.h"
#include "config/text.h"
#include "config/topic_names.h"
#include "config/value_syntax.h"
#include "config/yaml_value.h"
#include "kafka/property_policy.h"

namespace outbox::config {

namespace {

// ---- keys with one scalar value: a ValueSyntax and the member it sets --------------------

// config.*first.*second...: the member a key sets, as a path of member pointers (a fold
// over .*).
template <auto... Member, class C>
auto& member(C& config) {
    return (config.*....*Member);
}

template <ValueSyntax Syntax, auto... Member>
void read_scalar(const Value& value, Config& config) {
    std::optional<std::string> text = value.text(Syntax::expected());
    if (!text) return;
    if (std::string error = Syntax::parse(std::move(*text), member<Member...>(config)); !error.empty()) {
        value.error(error);
    }
}

template <ValueSyntax Syntax, auto... Member>
std::string show_scalar(const Config& config) {
    return Syntax::show(member<Member...>(config));
}

// A key whose value is one scalar of `Syntax`, stored in the member at the end of `Member...`.
template <ValueSyntax Syntax, auto... Member>
constexpr Key setting(std::string_view path) {
    return Key{.path = path, .read = read_scalar<Syntax, Member...>, .show = show_scalar<Syntax, Member...>};
}

// ---- keys with a list or map value -------------------------------------------------------

// Appends `value` (written at `line`) unless `list` already has it; then returns the line of
// the earlier one. `lines` holds the line of each element of `list`.
template <class T>
std::optional<int> append_unless_duplicate(std::vector<T>& list, std::vector<int>& lines, T value, int line) {
    const auto it = std::find(list.begin(), list.end(), value);
    if (it != list.end()) return lines[static_cast<std::size_t>(it - list.begin())];
    list.push_back(std::move(value));
    lines.push_back(line);
    return std::nullopt;
}

// outbox.table, or each of outbox.tables: a table name, each table once.
void read_tables(const Value& value, Config& config) {
    std::vector<int> lines;
    for (const Item& item : value.items()) {
        TableName table;
        if (auto err = parse_table_name(item.text, table); !err.empty()) {
            value.error(item.place, err);
            continue;
        }
        const std::string name = table.qualified();
        if (auto first =
                append_unless_duplicate(config.outbox.tables, lines, std::move(table), item.place.line)) {
            value.error(item.place, fmt::format("duplicate table {} (also at line {})", name, *first));
        }
    }
}

// Columns copied into Kafka headers: "column", or "column:header" to name the header otherwise
// (Debezium's table.fields.additional.placement "column:header:alias"). Each header name once,
// none named like a header the relay sets itself.
void read_headers(const Value& value, Config& config) {
    std::vector<std::string> names;
    std::vector<int> lines;
    for (const Item& item : value.items()) {
        const std::size_t colon = item.text.find(':');
        HeaderColumn header = colon == std::string::npos
                                  ? HeaderColumn(item.text)
                                  : HeaderColumn(item.text.substr(0, colon), item.text.substr(colon + 1));
        if (header.column.empty() || header.name.empty()) {
            value.error(item.place,
                        fmt::format("expected \"column\" or \"column:header\", got {}", quote(item.text)));
            continue;
        }
        if (outbox::is_relay_header(header.name)) {
            value.error(item.place, fmt::format("{} is a header the relay sets itself ({}); copy that column "
                                                "under another name (\"column:header\")",
                                                quote(header.name), outbox::relay_header_list()));
            continue;
        }
        if (auto first = append_unless_duplicate(names, lines, header.name, item.place.line)) {
            value.error(item.place,
                        fmt::format("duplicate header {} (also at line {})", quote(header.name), *first));
            continue;
        }
        config.outbox.headers.push_back(std::move(header));
    }
}

// outbox.relay_headers: which of the relay's transaction headers every event carries. The list
// names them; an empty list sets none of them (`id` is always set).
constexpr std::array<std::pair<std::string_view, bool CommitHeaders::*>, 3> kCommitHeaders{{
    {"outbox-lsn", &CommitHeaders::lsn},
    {"outbox-xid", &CommitHeaders::xid},
    {"outbox-commit-time", &CommitHeaders::commit_time},
}};

void read_relay_headers(const Value& value, Config& config) {
    CommitHeaders chosen{.lsn = false, .xid = false, .commit_time = false};
    std::vector<std::string> names;
    std::vector<int> lines;
    for (const Item& item : value.items()) {
        const auto* it = std::find_if(kCommitHeaders.begin(), kCommitHeaders.end(),
                                      [&](const auto& h) { return h.first == item.text; });
        if (it == kCommitHeaders.end()) {
            value.error(item.place, fmt::format("{} is not one of outbox-lsn, outbox-xid, outbox-commit-time",
                                                quote(item.text)));
            continue;
        }
        if (auto first = append_unless_duplicate(names, lines, item.text, item.place.line)) {
            value.error(item.place,
                        fmt::format("duplicate header {} (also at line {})", quote(item.text), *first));
            continue;
        }
        chosen.*(it->second) = true;
    }
    config.outbox.relay_headers = chosen;
}

// Any librdkafka property, in file order; the producer's policy (kafka/property_policy.h)
// refuses the ones the relay owns.
void read_properties(const Value& value, Config& config) {
    for (const Value& property : value.entries()) {
        if (property.key().empty()) {
            property.error("property names must not be empty");
            continue;
        }
        std::optional<std::string> text = property.text("a string, number or boolean");
        if (!text) continue;
        if (auto refusal = kafka::refusal(property.key(), *text, quote(*text))) property.error(*refusal);
        config.kafka.properties.emplace_back(property.key(), std::move(*text));
    }
}

// ---- describe() lines that show more than one key ----------------------------------------

std::string list_or_none(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += ", ";
        out += item;
    }
    return out.empty() ? "(none)" : out;
}

std::string masked_dsn(const Config& config) {
    return mask_dsn(config.postgres.dsn);
}

std::string with_creation(const std::string& name, bool create) {
    return name + (create ? " (created if missing)" : " (must exist)");
}

std::string slot_and_creation(const Config& config) {
    return with_creation(config.postgres.slot, config.postgres.create_slot);
}

std::string publication_and_creation(const Config& config) {
    return with_creation(config.postgres.publication, config.postgres.create_publication);
}

std::string state_file(const Config& config) {
    if (const auto path = state_file_path(config.postgres)) return *path;
    return "(none: set postgres.state_file or run with StateDirectory=)";
}

std::string table_list(const Config& config) {
    std::vector<std::string> names;
    for (const auto& table : config.outbox.tables) names.push_back(table.qualified());
    return list_or_none(names);
}

std::string column_roles(const Config& config) {
    const ColumnRoles& c = config.outbox.columns;
    return fmt::format("id={}, aggregate_type={}, aggregate_id={}, payload={}", c.id, c.aggregate_type,
                       c.aggregate_id, c.payload);
}

std::string header_list(const Config& config) {
    std::vector<std::string> items;
    for (const auto& h : config.outbox.headers) {
        items.push_back(h.column == h.name ? h.column : h.column + " as " + h.name);
    }
    return list_or_none(items);
}

std::string relay_header_names(const Config& config) {
    std::vector<std::string> items;
    for (const auto& [name, flag] : kCommitHeaders) {
        if (config.outbox.relay_headers.*flag) items.emplace_back(name);
    }
    return list_or_none(items);
}

std::string on_invalid_and_dead_letter_topic(const Config& config) {
    const OutboxConfig& outbox = config.outbox;
    const std::string_view policy = enum_name(outbox.on_invalid);
    if (outbox.on_invalid != OnInvalid::DeadLetter) return std::string(policy);
    return fmt::format("{} -> {}", policy, outbox.dead_letter_topic);
}

std::string timestamp_source(const Config& config) {
    const OutboxConfig& outbox = config.outbox;
    if (outbox.timestamp != TimestampSource::Column) return std::string(enum_name(outbox.timestamp));
    return fmt::format("column {}", outbox.columns.timestamp);
}

std::string after_publish_and_column(const Config& config) {
    const PollConfig& poll = config.poll;
    if (poll.after_publish != AfterPublish::Mark) return std::string(enum_name(poll.after_publish));
    return fmt::format("mark (sets {})", poll.published_column.empty() ? "(not set)" : poll.published_column);
}

std::string property_lines(const Config& config) {
    if (config.kafka.properties.empty()) return "(none)";
    std::string out;
    for (const auto& [key, value] : config.kafka.properties) {
        out += fmt::format("\n    {}: {}", key, is_secret_property(key) ? kMasked : std::string_view(value));
    }
    return out;
}

// ---- the table ---------------------------------------------------------------------------

using PG = PostgresConfig;
using Outbox = OutboxConfig;
using Columns = ColumnRoles;

constexpr std::array kKeys{
    setting<Choice<Source>, &Config::source>("source"),

    setting<Text, &Config::postgres, &PG::dsn>("postgres.dsn").required().shown_as(masked_dsn),
    setting<PasswordFile, &Config::postgres, &PG::password_file>("postgres.password_file"),
    setting<SlotName, &Config::postgres, &PG::slot>("postgres.slot").shown_as(slot_and_creation),
    setting<PublicationName, &Config::postgres, &PG::publication>("postgres.publication")
        .shown_as(publication_and_creation),
    setting<Boolean, &Config::postgres, &PG::create_slot>("postgres.create_slot")
        .shown_in_line_of("postgres.slot"),
    setting<Boolean, &Config::postgres, &PG::create_publication>("postgres.create_publication")
        .shown_in_line_of("postgres.publication"),
    setting<StatusInterval, &Config::postgres, &PG::status_interval>("postgres.status_interval"),
    setting<Choice<SlotFailover>, &Config::postgres, &PG::slot_failover>("postgres.slot_failover"),
    setting<StateFilePath, &Config::postgres, &PG::state_file>("postgres.state_file").shown_as(state_file),

    Key{.path = "outbox.table", .read = read_tables, .show = table_list, .label = "tables"}
        .or_list("tables")
        .required_unless("outbox.messages.prefix"),
    setting<OptionalText, &Config::outbox, &Outbox::messages_prefix>("outbox.messages.prefix"),
    setting<Text, &Config::outbox, &Outbox::columns, &Columns::id>("outbox.columns.id")
        .shown_as(column_roles, "columns"),
    setting<Text, &Config::outbox, &Outbox::columns, &Columns::aggregate_type>(
        "outbox.columns.aggregate_type")
        .shown_in_line_of("outbox.columns.id"),
    setting<Text, &Config::outbox, &Outbox::columns, &Columns::aggregate_id>("outbox.columns.aggregate_id")
        .shown_in_line_of("outbox.columns.id"),
    setting<Text, &Config::outbox, &Outbox::columns, &Columns::payload>("outbox.columns.payload")
        .shown_in_line_of("outbox.columns.id"),
    setting<Text, &Config::outbox, &Outbox::columns, &Columns::timestamp>("outbox.columns.timestamp")
        .shown_in_line_of("outbox.timestamp"),
    setting<TopicTemplate, &Config::outbox>("outbox.topic"),
    Key{.path = "outbox.headers", .read = read_headers, .show = header_list},
    Key{.path = "outbox.relay_headers", .read = read_relay_headers, .show = relay_header_names},
    setting<Choice<OnInvalid>, &Config::outbox, &Outbox::on_invalid>("outbox.on_invalid")
        .shown_as(on_invalid_and_dead_letter_topic),
    setting<DeadLetterTopic, &Config::outbox>("outbox.dead_letter_topic")
        .shown_in_line_of("outbox.on_invalid"),
    setting<Choice<TimestampSource>, &Config::outbox, &Outbox::timestamp>("outbox.timestamp")
        .shown_as(timestamp_source),
    setting<Boolean, &Config::outbox, &Outbox::tombstone_on_empty_payload>(
        "outbox.tombstone_on_empty_payload"),
    setting<Choice<OperationPolicy>, &Config::outbox, &Outbox::on_update>("outbox.on_update"),
    setting<Choice<OperationPolicy>, &Config::outbox, &Outbox::on_delete>("outbox.on_delete"),

    setting<Text, &Config::kafka, &KafkaConfig::bootstrap_servers>("kafka.bootstrap_servers").required(),
    Key{.path = "kafka.properties", .read = read_properties, .show = property_lines},

    setting<PositiveInteger, &Config::limits, &Limits::max_inflight_events>("limits.max_inflight_events"),
    setting<Size, &Config::limits, &Limits::max_inflight_bytes>("limits.max_inflight_bytes"),

    // After limits: batch_size is checked against limits.max_inflight_events.
    setting<Duration, &Config::poll, &PollConfig::interval>("poll.interval"),
    setting<PositiveInteger, &Config::poll, &PollConfig::batch_size>("poll.batch_size"),
    setting<Text, &Config::poll, &PollConfig::order_by>("poll.order_by"),
    setting<Choice<AfterPublish>, &Config::poll, &PollConfig::after_publish>("poll.after_publish")
        .shown_as(after_publish_and_column),
    setting<Text, &Config::poll, &PollConfig::published_column>("poll.published_column")
        .shown_in_line_of("poll.after_publish"),

    setting<ListenAddress, &Config::metrics>("metrics.listen"),

    setting<Choice<LogLevel>, &Config::log, &LogConfig::level>("log.level"),
    setting<Choice<LogFormat>, &Config::log, &LogConfig::format>("log.format"),
};

// ---- rules between keys ------------------------------------------------------------------

// Refused events must not go back to the topic they were refused for.
void dead_letter_topic_differs(const Config& config, const Section& outbox_section, Problems& problems) {
    const OutboxConfig& outbox = config.outbox;
    if (outbox.on_invalid != OnInvalid::DeadLetter || !outbox.topic_is_fixed() ||
        outbox.topic != outbox.dead_letter_topic) {
        return;
    }
    // At dead_letter_topic; when it is the default, on the line that set the topic.
    Place place{outbox_section.place.line, dotted(outbox_section.place.path, "dead_letter_topic")};
    if (const Value* dead_letter = outbox_section.find("dead_letter_topic")) {
        place = dead_letter->place();
    } else if (const Value* topic = outbox_section.find("topic")) {
        place.line = topic->place().line;
    }
    problems.add(
        place, fmt::format("the dead-letter topic must differ from outbox.topic ({})", quote(outbox.topic)));
}

// outbox.timestamp: column needs outbox.columns.timestamp, which means nothing otherwise.
void timestamp_column_given(const Config& config, const Section& outbox_section, Problems& problems) {
    const OutboxConfig& outbox = config.outbox;
    const bool column = outbox.timestamp == TimestampSource::Column;
    if (column == !outbox.columns.timestamp.empty()) return;
    Place place{outbox_section.place.line, dotted(outbox_section.place.path, "timestamp")};
    if (const Value* timestamp = outbox_section.find("timestamp")) place = timestamp->place();
    problems.add(place, column ? "outbox.timestamp is column, but outbox.columns.timestamp names no column"
                               : "outbox.columns.timestamp is set, but outbox.timestamp is not column (it "
                                 "would be ignored)");
}

// Keys that only mean something for logical replication: with source: poll they would be silently
// unused (slot, publication) or promise what the poller cannot keep (logical messages, UPDATE and
// DELETE policies).
constexpr std::string_view kWalOnlyPostgresKeys[] = {
    "slot",          "publication", "create_slot", "create_publication", "status_interval",
    "slot_failover", "state_file"};
constexpr std::string_view kWalOnlyOutboxKeys[] = {"messages", "on_update", "on_delete"};

template <std::size_t N>
void refuse_keys_for_poll(const Config& config, const Section& section, const std::string_view (&names)[N],
                          Problems& problems) {
    if (config.source != Source::Poll) return;
    for (const Value& entry : section.entries) {
        if (std::find(std::begin(names), std::end(names), entry.key()) == std::end(names)) continue;
        problems.add(entry.place(),
                     "only used with source: wal (logical replication); remove it for source: poll");
    }
}

void wal_only_postgres_keys(const Config& config, const Section& postgres_section, Problems& problems) {
    refuse_keys_for_poll(config, postgres_section, kWalOnlyPostgresKeys, problems);
}

// The poller relays one table (one advisory lock, one transaction per batch): run one relay per table.
void poll_outbox(const Config& config, const Section& outbox_section, Problems& problems) {
    refuse_keys_for_poll(config, outbox_section, kWalOnlyOutboxKeys, problems);
    if (config.source != Source::Poll || config.outbox.tables.size() == 1) return;
    Place place{outbox_section.place.line, dotted(outbox_section.place.path, "table")};
    if (const Value* tables = outbox_section.find("tables")) place = tables->place();
    if (config.outbox.tables.empty()) {
        // Without messages.prefix the loader has said that the table is missing already.
        if (outbox_section.find("messages") != nullptr)
            problems.add(place, "required key is missing: source: poll polls an outbox table");
        return;
    }
    problems.add(place, "source: poll polls one table; run one relay per table");
}

void poll_section(const Config& config, const Section& poll_section, Problems& problems) {
    const PollConfig& poll = config.poll;
    if (config.source != Source::Poll) {
        for (const Value& entry : poll_section.entries)
            problems.add(entry.place(), "only used with source: poll (source is wal)");
        return;
    }
    const auto place_of = [&](std::string_view key) {
        if (const Value* value = poll_section.find(key)) return value->place();
        return Place{poll_section.place.line, dotted(poll_section.place.path, key)};
    };
    if (poll.batch_size > config.limits.max_inflight_events) {
        problems.add(place_of("batch_size"),
                     fmt::format("must be at most limits.max_inflight_events ({}), got {}: a batch is "
                                 "published whole before its rows are deleted",
                                 config.limits.max_inflight_events, poll.batch_size));
    }
    const bool mark = poll.after_publish == AfterPublish::Mark;
    if (mark == !poll.published_column.empty()) return;
    problems.add(place_of(mark ? "after_publish" : "published_column"),
                 mark ? "poll.after_publish is mark, but poll.published_column names no column"
                      : "poll.published_column is set, but poll.after_publish is not mark (it would be "
                        "ignored)");
}

constexpr std::array kConstraints{
    Constraint{"postgres", wal_only_postgres_keys},
    Constraint{"outbox", dead_letter_topic_differs},
    Constraint{"outbox", timestamp_column_given},
    Constraint{"outbox", poll_outbox},
    Constraint{"poll", poll_section},
};

}  // namespace

std::span<const Key> keys() {
    return kKeys;
}

std::span<const Constraint> constraints() {
    return kConstraints;
}

}  // namespace outbox::config

#pragma once

// What the outbox router needs to know: which tables are outbox tables, which column plays
// which role, how the topic is made and where refused events go. The configuration loader
// (src/config/) fills these from YAML; the core never reads the configuration itself.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outbox {

// A table as PostgreSQL's catalog names it (pg_namespace.nspname, pg_class.relname): the
// loader folds unquoted identifiers to lower case and keeps double-quoted ones verbatim,
// exactly as SQL would.
struct TableName {
    std::string schema = "public";
    std::string name;

    // "schema.name" as written for humans and in topic templates ({table}).
    [[nodiscard]] std::string qualified() const;
    // "\"schema\".\"name\"", safe to splice into SQL (CREATE PUBLICATION ... FOR TABLE).
    [[nodiscard]] std::string quoted() const;

    friend bool operator==(const TableName&, const TableName&) = default;
};

// Which column of the outbox row plays which role. Column names are compared verbatim
// (case-sensitive) with the names pgoutput sends. Defaults match Debezium's outbox router.
struct ColumnRoles {
    std::string id = "id";
    std::string aggregate_type = "aggregatetype";
    std::string aggregate_id = "aggregateid";
    std::string payload = "payload";
    std::string timestamp;  // only with TimestampSource::Column
};

// What to do with an event that retrying cannot fix (invalid routing value, too large...).
enum class OnInvalid { DeadLetter, Stop };

// What an UPDATE or DELETE of an outbox row does (outbox rows are only ever inserted). Ignore:
// the publication does not carry them at all. Warn: carried, logged and counted, nothing
// published. Stop: carried; the relay stops there, confirming nothing past it.
enum class OperationPolicy { Ignore, Warn, Stop };

// Which time a Kafka record carries as its timestamp.
enum class TimestampSource {
    Commit,   // the transaction's commit time
    Produce,  // when the relay hands it to the producer (librdkafka's default)
    Column,   // the value of columns.timestamp (timestamp[tz] in ISO form, or bigint ms since the
              // Unix epoch); NULL falls back to the commit time
};

// A column copied into a Kafka header, under its own name or another.
struct HeaderColumn {
    std::string column;
    std::string name;  // the header's name

    // The header takes the column's name (implicit: a configuration's list of names reads as such).
    HeaderColumn(std::string column_name) : column(column_name), name(std::move(column_name)) {}  // NOLINT
    HeaderColumn(const char* column_name) : HeaderColumn(std::string(column_name)) {}             // NOLINT
    HeaderColumn(std::string column_name, std::string header_name)
        : column(std::move(column_name)), name(std::move(header_name)) {}

    friend bool operator==(const HeaderColumn&, const HeaderColumn&) = default;
};

// The relay's own headers that describe an event's transaction (outbox.relay_headers). Each one
// costs the producer a header per event (an allocation and ~400 instructions in librdkafka
// 2.0.2: bench/results/2026-12-01-profile.md); `id` is always set.
struct CommitHeaders {
    bool lsn = true;          // outbox-lsn: the transaction's commit LSN
    bool xid = true;          // outbox-xid: its transaction id
    bool commit_time = true;  // outbox-commit-time: its commit time

    friend bool operator==(const CommitHeaders&, const CommitHeaders&) = default;
};

// One piece of a parsed topic template: literal text or a placeholder for a column role.
struct TopicSegment {
    enum class Kind {
        Literal,        // `text` verbatim
        AggregateType,  // {aggregate_type}: value of columns.aggregate_type
        AggregateId,    // {aggregate_id}:   value of columns.aggregate_id
        Id,             // {id}:             value of columns.id
        Table,          // {table}:          source table as schema.name (TableName::qualified)
    };
    Kind kind = Kind::Literal;
    std::string text;  // only for Literal

    friend bool operator==(const TopicSegment&, const TopicSegment&) = default;
};

struct OutboxOptions {
    std::vector<TableName> tables;  // required: the loader ensures >= 1 and no duplicates
    ColumnRoles columns;
    // The template as written, and its parsed form (the loader keeps both in step). Literal
    // parts contain only [a-zA-Z0-9._-]; a template without placeholders is a fixed, legal
    // Kafka topic name. Substituted values are the router's to validate.
    std::string topic = "outbox.event.{aggregate_type}";
    std::vector<TopicSegment> topic_segments{
        {TopicSegment::Kind::Literal, "outbox.event."},
        {TopicSegment::Kind::AggregateType, ""},
    };
    std::vector<HeaderColumn> headers;  // extra columns copied into Kafka headers, no duplicate names
    CommitHeaders relay_headers;        // on every event and on its dead-letter copies
    OnInvalid on_invalid = OnInvalid::DeadLetter;
    std::string dead_letter_topic = "outbox.dead_letter";  // legal topic name when DeadLetter
    TimestampSource timestamp = TimestampSource::Commit;
    // An empty or blank payload is sent as a tombstone (null value) too, not only NULL.
    bool tombstone_on_empty_payload = false;
    OperationPolicy on_update = OperationPolicy::Ignore;
    OperationPolicy on_delete = OperationPolicy::Ignore;
    // Transactional logical messages (pg_logical_emit_message) with exactly this prefix are events
    // too: their content is a JSON object whose members are the columns above. nullopt: none.
    std::optional<std::string> messages_prefix;

    [[nodiscard]] bool topic_is_fixed() const;  // no placeholders
};

// Headers the router sets on every record (and on dead-letter copies): a configured header column
// may not have one of these names.
inline constexpr std::string_view kRelayHeaders[] = {
    "id",
    "outbox-lsn",
    "outbox-xid",
    "outbox-commit-time",
    "outbox-error",
    "outbox-error-code",
    "outbox-table",
    "outbox-original-topic",
    "outbox-payload-bytes",
};
[[nodiscard]] bool is_relay_header(std::string_view name) noexcept;
// "id, outbox-lsn, ..."
[[nodiscard]] std::string relay_header_list();

}  // namespace outbox

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lsn.h"
#include "config/config.h"
#include "pgoutput/messages.h"
#include "pgoutput/relation_cache.h"

namespace outbox {

// What the router needs to know about the transaction a row belongs to.
struct CommitInfo {
    Lsn commit_lsn;  // Begin.final_lsn: the commit record of the transaction
    Xid xid;
    std::int64_t commit_time_unix_us = 0;

    bool operator==(const CommitInfo&) const = default;
};

struct RecordHeader {
    std::string_view name;
    std::optional<std::string_view> value;  // nullopt: a header with a null value
};

// A Kafka record ready to produce. Views point into the decoded frame, the router's
// configuration or the record's own storage, so a Record is valid until the next route()
// into it and until the frame is released. Reused between events to avoid allocations.
struct Record {
    std::string topic;
    std::optional<std::string_view> key;
    std::optional<std::string_view> value;  // nullopt: tombstone
    std::vector<RecordHeader> headers;
    bool topic_complete = false;  // route() got as far as a valid topic

    // Storage for values the router computes.
    std::string value_storage;
    std::string lsn_text;
    std::string xid_text;
    std::string time_text;
    std::optional<CommitInfo> texts_for;  // the commit the three texts above describe
    std::string error_text;
    std::string size_text;
    std::string original_topic;
    std::string valid_topic;  // the last topic that passed is_valid_topic_name(): not checked again

    // Approximate bytes this record holds in the producer (for in-flight limits).
    [[nodiscard]] std::size_t size_bytes() const noexcept;
};

// Why an outbox row cannot be published as it is. `code` is one of a small fixed set (it is
// used as a metric label); `detail` says what exactly, for the log and the dead-letter header.
struct Rejection {
    std::string_view code;  // missing_column, null_value, empty_value, unchanged_toast,
                            // invalid_topic, invalid_payload, invalid_utf8, too_large, rejected_by_kafka
    std::string detail;
};

enum class RouteOutcome {
    Routed,     // `record` holds the event
    Rejected,   // `rejection` says why; the dead-letter policy applies
    NotOutbox,  // the row is from a table that is not an outbox table: not an event
};

// Maps outbox rows to Kafka records (DESIGN: "outbox::Router PURE"). The topic comes from
// the template, the key is the aggregate id, the value is the payload (json/jsonb/text as
// text, bytea as raw bytes, NULL as a tombstone), headers: `id`, the configured extra
// columns, outbox-lsn, outbox-xid, outbox-commit-time.
class OutboxRouter {
public:
    explicit OutboxRouter(config::OutboxConfig config);

    RouteOutcome route(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                       const CommitInfo& commit, Record& record, Rejection& rejection) const;

    // A dead-letter record for a row the router rejected: key and payload as far as they can
    // be read, the original headers that can be, plus outbox-error, outbox-error-code,
    // outbox-table and outbox-original-topic (when route() got as far as a valid topic into
    // `attempted`, the record it was rejected on).
    void dead_letter_for_row(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                             const CommitInfo& commit, const Rejection& rejection, const Record& attempted,
                             Record& out) const;

    // A dead-letter record for an event Kafka refused for good (e.g. too large): same key and
    // headers, the payload left out (it is what Kafka refused) and its size in a header.
    void dead_letter_for_record(const Record& original, const Rejection& rejection, Record& out) const;

    [[nodiscard]] bool is_outbox_table(const pgoutput::RelationInfo& relation) const;
    [[nodiscard]] const config::OutboxConfig& config() const noexcept { return config_; }

private:
    config::OutboxConfig config_;
};

// Kafka's rule for topic names: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
[[nodiscard]] bool is_valid_topic_name(std::string_view name) noexcept;

// PostgreSQL's bytea text output ("\x0a0b...") to raw bytes; nullopt when it is not that form.
[[nodiscard]] bool decode_bytea_hex(std::string_view text, std::string& out);

// RFC 3339 UTC with microseconds: 2024-02-29T13:14:15.123456Z.
void format_utc_micros(std::int64_t unix_us, std::string& out);

}  // namespace outbox

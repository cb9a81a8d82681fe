#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lsn.h"
#include "outbox/options.h"
#include "outbox/record.h"
#include "pgoutput/messages.h"
#include "pgoutput/relation_cache.h"

namespace outbox {

enum class RouteOutcome {
    Routed,     // `record` holds the event
    Rejected,   // `rejection` says why; the dead-letter policy applies
    NotOutbox,  // the row is from a table that is not an outbox table: not an event
};

// Maps outbox rows to Kafka records (DESIGN: "outbox::Router PURE"). The topic comes from
// the template, the key is the aggregate id, the value is the payload (json/jsonb/text as
// text, bytea as raw bytes, NULL as a tombstone), headers: `id`, the configured extra
// columns, and of outbox-lsn, outbox-xid, outbox-commit-time those relay_headers asks for.
class OutboxRouter {
public:
    explicit OutboxRouter(OutboxOptions config);

    RouteOutcome route(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                       const CommitInfo& commit, Record& record, Rejection& rejection) const;
    // The same for values that come from elsewhere than an outbox table's row (a logical
    // message's members as columns): never NotOutbox.
    RouteOutcome route_values(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
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

    // Rows come from a server that stores text as valid UTF-8 and sends it unconverted
    // (server_encoding and client_encoding UTF8: PostgreSQL checks every text value on input),
    // so route() need not check it again. Set from the server's parameters, never guessed;
    // route_values() (logical messages, polled rows) checks always.
    void set_rows_are_valid_utf8(bool valid) noexcept { rows_are_valid_utf8_ = valid; }

    [[nodiscard]] bool is_outbox_table(const pgoutput::RelationInfo& relation) const;
    // The configured columns (roles and headers) that `relation` lacks, as "\"name\" (role)".
    [[nodiscard]] std::vector<std::string> missing_columns(const pgoutput::RelationInfo& relation) const;
    [[nodiscard]] const OutboxOptions& config() const noexcept { return config_; }

private:
    RouteOutcome route_tuple(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                             const CommitInfo& commit, bool check_utf8, Record& record,
                             Rejection& rejection) const;
    // The record's timestamp per config_.timestamp; false (and `rejection`) for a value that is
    // not a timestamp.
    bool set_timestamp(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                       const CommitInfo& commit, Record& record, Rejection& rejection) const;

    OutboxOptions config_;
    bool rows_are_valid_utf8_ = false;
};

// Kafka's rule for topic names: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
[[nodiscard]] bool is_valid_topic_name(std::string_view name) noexcept;

// PostgreSQL's bytea text output ("\x0a0b...") to raw bytes; nullopt when it is not that form.
[[nodiscard]] bool decode_bytea_hex(std::string_view text, std::string& out);

// A timestamp column's text as pgoutput sends it, to milliseconds since the Unix epoch: ISO form
// (DateStyle ISO: "2026-11-30 22:13:44.066+00", with or without the offset, which then means UTC;
// RFC 3339's "T" and "Z" are read too)
// or a bigint of milliseconds. False for anything else ("infinity", BC dates, other DateStyles).
[[nodiscard]] bool parse_timestamp_ms(std::string_view text, std::int64_t& out);

// RFC 3339 UTC with microseconds: 2024-02-29T13:14:15.123456Z.
void format_utc_micros(std::int64_t unix_us, std::string& out);

}  // namespace outbox

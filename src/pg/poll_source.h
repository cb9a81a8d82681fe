#pragma once

// The polling publisher's side of PostgreSQL (source: poll): the checks of the outbox table, the
// advisory lock that makes one relay the poller of a table, and the statements of one batch:
//
//   BEGIN; SELECT <columns>, xmin, <commit time> FROM t [WHERE published IS NULL]
//          ORDER BY order_by LIMIT n FOR UPDATE SKIP LOCKED;
//   ... every row's event acknowledged by Kafka ...
//   DELETE FROM t WHERE id = ANY('{...}'::<id type>[]);  (or UPDATE t SET published = now() ...)
//   COMMIT;
//
// A row is deleted (or marked) only in the transaction that locked it and only after Kafka
// acknowledged it; any failure before the COMMIT leaves it in place, to be polled again.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outbox/options.h"
#include "pg/connection.h"

namespace outbox::pg {

struct PollOptions {
    TableName table;
    std::string id_column = "id";
    // Every column an event is made of (the column roles, the timestamp column, the header
    // columns), each once, with the key that names it: selected in this order.
    std::vector<std::pair<std::string, std::string>> columns;
    std::string order_by;
    std::string published_column;  // empty: rows are deleted; else marked in this column
    std::uint64_t batch_size = 1000;
};

// What the checks found out about the table, for the statements.
struct PollTable {
    std::uint32_t oid = 0;
    std::string id_type;             // format_type() of the id column, e.g. "uuid"
    bool commit_timestamps = false;  // track_commit_timestamp = on: rows carry their commit time
    std::vector<std::string> warnings;
};

// The advisory lock of the poller of a table: pg_try_advisory_lock(kPollLockClass, <table oid>),
// held by the session for as long as it polls.
inline constexpr std::int32_t kPollLockClass = 0x6f757462;  // "outb"
// How far the backlog is counted (outbox_relay_lag_rows): more reads as this many.
inline constexpr std::uint64_t kBacklogCountLimit = 100000;

// Throws Error(Config) naming the problem and the fix. The configured columns themselves are
// require_columns()' (setup.h).
// The id column is NOT NULL (rows are deleted or marked by id); the published column is a
// nullable timestamp (NULL: not yet published).
void require_poll_columns(Connection& conn, const PollOptions& options);
// SELECT; UPDATE on some column (FOR UPDATE row locks need it); DELETE, or UPDATE on the
// published column.
void require_poll_privileges(Connection& conn, const PollOptions& options);
// The table's oid, the id column's type, track_commit_timestamp, and warnings: order_by is a uuid
// (random ones are no order), no index leading with order_by (every poll sorts the table) or with
// the id column (every delete scans it).
PollTable inspect_poll_table(Connection& conn, const PollOptions& options);

// Takes the poller's advisory lock for the session; false when another session holds it.
bool try_poll_lock(Connection& conn, std::uint32_t table_oid);
// The pid of the session that holds the lock, if one does.
std::optional<std::string> poll_lock_holder(Connection& conn, std::uint32_t table_oid);

// "BEGIN; [count;] SELECT ...": the batch's rows, locked. Result columns: options.columns in order,
// then the row's xmin as text (its inserting transaction), then its commit time in microseconds
// since the Unix epoch (track_commit_timestamp; else the poll's transaction start). With
// `count_backlog`, a first result counts the unpublished rows up to kBacklogCountLimit + 1.
std::string poll_sql(const PollOptions& options, const PollTable& table, bool count_backlog);
// "{"a","b"}": the text form of an array of `values`.
std::string array_text(const std::vector<std::string_view>& values);
// "DELETE ...; COMMIT" (or UPDATE ... SET published = now()) for the rows whose ids are in
// `quoted_ids`, the SQL literal of array_text(ids) (PQescapeLiteral).
std::string after_publish_sql(const PollOptions& options, const PollTable& table,
                              const std::string& quoted_ids);

}  // namespace outbox::pg

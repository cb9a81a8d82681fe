#pragma once

// The messages of PostgreSQL's `pgoutput` logical decoding plugin, protocol versions 1 and 2
// (PostgreSQL 15, src/backend/replication/logical/proto.c; docs: "Logical Replication
// Message Formats").
//
// Every std::string_view in these structs points INTO the frame buffer that was decoded:
// payload bytes are never copied. Keep the frame alive while a message is in use, and copy
// what must outlive it (RelationCache does so for Relation messages).

#include <compare>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "common/lsn.h"

namespace outbox::pgoutput {

// PostgreSQL's TimestampTz on the wire: microseconds since 2000-01-01 00:00:00 UTC.
class PgTimestamp {
public:
    // 2000-01-01T00:00:00Z minus 1970-01-01T00:00:00Z, in microseconds.
    static constexpr std::int64_t kUnixEpochOffsetMicros = 946'684'800'000'000;

    constexpr PgTimestamp() noexcept = default;
    constexpr explicit PgTimestamp(std::int64_t pg_micros) noexcept : pg_micros_(pg_micros) {}

    [[nodiscard]] constexpr std::int64_t pg_micros() const noexcept { return pg_micros_; }

    // Microseconds since the Unix epoch. Saturates instead of overflowing, so PostgreSQL's
    // 'infinity' (INT64_MAX) stays the largest value and a hostile peer cannot cause UB.
    [[nodiscard]] constexpr std::int64_t unix_micros() const noexcept {
        constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
        if (pg_micros_ > max - kUnixEpochOffsetMicros) return max;
        return pg_micros_ + kUnixEpochOffsetMicros;
    }

    constexpr auto operator<=>(const PgTimestamp&) const noexcept = default;

private:
    std::int64_t pg_micros_ = 0;
};

// ---- tuples ----

// How one column of a row is sent (TupleData's per-column byte).
enum class ColumnKind : char {
    Null = 'n',
    UnchangedToast = 'u',  // an unchanged TOASTed value: the server did not send it
    Text = 't',            // the type's output function, as text
    Binary = 'b',          // the type's send function ('binary' option)
};

struct ColumnValue {
    ColumnKind kind = ColumnKind::Null;
    std::string_view bytes;  // the value for Text and Binary; empty for Null and UnchangedToast

    bool operator==(const ColumnValue&) const = default;
};

struct Tuple {
    std::vector<ColumnValue> columns;  // in the order of the Relation message's columns

    bool operator==(const Tuple&) const = default;
};

// Which old row image an Update or Delete carries.
enum class OldTupleKind : char {
    Key = 'K',   // only the replica identity columns, the others are Null
    Full = 'O',  // the whole old row (REPLICA IDENTITY FULL)
};

struct OldTuple {
    OldTupleKind kind = OldTupleKind::Key;
    Tuple tuple;

    bool operator==(const OldTuple&) const = default;
};

// ---- transaction control ----

struct Begin {
    Lsn final_lsn;  // LSN of the commit record
    PgTimestamp commit_time;
    Xid xid;

    bool operator==(const Begin&) const = default;
};

struct Commit {
    std::uint8_t flags = 0;  // unused by PostgreSQL 15; decode rejects anything but 0
    Lsn commit_lsn;          // LSN of the commit record
    Lsn end_lsn;             // end of the commit record: what a client confirms as flushed
    PgTimestamp commit_time;

    bool operator==(const Commit&) const = default;
};

// The replication origin a transaction came from (sent after Begin or Stream Start).
struct Origin {
    Lsn lsn;  // commit LSN on the origin server
    std::string_view name;

    bool operator==(const Origin&) const = default;
};

// ---- schema ----

enum class ReplicaIdentity : char {
    Default = 'd',  // primary key
    Nothing = 'n',
    Full = 'f',
    Index = 'i',
};

struct RelationColumn {
    static constexpr std::uint8_t kKeyFlag = 1;  // part of the replica identity

    std::uint8_t flags = 0;
    std::string_view name;
    std::uint32_t type_oid = 0;
    std::int32_t type_modifier = -1;  // atttypmod, -1 when the type has none

    [[nodiscard]] bool is_key() const noexcept { return (flags & kKeyFlag) != 0; }
    bool operator==(const RelationColumn&) const = default;
};

// Sent before the first row of a relation in a session and again whenever its schema
// changes, so a receiver must replace what it knew.
struct Relation {
    std::optional<Xid> stream_xid;  // set only inside a streamed transaction (protocol v2)
    RelationId id;
    std::string_view namespace_name;  // "pg_catalog" when the server sent the empty string
    std::string_view name;
    ReplicaIdentity replica_identity = ReplicaIdentity::Default;
    std::vector<RelationColumn> columns;  // dropped and generated columns are not sent

    bool operator==(const Relation&) const = default;
};

// Describes a non-built-in type used by a published column.
struct Type {
    std::optional<Xid> stream_xid;
    std::uint32_t type_oid = 0;
    std::string_view namespace_name;  // "pg_catalog" when the server sent the empty string
    std::string_view name;

    bool operator==(const Type&) const = default;
};

// ---- rows ----

struct Insert {
    std::optional<Xid> stream_xid;  // inside a streamed transaction: the (sub)transaction id
    RelationId relation;
    Tuple new_tuple;

    bool operator==(const Insert&) const = default;
};

struct Update {
    std::optional<Xid> stream_xid;
    RelationId relation;
    std::optional<OldTuple> old_tuple;  // only when the key changed, or REPLICA IDENTITY FULL
    Tuple new_tuple;

    bool operator==(const Update&) const = default;
};

struct Delete {
    std::optional<Xid> stream_xid;
    RelationId relation;
    OldTuple old_tuple;

    bool operator==(const Delete&) const = default;
};

struct Truncate {
    static constexpr std::uint8_t kCascade = 1;
    static constexpr std::uint8_t kRestartIdentity = 2;

    std::optional<Xid> stream_xid;
    std::uint8_t options = 0;
    std::vector<RelationId> relations;

    [[nodiscard]] bool cascade() const noexcept { return (options & kCascade) != 0; }
    [[nodiscard]] bool restart_identity() const noexcept { return (options & kRestartIdentity) != 0; }
    bool operator==(const Truncate&) const = default;
};

// pg_logical_emit_message(transactional, prefix, content); sent only with 'messages' on.
struct LogicalMessage {
    static constexpr std::uint8_t kTransactional = 1;

    std::optional<Xid> stream_xid;
    std::uint8_t flags = 0;
    Lsn lsn;
    std::string_view prefix;
    std::string_view content;  // arbitrary bytes

    // A non-transactional message arrives on its own, outside Begin/Commit, and is
    // delivered even if the transaction that emitted it rolls back.
    [[nodiscard]] bool transactional() const noexcept { return (flags & kTransactional) != 0; }
    bool operator==(const LogicalMessage&) const = default;
};

// ---- streaming of in-progress transactions (protocol v2, 'streaming' on) ----

// Opens a block of changes of transaction `xid`; blocks of several transactions may interleave.
struct StreamStart {
    Xid xid;
    bool first_segment = false;  // the first block of this transaction

    bool operator==(const StreamStart&) const = default;
};

struct StreamStop {
    bool operator==(const StreamStop&) const = default;
};

struct StreamCommit {
    Xid xid;
    std::uint8_t flags = 0;  // unused by PostgreSQL 15; decode rejects anything but 0
    Lsn commit_lsn;
    Lsn end_lsn;
    PgTimestamp commit_time;

    bool operator==(const StreamCommit&) const = default;
};

// `subxid == xid` aborts the whole transaction; otherwise only that subtransaction.
struct StreamAbort {
    Xid xid;
    Xid subxid;

    bool operator==(const StreamAbort&) const = default;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate,
                             LogicalMessage, StreamStart, StreamStop, StreamCommit, StreamAbort>;

}  // namespace outbox::pgoutput

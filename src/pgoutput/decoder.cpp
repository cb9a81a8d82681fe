#include "pgoutput/decoder.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace outbox::pgoutput {

namespace {

// The server writes an empty namespace for pg_catalog to save space (proto.c,
// logicalrep_write_namespace).
constexpr std::string_view kCatalogNamespace = "pg_catalog";

std::string hex_byte(std::uint8_t byte) {
    constexpr char digits[] = "0123456789abcdef";
    return std::string{"0x"} + digits[byte >> 4] + digits[byte & 0x0f];
}

// "'N' (0x4e)" for a printable byte, "0x05" otherwise.
std::string describe_byte(std::uint8_t byte) {
    if (byte >= 0x20 && byte < 0x7f) {
        return std::string{"'"} + static_cast<char>(byte) + "' (" + hex_byte(byte) + ")";
    }
    return hex_byte(byte);
}

std::optional<Xid> read_stream_xid(ByteReader& in, bool in_stream) {
    if (!in_stream) return std::nullopt;
    return Xid{in.read_u32()};
}

// Reads an Int16 or Int32 count/length and rejects negative values, which the server never
// sends; `what` names it in the error ("column count", "value length", ...).
template <typename Int>
std::size_t read_count(ByteReader& in, std::string_view what) {
    const std::size_t at = in.offset();
    Int value{};
    if constexpr (std::is_same_v<Int, std::int16_t>) {
        value = in.read_i16();
    } else {
        value = in.read_i32();
    }
    if (value < 0) {
        throw in.error_at(at, "negative " + std::string(what) + " " + std::to_string(value));
    }
    return static_cast<std::size_t>(value);
}

// Reserves for `count` elements only as far as the bytes left could possibly hold them, so a
// bogus count in a short message cannot make us allocate much.
template <typename T>
void reserve_bounded(std::vector<T>& items, std::size_t count, const ByteReader& in,
                     std::size_t min_wire_size) {
    items.reserve(std::min(count, in.remaining() / min_wire_size));
}

Lsn read_lsn(ByteReader& in) {
    return Lsn{in.read_u64()};
}

PgTimestamp read_timestamp(ByteReader& in) {
    return PgTimestamp{in.read_i64()};
}

std::string_view read_namespace(ByteReader& in) {
    const std::string_view name = in.read_cstring();
    return name.empty() ? kCatalogNamespace : name;
}

// Commit and Stream Commit carry a flags byte that PostgreSQL 15 always sends as 0;
// like proto.c we refuse anything else rather than guess what it would mean.
std::uint8_t read_commit_flags(ByteReader& in) {
    const std::size_t at = in.offset();
    const std::uint8_t flags = in.read_u8();
    if (flags != 0) throw in.error_at(at, "unrecognized flags " + hex_byte(flags));
    return flags;
}

using TupleStorage = Decoder::TupleBuffers;

// Reads a tuple into `storage`'s buffer, which the returned Tuple takes over (its capacity too).
Tuple read_tuple(ByteReader& in, std::vector<ColumnValue>& storage) {
    Tuple tuple;
    tuple.columns = std::move(storage);
    tuple.columns.clear();
    const std::size_t count = read_count<std::int16_t>(in, "column count");
    reserve_bounded(tuple.columns, count, in, 1);
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t at = in.offset();
        const std::uint8_t kind = in.read_u8();
        switch (kind) {
            case static_cast<std::uint8_t>(ColumnKind::Null):
            case static_cast<std::uint8_t>(ColumnKind::UnchangedToast):
                tuple.columns.push_back({static_cast<ColumnKind>(kind), {}});
                break;
            case static_cast<std::uint8_t>(ColumnKind::Text):
            case static_cast<std::uint8_t>(ColumnKind::Binary): {
                const std::size_t length = read_count<std::int32_t>(in, "value length");
                tuple.columns.push_back({static_cast<ColumnKind>(kind), in.read_bytes(length)});
                break;
            }
            default:
                throw in.error_at(at, "unknown kind " + describe_byte(kind) + " of column " +
                                          std::to_string(i) + " in tuple data");
        }
    }
    return tuple;
}

// Reads the byte that announces a tuple and checks it is one of `allowed` ("N", "KO", "KON").
char read_tuple_marker(ByteReader& in, std::string_view allowed) {
    const std::size_t at = in.offset();
    const std::uint8_t marker = in.read_u8();
    if (marker == 0 || allowed.find(static_cast<char>(marker)) == std::string_view::npos) {
        std::string expected;
        for (std::size_t i = 0; i < allowed.size(); ++i) {
            if (i > 0) expected += i + 1 == allowed.size() ? " or " : ", ";
            expected += std::string{"'"} + allowed[i] + "'";
        }
        throw in.error_at(at, "expected tuple marker " + expected + ", got " + describe_byte(marker));
    }
    return static_cast<char>(marker);
}

Begin read_begin(ByteReader& in) {
    Begin begin;
    const std::size_t at = in.offset();
    begin.final_lsn = read_lsn(in);
    // proto.c: "final_lsn not set in begin message".
    if (!begin.final_lsn.is_valid()) throw in.error_at(at, "final_lsn is not set");
    begin.commit_time = read_timestamp(in);
    begin.xid = Xid{in.read_u32()};
    return begin;
}

Commit read_commit(ByteReader& in) {
    Commit commit;
    commit.flags = read_commit_flags(in);
    commit.commit_lsn = read_lsn(in);
    commit.end_lsn = read_lsn(in);
    commit.commit_time = read_timestamp(in);
    return commit;
}

Origin read_origin(ByteReader& in) {
    Origin origin;
    origin.lsn = read_lsn(in);
    origin.name = in.read_cstring();
    return origin;
}

ReplicaIdentity read_replica_identity(ByteReader& in) {
    const std::size_t at = in.offset();
    const std::uint8_t value = in.read_u8();
    switch (value) {
        case static_cast<std::uint8_t>(ReplicaIdentity::Default):
        case static_cast<std::uint8_t>(ReplicaIdentity::Nothing):
        case static_cast<std::uint8_t>(ReplicaIdentity::Full):
        case static_cast<std::uint8_t>(ReplicaIdentity::Index): return static_cast<ReplicaIdentity>(value);
        default: throw in.error_at(at, "unknown replica identity " + describe_byte(value));
    }
}

Relation read_relation(ByteReader& in, bool in_stream) {
    Relation relation;
    relation.stream_xid = read_stream_xid(in, in_stream);
    relation.id = RelationId{in.read_u32()};
    relation.namespace_name = read_namespace(in);
    relation.name = in.read_cstring();
    relation.replica_identity = read_replica_identity(in);
    const std::size_t count = read_count<std::int16_t>(in, "column count");
    // flags, an empty name's NUL, type OID and type modifier: at least 10 bytes a column.
    reserve_bounded(relation.columns, count, in, 10);
    for (std::size_t i = 0; i < count; ++i) {
        RelationColumn column;
        column.flags = in.read_u8();
        column.name = in.read_cstring();
        column.type_oid = in.read_u32();
        column.type_modifier = in.read_i32();
        relation.columns.push_back(column);
    }
    return relation;
}

Type read_type(ByteReader& in, bool in_stream) {
    Type type;
    type.stream_xid = read_stream_xid(in, in_stream);
    type.type_oid = in.read_u32();
    type.namespace_name = read_namespace(in);
    type.name = in.read_cstring();
    return type;
}

Insert read_insert(ByteReader& in, bool in_stream, TupleStorage& storage) {
    Insert insert;
    insert.stream_xid = read_stream_xid(in, in_stream);
    insert.relation = RelationId{in.read_u32()};
    read_tuple_marker(in, "N");
    insert.new_tuple = read_tuple(in, storage.new_columns);
    return insert;
}

Update read_update(ByteReader& in, bool in_stream, TupleStorage& storage) {
    Update update;
    update.stream_xid = read_stream_xid(in, in_stream);
    update.relation = RelationId{in.read_u32()};
    char marker = read_tuple_marker(in, "KON");
    if (marker != 'N') {
        update.old_tuple = OldTuple{static_cast<OldTupleKind>(marker), read_tuple(in, storage.old_columns)};
        read_tuple_marker(in, "N");
    }
    update.new_tuple = read_tuple(in, storage.new_columns);
    return update;
}

Delete read_delete(ByteReader& in, bool in_stream, TupleStorage& storage) {
    Delete del;
    del.stream_xid = read_stream_xid(in, in_stream);
    del.relation = RelationId{in.read_u32()};
    const char marker = read_tuple_marker(in, "KO");
    del.old_tuple = OldTuple{static_cast<OldTupleKind>(marker), read_tuple(in, storage.old_columns)};
    return del;
}

Truncate read_truncate(ByteReader& in, bool in_stream) {
    Truncate truncate;
    truncate.stream_xid = read_stream_xid(in, in_stream);
    const std::size_t count = read_count<std::int32_t>(in, "relation count");
    truncate.options = in.read_u8();
    reserve_bounded(truncate.relations, count, in, 4);
    for (std::size_t i = 0; i < count; ++i) truncate.relations.push_back(RelationId{in.read_u32()});
    return truncate;
}

LogicalMessage read_logical_message(ByteReader& in, bool in_stream) {
    LogicalMessage message;
    message.stream_xid = read_stream_xid(in, in_stream);
    message.flags = in.read_u8();
    message.lsn = read_lsn(in);
    message.prefix = in.read_cstring();
    const std::size_t length = read_count<std::int32_t>(in, "content length");
    message.content = in.read_bytes(length);
    return message;
}

StreamStart read_stream_start(ByteReader& in) {
    StreamStart start;
    start.xid = Xid{in.read_u32()};
    const std::size_t at = in.offset();
    const std::uint8_t first = in.read_u8();
    if (first > 1) throw in.error_at(at, "first-segment flag must be 0 or 1, got " + hex_byte(first));
    start.first_segment = first == 1;
    return start;
}

StreamCommit read_stream_commit(ByteReader& in) {
    StreamCommit commit;
    commit.xid = Xid{in.read_u32()};
    commit.flags = read_commit_flags(in);
    commit.commit_lsn = read_lsn(in);
    commit.end_lsn = read_lsn(in);
    commit.commit_time = read_timestamp(in);
    return commit;
}

StreamAbort read_stream_abort(ByteReader& in) {
    StreamAbort abort;
    abort.xid = Xid{in.read_u32()};
    abort.subxid = Xid{in.read_u32()};
    return abort;
}

// Where a message type may appear relative to a Stream Start / Stream Stop block.
enum class Placement { OutsideStream, InsideStream, Anywhere };

void check_placement(const ByteReader& in, Placement placement, bool in_stream) {
    if (placement == Placement::OutsideStream && in_stream) {
        throw in.error_at(0, "not allowed between Stream Start and Stream Stop");
    }
    if (placement == Placement::InsideStream && !in_stream) {
        throw in.error_at(0, "not allowed outside a Stream Start / Stream Stop block");
    }
}

template <typename Read>
Message decode_as(ByteReader& in, std::string_view context, Placement placement, bool in_stream, Read read) {
    in.set_message(context);
    check_placement(in, placement, in_stream);
    Message message{read(in)};
    in.expect_end();
    return message;
}

Message decode_message(std::string_view bytes, bool in_stream, TupleStorage& storage) {
    ByteReader in(bytes, "pgoutput message");
    if (bytes.empty()) throw DecodeError("pgoutput message: empty message (0 bytes)");
    const std::uint8_t type = in.read_u8();
    const auto streamed = [in_stream](auto read) {
        return [in_stream, read](ByteReader& r) { return read(r, in_stream); };
    };
    const auto row = [in_stream, &storage](auto read) {
        return [in_stream, &storage, read](ByteReader& r) { return read(r, in_stream, storage); };
    };
    switch (type) {
        case 'B': return decode_as(in, "Begin message", Placement::OutsideStream, in_stream, read_begin);
        case 'C': return decode_as(in, "Commit message", Placement::OutsideStream, in_stream, read_commit);
        case 'O': return decode_as(in, "Origin message", Placement::Anywhere, in_stream, read_origin);
        case 'R':
            return decode_as(in, "Relation message", Placement::Anywhere, in_stream, streamed(read_relation));
        case 'Y': return decode_as(in, "Type message", Placement::Anywhere, in_stream, streamed(read_type));
        case 'I': return decode_as(in, "Insert message", Placement::Anywhere, in_stream, row(read_insert));
        case 'U': return decode_as(in, "Update message", Placement::Anywhere, in_stream, row(read_update));
        case 'D': return decode_as(in, "Delete message", Placement::Anywhere, in_stream, row(read_delete));
        case 'T':
            return decode_as(in, "Truncate message", Placement::Anywhere, in_stream, streamed(read_truncate));
        case 'M':
            return decode_as(in, "Logical decoding message", Placement::Anywhere, in_stream,
                             streamed(read_logical_message));
        case 'S':
            return decode_as(in, "Stream Start message", Placement::OutsideStream, in_stream,
                             read_stream_start);
        case 'E':
            return decode_as(in, "Stream Stop message", Placement::InsideStream, in_stream,
                             [](ByteReader&) { return StreamStop{}; });
        case 'c':
            return decode_as(in, "Stream Commit message", Placement::OutsideStream, in_stream,
                             read_stream_commit);
        case 'A':
            return decode_as(in, "Stream Abort message", Placement::OutsideStream, in_stream,
                             read_stream_abort);
        default:
            // Includes the two-phase messages of protocol v3 ('b', 'P', 'K', 'r', 'p'),
            // which we never ask for.
            throw in.error_at(0, "unknown message type " + describe_byte(type));
    }
}

}  // namespace

Message decode(std::string_view bytes, bool in_stream) {
    TupleStorage storage;
    return decode_message(bytes, in_stream, storage);
}

const Message& Decoder::decode(std::string_view bytes, bool in_stream) {
    // Take the tuple buffers back from the previous message (its views are dead by now); the
    // moved-from vectors left behind own nothing, so replacing the message frees nothing.
    if (auto* insert = std::get_if<Insert>(&message_)) {
        buffers_.new_columns = std::move(insert->new_tuple.columns);
    } else if (auto* update = std::get_if<Update>(&message_)) {
        buffers_.new_columns = std::move(update->new_tuple.columns);
        if (update->old_tuple) buffers_.old_columns = std::move(update->old_tuple->tuple.columns);
    } else if (auto* del = std::get_if<Delete>(&message_)) {
        buffers_.old_columns = std::move(del->old_tuple.tuple.columns);
    }
    message_ = decode_message(bytes, in_stream, buffers_);
    return message_;
}

std::string_view message_name(const Message& message) noexcept {
    struct Namer {
        std::string_view operator()(const Begin&) const { return "Begin"; }
        std::string_view operator()(const Commit&) const { return "Commit"; }
        std::string_view operator()(const Origin&) const { return "Origin"; }
        std::string_view operator()(const Relation&) const { return "Relation"; }
        std::string_view operator()(const Type&) const { return "Type"; }
        std::string_view operator()(const Insert&) const { return "Insert"; }
        std::string_view operator()(const Update&) const { return "Update"; }
        std::string_view operator()(const Delete&) const { return "Delete"; }
        std::string_view operator()(const Truncate&) const { return "Truncate"; }
        std::string_view operator()(const LogicalMessage&) const { return "Message"; }
        std::string_view operator()(const StreamStart&) const { return "Stream Start"; }
        std::string_view operator()(const StreamStop&) const { return "Stream Stop"; }
        std::string_view operator()(const StreamCommit&) const { return "Stream Commit"; }
        std::string_view operator()(const StreamAbort&) const { return "Stream Abort"; }
    };
    return std::visit(Namer{}, message);
}

}  // namespace outbox::pgoutput

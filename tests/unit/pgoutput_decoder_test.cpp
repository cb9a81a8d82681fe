#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/error.h"
#include "common/lsn.h"
#include "pgoutput/decoder.h"
#include "pgoutput/reader.h"
#include "pgoutput/relation_cache.h"

using namespace outbox::pgoutput;
using outbox::Lsn;
using outbox::RelationId;
using outbox::Xid;

namespace {

// ---- test-only big-endian frame builder ----

class Frame {
public:
    explicit Frame(char type) { bytes_.push_back(type); }

    Frame& u8(std::uint8_t value) {
        bytes_.push_back(static_cast<char>(value));
        return *this;
    }
    Frame& i16(std::int16_t value) { return big_endian(static_cast<std::uint16_t>(value), 2); }
    Frame& i32(std::int32_t value) { return big_endian(static_cast<std::uint32_t>(value), 4); }
    Frame& u32(std::uint32_t value) { return big_endian(value, 4); }
    Frame& i64(std::int64_t value) { return big_endian(static_cast<std::uint64_t>(value), 8); }
    Frame& u64(std::uint64_t value) { return big_endian(value, 8); }
    Frame& cstring(std::string_view text) {
        bytes_.append(text);
        bytes_.push_back('\0');
        return *this;
    }
    Frame& raw(std::string_view bytes) {
        bytes_.append(bytes);
        return *this;
    }

    // TupleData pieces.
    Frame& null_value() { return u8('n'); }
    Frame& unchanged_toast() { return u8('u'); }
    Frame& text_value(std::string_view text) {
        return u8('t').i32(static_cast<std::int32_t>(text.size())).raw(text);
    }
    Frame& binary_value(std::string_view bytes) {
        return u8('b').i32(static_cast<std::int32_t>(bytes.size())).raw(bytes);
    }

    [[nodiscard]] const std::string& bytes() const { return bytes_; }

private:
    Frame& big_endian(std::uint64_t value, int width) {
        for (int shift = (width - 1) * 8; shift >= 0; shift -= 8) {
            bytes_.push_back(static_cast<char>((value >> shift) & 0xff));
        }
        return *this;
    }

    std::string bytes_;
};

// ---- hand-built valid messages, one per type (and per variant of a type) ----

constexpr std::uint64_t kFinalLsn = 0x16B374D848;
constexpr std::uint64_t kEndLsn = 0x16B374D878;
constexpr std::int64_t kCommitTime = 0x0002B0D5D4E94000;  // 2024-01-01 00:00:00 UTC
constexpr std::uint32_t kXid = 734;
constexpr std::uint32_t kSubXid = 735;
constexpr std::uint32_t kOutboxOid = 16384;
// A value with an embedded NUL and high bytes: lengths, not terminators, delimit values.
constexpr std::string_view kBinaryBytes{"\x00\xff\x10\x80", 4};

std::string begin_frame() {
    return Frame('B').u64(kFinalLsn).i64(kCommitTime).u32(kXid).bytes();
}

std::string commit_frame() {
    return Frame('C').u8(0).u64(kFinalLsn).u64(kEndLsn).i64(kCommitTime).bytes();
}

std::string origin_frame() {
    return Frame('O').u64(0xABCDEF).cstring("upstream").bytes();
}

Frame relation_frame(bool in_stream) {
    Frame frame('R');
    if (in_stream) frame.u32(kSubXid);
    frame.u32(kOutboxOid).cstring("public").cstring("outbox").u8('d').i16(3);
    frame.u8(1).cstring("id").u32(2950).i32(-1);
    frame.u8(0).cstring("payload").u32(3802).i32(-1);
    frame.u8(0).cstring("name").u32(1043).i32(68);  // varchar(64): typmod is length + 4
    return frame;
}

std::string type_frame(bool in_stream) {
    Frame frame('Y');
    if (in_stream) frame.u32(kSubXid);
    return frame.u32(16406).cstring("public").cstring("mood").bytes();
}

// One value of each kind: text, null, unchanged TOAST, binary.
Frame& four_kind_tuple(Frame& frame) {
    return frame.i16(4)
        .text_value("6f1c2b4e-8d3a-4f5b-9c7e-1a2b3c4d5e6f")
        .null_value()
        .unchanged_toast()
        .binary_value(kBinaryBytes);
}

std::string insert_frame(bool in_stream) {
    Frame frame('I');
    if (in_stream) frame.u32(kSubXid);
    frame.u32(kOutboxOid).u8('N');
    return four_kind_tuple(frame).bytes();
}

std::string update_frame(bool in_stream, char old_marker) {
    Frame frame('U');
    if (in_stream) frame.u32(kSubXid);
    frame.u32(kOutboxOid);
    if (old_marker != 0) frame.u8(static_cast<std::uint8_t>(old_marker)).i16(2).text_value("1").null_value();
    frame.u8('N').i16(2).text_value("2").text_value("new");
    return frame.bytes();
}

std::string delete_frame(bool in_stream, char marker) {
    Frame frame('D');
    if (in_stream) frame.u32(kSubXid);
    frame.u32(kOutboxOid).u8(static_cast<std::uint8_t>(marker)).i16(2).text_value("7").null_value();
    return frame.bytes();
}

std::string truncate_frame(bool in_stream) {
    Frame frame('T');
    if (in_stream) frame.u32(kSubXid);
    return frame.i32(2).u8(Truncate::kCascade | Truncate::kRestartIdentity).u32(16391).u32(16411).bytes();
}

std::string logical_message_frame(bool in_stream, bool transactional) {
    Frame frame('M');
    if (in_stream) frame.u32(kSubXid);
    frame.u8(transactional ? 1 : 0).u64(0x153EF28).cstring("pfx");
    frame.i32(static_cast<std::int32_t>(kBinaryBytes.size())).raw(kBinaryBytes);
    return frame.bytes();
}

std::string stream_start_frame(bool first) {
    return Frame('S').u32(kXid).u8(first ? 1 : 0).bytes();
}

std::string stream_stop_frame() {
    return Frame('E').bytes();
}

std::string stream_commit_frame() {
    return Frame('c').u32(kXid).u8(0).u64(kFinalLsn).u64(kEndLsn).i64(kCommitTime).bytes();
}

std::string stream_abort_frame() {
    return Frame('A').u32(kXid).u32(kSubXid).bytes();
}

struct Sample {
    std::string name;
    std::string bytes;
    bool in_stream = false;
};

std::vector<Sample> valid_samples() {
    return {
        {"Begin", begin_frame()},
        {"Commit", commit_frame()},
        {"Origin", origin_frame()},
        {"Relation", relation_frame(false).bytes()},
        {"Relation in stream", relation_frame(true).bytes(), true},
        {"Relation with no columns", Frame('R').u32(1).cstring("").cstring("t").u8('n').i16(0).bytes()},
        {"Type", type_frame(false)},
        {"Type in stream", type_frame(true), true},
        {"Insert", insert_frame(false)},
        {"Insert in stream", insert_frame(true), true},
        {"Insert of an empty tuple", Frame('I').u32(1).u8('N').i16(0).bytes()},
        {"Update", update_frame(false, 0)},
        {"Update with key", update_frame(false, 'K')},
        {"Update with old row", update_frame(false, 'O')},
        {"Update in stream", update_frame(true, 'O'), true},
        {"Delete with key", delete_frame(false, 'K')},
        {"Delete with old row", delete_frame(false, 'O')},
        {"Delete in stream", delete_frame(true, 'K'), true},
        {"Truncate", truncate_frame(false)},
        {"Truncate in stream", truncate_frame(true), true},
        {"Message", logical_message_frame(false, true)},
        {"Message non-transactional", logical_message_frame(false, false)},
        {"Message in stream", logical_message_frame(true, true), true},
        {"Stream Start", stream_start_frame(true)},
        {"Stream Stop", stream_stop_frame(), true},
        {"Stream Commit", stream_commit_frame()},
        {"Stream Abort", stream_abort_frame()},
    };
}

// ---- helpers ----

template <typename T>
T decode_as(std::string_view bytes, bool in_stream = false) {
    Message message = decode(bytes, in_stream);
    INFO("decoded as " << std::string(message_name(message)));
    REQUIRE(std::holds_alternative<T>(message));
    return std::get<T>(std::move(message));
}

// The decoded views point into the frame: decoding a temporary string would leave them
// dangling, so that does not compile.
template <typename T>
T decode_as(std::string&& bytes, bool in_stream = false) = delete;

// The what() of the DecodeError that decoding `bytes` must throw.
std::string decode_error(std::string_view bytes, bool in_stream = false) {
    try {
        (void)decode(bytes, in_stream);
    } catch (const DecodeError& error) {
        CHECK(error.kind() == outbox::ErrorKind::Protocol);
        return error.what();
    }
    FAIL("decode did not throw DecodeError");
    return {};
}

bool points_into(std::string_view part, std::string_view whole) {
    const auto part_at = reinterpret_cast<std::uintptr_t>(part.data());
    const auto whole_at = reinterpret_cast<std::uintptr_t>(whole.data());
    return part_at >= whole_at && part_at + part.size() <= whole_at + whole.size();
}

// Decodes `bytes` from an exactly-sized heap copy, so that a read one byte past the end is
// a heap overflow that AddressSanitizer or valgrind reports, not a read of the caller's tail.
void decode_exact_copy(std::string_view bytes, bool in_stream) {
    const auto copy = std::make_unique<char[]>(bytes.size());
    if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
    (void)decode(std::string_view(copy.get(), bytes.size()), in_stream);
}

ColumnValue text(std::string_view value) {
    return {ColumnKind::Text, value};
}
ColumnValue binary(std::string_view value) {
    return {ColumnKind::Binary, value};
}
const ColumnValue kNull{ColumnKind::Null, {}};
const ColumnValue kUnchanged{ColumnKind::UnchangedToast, {}};

// ---- golden fixtures ----

std::string hex_to_bytes(std::string_view hex, std::size_t line_number) {
    const auto nibble = [&](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        throw std::runtime_error("bad hex digit on fixture line " + std::to_string(line_number));
    };
    if (hex.size() % 2 != 0)
        throw std::runtime_error("odd hex length on fixture line " + std::to_string(line_number));
    std::string bytes;
    bytes.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        bytes.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    }
    return bytes;
}

// One message per non-comment, non-empty line (see the fixture files' headers).
std::vector<std::string> load_fixture(const std::string& name) {
    const std::string path = std::string(OUTBOX_FIXTURE_DIR) + "/" + name;
    std::ifstream file(path);
    if (!file) throw std::runtime_error("cannot open fixture " + path);
    std::vector<std::string> frames;
    std::string line;
    std::size_t line_number = 0;
    while (std::getline(file, line)) {
        ++line_number;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (line.empty() || line.front() == '#') continue;
        frames.push_back(hex_to_bytes(line, line_number));
    }
    return frames;
}

// Decodes a whole capture, tracking Stream Start / Stream Stop as a real caller must.
std::vector<Message> decode_all(const std::vector<std::string>& frames) {
    std::vector<Message> messages;
    bool in_stream = false;
    for (const std::string& frame : frames) {
        messages.push_back(decode(frame, in_stream));
        if (std::holds_alternative<StreamStart>(messages.back())) in_stream = true;
        if (std::holds_alternative<StreamStop>(messages.back())) in_stream = false;
    }
    return messages;
}

std::string names_of(const std::vector<Message>& messages) {
    std::string names;
    for (const Message& message : messages) {
        if (!names.empty()) names += ' ';
        names += message_name(message);
    }
    return names;
}

Lsn lsn(std::string_view text) {
    const auto parsed = Lsn::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

constexpr std::int64_t kUnixMicrosPerDay = 86'400'000'000;
constexpr std::int64_t kCaptureDayUnixMicros = 1'795'564'800'000'000;  // 2026-11-25 00:00:00 UTC

}  // namespace

// =====================================================================================
// ByteReader
// =====================================================================================

TEST_CASE("ByteReader reads big-endian integers, signed values included") {
    const std::string bytes = Frame('\x7f')
                                  .i16(-2)
                                  .i32(std::numeric_limits<std::int32_t>::min())
                                  .u32(0xFFFFFFFFu)
                                  .i64(-1)
                                  .u64(0x0102030405060708)
                                  .bytes();
    ByteReader in(bytes, "test message");
    CHECK(in.read_u8() == 0x7f);
    CHECK(in.read_i16() == -2);
    CHECK(in.read_i32() == std::numeric_limits<std::int32_t>::min());
    CHECK(in.read_u32() == 0xFFFFFFFFu);
    CHECK(in.read_i64() == -1);
    CHECK(in.read_u64() == 0x0102030405060708ull);
    CHECK(in.at_end());
    CHECK(in.offset() == bytes.size());
    CHECK_NOTHROW(in.expect_end());
}

TEST_CASE("ByteReader returns strings and byte runs as views into the buffer") {
    const std::string bytes = Frame('x').cstring("").cstring("abc").raw("tail").bytes();
    ByteReader in(bytes, "test message");
    in.read_u8();
    CHECK(in.read_cstring().empty());
    const std::string_view abc = in.read_cstring();
    CHECK(abc == "abc");
    CHECK(abc.data() == bytes.data() + 2);
    CHECK(in.read_bytes(0).empty());
    const std::string_view tail = in.read_bytes(4);
    CHECK(tail == "tail");
    CHECK(points_into(tail, bytes));
    CHECK(in.at_end());
    CHECK(in.read_bytes(0).empty());  // zero bytes at the end is not an overrun
}

TEST_CASE("ByteReader overruns throw a Protocol DecodeError naming message, field and offset") {
    const std::string bytes("\x01\x02\x03", 3);
    ByteReader in(bytes, "Test message");
    in.read_u8();
    try {
        in.read_i32();
        FAIL("no throw");
    } catch (const DecodeError& error) {
        CHECK(error.kind() == outbox::ErrorKind::Protocol);
        CHECK(std::string(error.what()) ==
              "Test message: cannot read Int32 at offset 1: needs 4 bytes, 2 left (message size 3)");
    }
    CHECK(in.offset() == 1);  // a failed read consumes nothing
    CHECK_THROWS_WITH_AS(in.read_i64(), doctest::Contains("cannot read Int64 at offset 1"), DecodeError);
    CHECK_THROWS_WITH_AS(in.read_bytes(3),
                         doctest::Contains("cannot read Byte3 at offset 1: needs 3 bytes, 2 left"),
                         DecodeError);
    CHECK_THROWS_WITH_AS(in.read_cstring(),
                         doctest::Contains("cannot read String at offset 1: no NUL terminator"), DecodeError);
    CHECK_THROWS_WITH_AS(in.expect_end(), doctest::Contains("2 unexpected trailing bytes at offset 1"),
                         DecodeError);
    in.read_i16();
    CHECK_THROWS_WITH_AS(
        in.read_u8(), doctest::Contains("cannot read Int8 at offset 3: needs 1 byte, 0 left"), DecodeError);
}

// =====================================================================================
// PgTimestamp
// =====================================================================================

TEST_CASE("PgTimestamp converts PostgreSQL epoch microseconds to Unix epoch microseconds") {
    CHECK(PgTimestamp(0).unix_micros() == 946'684'800'000'000);              // 2000-01-01T00:00:00Z
    CHECK(PgTimestamp(kCommitTime).unix_micros() == 1'704'067'200'000'000);  // 2024-01-01T00:00:00Z
    CHECK(PgTimestamp(-946'684'800'000'000).unix_micros() == 0);             // 1970-01-01T00:00:00Z
    // 'infinity' is INT64_MAX: the conversion saturates rather than overflowing.
    CHECK(PgTimestamp(std::numeric_limits<std::int64_t>::max()).unix_micros() ==
          std::numeric_limits<std::int64_t>::max());
    CHECK(PgTimestamp(std::numeric_limits<std::int64_t>::min()).unix_micros() ==
          std::numeric_limits<std::int64_t>::min() + 946'684'800'000'000);
    CHECK(PgTimestamp(1) < PgTimestamp(2));
}

// =====================================================================================
// decode: every message type, every field
// =====================================================================================

TEST_CASE("decode Begin") {
    const std::string frame = begin_frame();
    const auto begin = decode_as<Begin>(frame);
    CHECK(begin.final_lsn == Lsn(kFinalLsn));
    CHECK(begin.commit_time == PgTimestamp(kCommitTime));
    CHECK(begin.xid == Xid(kXid));
    CHECK(message_name(decode(frame)) == "Begin");
}

TEST_CASE("decode Commit") {
    const std::string frame = commit_frame();
    const auto commit = decode_as<Commit>(frame);
    CHECK(commit.flags == 0);
    CHECK(commit.commit_lsn == Lsn(kFinalLsn));
    CHECK(commit.end_lsn == Lsn(kEndLsn));
    CHECK(commit.commit_time == PgTimestamp(kCommitTime));
}

TEST_CASE("decode Origin") {
    const std::string frame = origin_frame();
    const auto origin = decode_as<Origin>(frame);
    CHECK(origin.lsn == Lsn(0xABCDEF));
    CHECK(origin.name == "upstream");
    CHECK(points_into(origin.name, frame));
}

TEST_CASE("decode Relation: identity, names and every column attribute") {
    const std::string frame = relation_frame(false).bytes();
    const auto relation = decode_as<Relation>(frame);
    CHECK_FALSE(relation.stream_xid.has_value());
    CHECK(relation.id == RelationId(kOutboxOid));
    CHECK(relation.namespace_name == "public");
    CHECK(relation.name == "outbox");
    CHECK(relation.replica_identity == ReplicaIdentity::Default);
    REQUIRE(relation.columns.size() == 3);
    CHECK(relation.columns[0] == RelationColumn{1, "id", 2950, -1});
    CHECK(relation.columns[0].is_key());
    CHECK(relation.columns[1] == RelationColumn{0, "payload", 3802, -1});
    CHECK_FALSE(relation.columns[1].is_key());
    CHECK(relation.columns[2] == RelationColumn{0, "name", 1043, 68});
    CHECK(points_into(relation.columns[1].name, frame));
}

TEST_CASE("decode Relation: an empty namespace means pg_catalog, replica identities map") {
    for (const auto& [byte, identity] :
         {std::pair{'d', ReplicaIdentity::Default}, std::pair{'n', ReplicaIdentity::Nothing},
          std::pair{'f', ReplicaIdentity::Full}, std::pair{'i', ReplicaIdentity::Index}}) {
        const std::string frame = Frame('R')
                                      .u32(1)
                                      .cstring("")
                                      .cstring("pg_class")
                                      .u8(static_cast<std::uint8_t>(byte))
                                      .i16(0)
                                      .bytes();
        const auto relation = decode_as<Relation>(frame);
        CHECK(relation.namespace_name == "pg_catalog");
        CHECK(relation.replica_identity == identity);
        CHECK(relation.columns.empty());
    }
}

TEST_CASE("decode Type") {
    const std::string frame = type_frame(false);
    const auto type = decode_as<Type>(frame);
    CHECK_FALSE(type.stream_xid.has_value());
    CHECK(type.type_oid == 16406);
    CHECK(type.namespace_name == "public");
    CHECK(type.name == "mood");
    CHECK(decode_as<Type>(Frame('Y').u32(7).cstring("").cstring("t").bytes()).namespace_name == "pg_catalog");
}

TEST_CASE("decode Insert: all four column kinds, values are views into the frame") {
    const std::string frame = insert_frame(false);
    const auto insert = decode_as<Insert>(frame);
    CHECK_FALSE(insert.stream_xid.has_value());
    CHECK(insert.relation == RelationId(kOutboxOid));
    REQUIRE(insert.new_tuple.columns.size() == 4);
    CHECK(insert.new_tuple.columns[0] == text("6f1c2b4e-8d3a-4f5b-9c7e-1a2b3c4d5e6f"));
    CHECK(insert.new_tuple.columns[1] == kNull);
    CHECK(insert.new_tuple.columns[2] == kUnchanged);
    CHECK(insert.new_tuple.columns[3] == binary(kBinaryBytes));
    CHECK(insert.new_tuple.columns[3].bytes.size() == 4);  // the embedded NUL is data
    CHECK(points_into(insert.new_tuple.columns[0].bytes, frame));
    CHECK(points_into(insert.new_tuple.columns[3].bytes, frame));
}

TEST_CASE("decode Update without, with key and with full old tuple") {
    const std::string plain_frame = update_frame(false, 0);
    const auto plain = decode_as<Update>(plain_frame);
    CHECK(plain.relation == RelationId(kOutboxOid));
    CHECK_FALSE(plain.old_tuple.has_value());
    CHECK(plain.new_tuple == Tuple{{text("2"), text("new")}});

    const std::string keyed_frame = update_frame(false, 'K');
    const auto keyed = decode_as<Update>(keyed_frame);
    REQUIRE(keyed.old_tuple.has_value());
    CHECK(keyed.old_tuple->kind == OldTupleKind::Key);
    CHECK(keyed.old_tuple->tuple == Tuple{{text("1"), kNull}});
    CHECK(keyed.new_tuple == Tuple{{text("2"), text("new")}});

    const std::string full_frame = update_frame(false, 'O');
    const auto full = decode_as<Update>(full_frame);
    REQUIRE(full.old_tuple.has_value());
    CHECK(full.old_tuple->kind == OldTupleKind::Full);
    CHECK(full.old_tuple->tuple == Tuple{{text("1"), kNull}});
}

TEST_CASE("decode Delete with key and with full old tuple") {
    const std::string keyed_frame = delete_frame(false, 'K');
    const auto keyed = decode_as<Delete>(keyed_frame);
    CHECK(keyed.relation == RelationId(kOutboxOid));
    CHECK(keyed.old_tuple.kind == OldTupleKind::Key);
    CHECK(keyed.old_tuple.tuple == Tuple{{text("7"), kNull}});
    const std::string full_frame = delete_frame(false, 'O');
    CHECK(decode_as<Delete>(full_frame).old_tuple.kind == OldTupleKind::Full);
}

TEST_CASE("decode Truncate") {
    const std::string frame = truncate_frame(false);
    const auto truncate = decode_as<Truncate>(frame);
    CHECK(truncate.options == 3);
    CHECK(truncate.cascade());
    CHECK(truncate.restart_identity());
    CHECK(truncate.relations == std::vector<RelationId>{RelationId(16391), RelationId(16411)});
    const std::string plain_frame = Frame('T').i32(1).u8(0).u32(5).bytes();
    const auto plain = decode_as<Truncate>(plain_frame);
    CHECK_FALSE(plain.cascade());
    CHECK_FALSE(plain.restart_identity());
    CHECK(plain.relations == std::vector<RelationId>{RelationId(5)});
}

TEST_CASE("decode logical decoding Message: flags, lsn, prefix and binary content") {
    const std::string frame = logical_message_frame(false, true);
    const auto message = decode_as<LogicalMessage>(frame);
    CHECK_FALSE(message.stream_xid.has_value());
    CHECK(message.flags == 1);
    CHECK(message.transactional());
    CHECK(message.lsn == Lsn(0x153EF28));
    CHECK(message.prefix == "pfx");
    CHECK(message.content == kBinaryBytes);
    CHECK(points_into(message.content, frame));
    const std::string loose_frame = logical_message_frame(false, false);
    CHECK_FALSE(decode_as<LogicalMessage>(loose_frame).transactional());
    CHECK(message_name(decode(frame)) == "Message");
}

TEST_CASE("decode the streaming messages") {
    const std::string first_frame = stream_start_frame(true);
    const auto first = decode_as<StreamStart>(first_frame);
    CHECK(first.xid == Xid(kXid));
    CHECK(first.first_segment);
    const std::string later_frame = stream_start_frame(false);
    CHECK_FALSE(decode_as<StreamStart>(later_frame).first_segment);

    CHECK(std::holds_alternative<StreamStop>(decode(stream_stop_frame(), true)));

    const std::string commit_bytes = stream_commit_frame();
    const auto commit = decode_as<StreamCommit>(commit_bytes);
    CHECK(commit.xid == Xid(kXid));
    CHECK(commit.flags == 0);
    CHECK(commit.commit_lsn == Lsn(kFinalLsn));
    CHECK(commit.end_lsn == Lsn(kEndLsn));
    CHECK(commit.commit_time == PgTimestamp(kCommitTime));

    const std::string abort_bytes = stream_abort_frame();
    const auto abort = decode_as<StreamAbort>(abort_bytes);
    CHECK(abort.xid == Xid(kXid));
    CHECK(abort.subxid == Xid(kSubXid));
}

TEST_CASE("inside a stream block, changes carry a leading (sub)transaction id") {
    const std::optional<Xid> sub{Xid(kSubXid)};

    const Frame relation_bytes = relation_frame(true);
    const auto relation = decode_as<Relation>(relation_bytes.bytes(), true);
    CHECK(relation.stream_xid == sub);
    CHECK(relation.id == RelationId(kOutboxOid));
    CHECK(relation.columns.size() == 3);

    const std::string type_bytes = type_frame(true);
    const auto type = decode_as<Type>(type_bytes, true);
    CHECK(type.stream_xid == sub);
    CHECK(type.name == "mood");

    const std::string insert_bytes = insert_frame(true);
    const auto insert = decode_as<Insert>(insert_bytes, true);
    CHECK(insert.stream_xid == sub);
    CHECK(insert.relation == RelationId(kOutboxOid));
    CHECK(insert.new_tuple.columns.size() == 4);

    const std::string update_bytes = update_frame(true, 'O');
    const auto update = decode_as<Update>(update_bytes, true);
    CHECK(update.stream_xid == sub);
    CHECK(update.old_tuple.has_value());

    const std::string delete_bytes = delete_frame(true, 'K');
    const auto del = decode_as<Delete>(delete_bytes, true);
    CHECK(del.stream_xid == sub);
    CHECK(del.old_tuple.tuple == Tuple{{text("7"), kNull}});

    const std::string truncate_bytes = truncate_frame(true);
    const auto truncate = decode_as<Truncate>(truncate_bytes, true);
    CHECK(truncate.stream_xid == sub);
    CHECK(truncate.relations.size() == 2);

    const std::string message_bytes = logical_message_frame(true, true);
    const auto message = decode_as<LogicalMessage>(message_bytes, true);
    CHECK(message.stream_xid == sub);
    CHECK(message.prefix == "pfx");

    // Origin has no xid even inside a stream block.
    const std::string origin_bytes = origin_frame();
    CHECK(decode_as<Origin>(origin_bytes, true).name == "upstream");
}

TEST_CASE("an in-stream change decoded without the in-stream flag is rejected, not misread") {
    // The xid is taken for the relation id and the relation id's first byte for the marker.
    CHECK(decode_error(insert_frame(true)) ==
          "Insert message: expected tuple marker 'N', got 0x00 at offset 5 (message size 64)");
    CHECK_THROWS_AS(decode(update_frame(true, 'O')), DecodeError);
    CHECK_THROWS_AS(decode(delete_frame(true, 'K')), DecodeError);
}

TEST_CASE("message_name names every alternative") {
    CHECK(message_name(Message{Begin{}}) == "Begin");
    CHECK(message_name(Message{Commit{}}) == "Commit");
    CHECK(message_name(Message{Origin{}}) == "Origin");
    CHECK(message_name(Message{Relation{}}) == "Relation");
    CHECK(message_name(Message{Type{}}) == "Type");
    CHECK(message_name(Message{Insert{}}) == "Insert");
    CHECK(message_name(Message{Update{}}) == "Update");
    CHECK(message_name(Message{Delete{}}) == "Delete");
    CHECK(message_name(Message{Truncate{}}) == "Truncate");
    CHECK(message_name(Message{LogicalMessage{}}) == "Message");
    CHECK(message_name(Message{StreamStart{}}) == "Stream Start");
    CHECK(message_name(Message{StreamStop{}}) == "Stream Stop");
    CHECK(message_name(Message{StreamCommit{}}) == "Stream Commit");
    CHECK(message_name(Message{StreamAbort{}}) == "Stream Abort");
}

// =====================================================================================
// decode: what the peer must not send
// =====================================================================================

TEST_CASE("every truncation of every valid message throws DecodeError") {
    for (const Sample& sample : valid_samples()) {
        CAPTURE(sample.name);
        REQUIRE_NOTHROW(decode_exact_copy(sample.bytes, sample.in_stream));
        for (std::size_t length = 0; length < sample.bytes.size(); ++length) {
            CAPTURE(length);
            CHECK_THROWS_AS(
                decode_exact_copy(std::string_view(sample.bytes).substr(0, length), sample.in_stream),
                DecodeError);
        }
    }
}

TEST_CASE("trailing bytes after a complete message are rejected") {
    for (const Sample& sample : valid_samples()) {
        CAPTURE(sample.name);
        const std::size_t size = sample.bytes.size();
        CHECK(decode_error(sample.bytes + '\0', sample.in_stream)
                  .find(": 1 unexpected trailing byte at offset " + std::to_string(size) + " (message size " +
                        std::to_string(size + 1) + ")") != std::string::npos);
        CHECK(decode_error(sample.bytes + "abc", sample.in_stream).find(": 3 unexpected trailing bytes") !=
              std::string::npos);
    }
    CHECK(decode_error(begin_frame() + "xy") ==
          "Begin message: 2 unexpected trailing bytes at offset 21 (message size 23)");
}

TEST_CASE("truncation errors name the message type, the field and the offset") {
    // The example from the module's brief: an in-stream Insert cut inside its relation id.
    CHECK(decode_error(insert_frame(true).substr(0, 7), true) ==
          "Insert message: cannot read Int32 at offset 5: needs 4 bytes, 2 left (message size 7)");
    CHECK(decode_error(begin_frame().substr(0, 10)) ==
          "Begin message: cannot read Int64 at offset 9: needs 8 bytes, 1 left (message size 10)");
    CHECK(decode_error(origin_frame().substr(0, 12)) ==
          "Origin message: cannot read String at offset 9: no NUL terminator in the 3 bytes left (message "
          "size 12)");
    // A Text value whose length runs past the end: 'I', relid, 'N', count, 't', length 36.
    CHECK(decode_error(insert_frame(false).substr(0, 20)) ==
          "Insert message: cannot read Byte36 at offset 13: needs 36 bytes, 7 left (message size 20)");
    CHECK(decode_error("") == "pgoutput message: empty message (0 bytes)");
}

TEST_CASE("unknown message types are rejected naming the byte") {
    CHECK(decode_error("Z") ==
          "pgoutput message: unknown message type 'Z' (0x5a) at offset 0 (message size 1)");
    CHECK(decode_error(std::string("\x05\x00", 2)) ==
          "pgoutput message: unknown message type 0x05 at offset 0 (message size 2)");
    // Protocol v3 two-phase messages are never requested, so never accepted.
    for (const char type : {'b', 'P', 'K', 'r', 'p'}) {
        CAPTURE(type);
        CHECK(decode_error(std::string(1, type) + std::string(40, '\x01')).find("unknown message type") !=
              std::string::npos);
    }
}

TEST_CASE("Commit and Stream Commit flags other than 0 are rejected") {
    CHECK(decode_error(Frame('C').u8(1).u64(kFinalLsn).u64(kEndLsn).i64(kCommitTime).bytes()) ==
          "Commit message: unrecognized flags 0x01 at offset 1 (message size 26)");
    CHECK(decode_error(Frame('c').u32(kXid).u8(0x80).u64(kFinalLsn).u64(kEndLsn).i64(kCommitTime).bytes()) ==
          "Stream Commit message: unrecognized flags 0x80 at offset 5 (message size 30)");
}

TEST_CASE("Begin without a final LSN is rejected, as proto.c does") {
    CHECK(decode_error(Frame('B').u64(0).i64(kCommitTime).u32(kXid).bytes()) ==
          "Begin message: final_lsn is not set at offset 1 (message size 21)");
}

TEST_CASE("unknown tuple column kinds are rejected naming the kind, column and offset") {
    const std::string frame = Frame('I').u32(1).u8('N').i16(2).text_value("a").u8('x').bytes();
    CHECK(decode_error(frame) ==
          "Insert message: unknown kind 'x' (0x78) of column 1 in tuple data at offset 14 (message size 15)");
    CHECK(
        decode_error(Frame('I').u32(1).u8('N').i16(1).u8(0).bytes()).find("unknown kind 0x00 of column 0") !=
        std::string::npos);
}

TEST_CASE("tuple markers are checked: Insert needs N, Update K/O then N, Delete K or O") {
    CHECK(decode_error(Frame('I').u32(1).u8('K').i16(0).bytes()) ==
          "Insert message: expected tuple marker 'N', got 'K' (0x4b) at offset 5 (message size 8)");
    CHECK(
        decode_error(Frame('U').u32(1).u8('X').i16(0).bytes()) ==
        "Update message: expected tuple marker 'K', 'O' or 'N', got 'X' (0x58) at offset 5 (message size 8)");
    // The old tuple must be followed by the mandatory new tuple.
    CHECK(decode_error(Frame('U').u32(1).u8('K').i16(0).u8('O').i16(0).bytes()) ==
          "Update message: expected tuple marker 'N', got 'O' (0x4f) at offset 8 (message size 11)");
    CHECK(decode_error(Frame('U').u32(1).u8('O').i16(0).bytes()).find("cannot read Int8 at offset 8") !=
          std::string::npos);
    CHECK(decode_error(Frame('D').u32(1).u8('N').i16(0).bytes()) ==
          "Delete message: expected tuple marker 'K' or 'O', got 'N' (0x4e) at offset 5 (message size 8)");
}

TEST_CASE("negative counts and lengths are rejected") {
    CHECK(decode_error(Frame('I').u32(1).u8('N').i16(-1).bytes()) ==
          "Insert message: negative column count -1 at offset 6 (message size 8)");
    CHECK(decode_error(Frame('I').u32(1).u8('N').i16(1).u8('t').i32(-5).bytes()) ==
          "Insert message: negative value length -5 at offset 9 (message size 13)");
    CHECK(decode_error(
              Frame('I').u32(1).u8('N').i16(1).u8('b').i32(std::numeric_limits<std::int32_t>::min()).bytes())
              .find("negative value length -2147483648") != std::string::npos);
    CHECK(decode_error(Frame('R').u32(1).cstring("s").cstring("t").u8('d').i16(-3).bytes()) ==
          "Relation message: negative column count -3 at offset 10 (message size 12)");
    CHECK(decode_error(Frame('T').i32(-1).u8(0).bytes()) ==
          "Truncate message: negative relation count -1 at offset 1 (message size 6)");
    CHECK(decode_error(Frame('M').u8(1).u64(1).cstring("p").i32(-1).bytes()) ==
          "Logical decoding message: negative content length -1 at offset 12 (message size 16)");
}

TEST_CASE("huge counts in short messages fail on the bytes, without huge allocations") {
    CHECK(decode_error(Frame('T').i32(std::numeric_limits<std::int32_t>::max()).u8(0).u32(1).bytes())
              .find("Truncate message: cannot read Int32 at offset 10") != std::string::npos);
    CHECK(decode_error(Frame('I').u32(1).u8('N').i16(std::numeric_limits<std::int16_t>::max()).bytes())
              .find("cannot read Int8 at offset 8") != std::string::npos);
    CHECK(decode_error(
              Frame('I').u32(1).u8('N').i16(1).u8('t').i32(std::numeric_limits<std::int32_t>::max()).bytes())
              .find("cannot read Byte2147483647 at offset 13") != std::string::npos);
}

TEST_CASE("unknown replica identity and first-segment values are rejected") {
    CHECK(decode_error(Frame('R').u32(1).cstring("s").cstring("t").u8('q').i16(0).bytes()) ==
          "Relation message: unknown replica identity 'q' (0x71) at offset 9 (message size 12)");
    CHECK(decode_error(Frame('S').u32(kXid).u8(2).bytes()) ==
          "Stream Start message: first-segment flag must be 0 or 1, got 0x02 at offset 5 (message size 6)");
}

TEST_CASE("messages out of place relative to a stream block are rejected") {
    CHECK(decode_error(begin_frame(), true) ==
          "Begin message: not allowed between Stream Start and Stream Stop at offset 0 (message size 21)");
    CHECK(decode_error(commit_frame(), true).find("Commit message: not allowed between Stream Start") == 0);
    CHECK(decode_error(stream_start_frame(true), true).find("Stream Start message: not allowed between") ==
          0);
    CHECK(decode_error(stream_commit_frame(), true).find("Stream Commit message: not allowed between") == 0);
    CHECK(decode_error(stream_abort_frame(), true).find("Stream Abort message: not allowed between") == 0);
    CHECK(decode_error(stream_stop_frame(), false) ==
          "Stream Stop message: not allowed outside a Stream Start / Stream Stop block at offset 0 (message "
          "size 1)");
}

TEST_CASE("any single corrupted byte of a valid message decodes or throws DecodeError, nothing else") {
    for (const Sample& sample : valid_samples()) {
        CAPTURE(sample.name);
        for (std::size_t at = 0; at < sample.bytes.size(); ++at) {
            for (const unsigned char replacement : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
                std::string corrupted = sample.bytes;
                corrupted[at] = static_cast<char>(replacement);
                for (const bool in_stream : {false, true}) {
                    try {
                        decode_exact_copy(corrupted, in_stream);
                    } catch (const DecodeError&) {
                    } catch (const std::exception& other) {
                        CAPTURE(at);
                        FAIL_CHECK("unexpected exception: " << other.what());
                    }
                }
            }
        }
    }
}

// =====================================================================================
// Golden fixtures captured from a real PostgreSQL 15 (see the headers of the .hex files).
// The expected values below are written by hand from the SQL that produced them and from
// the lsn/xid columns the server reported next to each message; never from decoder output.
// =====================================================================================

TEST_CASE("fixture v1: message order of every transaction") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    const std::vector<Message> messages = decode_all(frames);
    CHECK(names_of(messages) ==
          "Begin Relation Insert Commit "                  // single-row insert
          "Begin Insert Insert Insert Commit "             // multi-row insert; the ROLLBACK left nothing
          "Begin Relation Insert Commit "                  // after ALTER TABLE ADD COLUMN
          "Begin Relation Insert Commit "                  // account insert
          "Begin Update Commit "                           // account update
          "Begin Delete Commit "                           // account delete
          "Begin Relation Update Commit "                  // document: unchanged TOAST
          "Begin Update Commit "                           // document: key change
          "Begin Delete Commit "                           // document delete
          "Begin Type Relation Insert Commit "             // enum type announced first
          "Begin Message Commit "                          // transactional message
          "Message "                                       // non-transactional message
          "Begin Relation Type Relation Truncate Commit "  // TRUNCATE resends schemas
          "Begin Origin Insert Commit");                   // replication origin
}

TEST_CASE("fixture v1: transactions, xids and commit LSNs") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    const std::vector<Message> messages = decode_all(frames);
    // xid and commit end LSN (the lsn the server reported on the Commit row), by hand.
    const std::vector<std::pair<std::uint32_t, std::string_view>> expected = {
        {734, "0/153E0F0"}, {735, "0/153E388"}, {738, "0/153E8F0"}, {739, "0/153EA08"}, {740, "0/153EAA0"},
        {741, "0/153EB20"}, {742, "0/153EBE8"}, {743, "0/153ECF8"}, {744, "0/153EDD8"}, {745, "0/153EEE8"},
        {746, "0/153EF58"}, {747, "0/15402F8"}, {748, "0/1540408"},
    };
    std::size_t transaction = 0;
    std::optional<Begin> open;
    for (const Message& message : messages) {
        if (const auto* begin = std::get_if<Begin>(&message)) {
            REQUIRE_FALSE(open.has_value());
            open = *begin;
        } else if (const auto* commit = std::get_if<Commit>(&message)) {
            REQUIRE(open.has_value());
            REQUIRE(transaction < expected.size());
            CAPTURE(transaction);
            CHECK(open->xid == Xid(expected[transaction].first));
            CHECK(commit->end_lsn == lsn(expected[transaction].second));
            CHECK(commit->commit_lsn == open->final_lsn);
            CHECK(commit->commit_lsn < commit->end_lsn);
            CHECK(commit->commit_time == open->commit_time);
            CHECK(commit->flags == 0);
            if (transaction + 1 < expected.size()) {
                // Commit times are the server clock on the capture day...
                CHECK(commit->commit_time.unix_micros() >= kCaptureDayUnixMicros);
                CHECK(commit->commit_time.unix_micros() < kCaptureDayUnixMicros + kUnixMicrosPerDay);
            } else {
                // ...except the replicated one, which carries the origin's commit time.
                CHECK(commit->commit_time.unix_micros() == 1'704'067'200'000'000);  // 2024-01-01T00:00:00Z
            }
            open.reset();
            ++transaction;
        }
    }
    CHECK(transaction == expected.size());
    CHECK_FALSE(open.has_value());
}

TEST_CASE("fixture v1: outbox schema and row values, including non-ASCII text, jsonb, bytea and NULL") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    REQUIRE(frames.size() == 52);

    const auto relation = decode_as<Relation>(frames[1]);
    CHECK(relation.id == RelationId(16384));
    CHECK(relation.namespace_name == "public");
    CHECK(relation.name == "outbox");
    CHECK(relation.replica_identity == ReplicaIdentity::Default);
    const std::vector<RelationColumn> outbox_columns = {
        {1, "id", 2950, -1},       {0, "aggregatetype", 25, -1}, {0, "aggregateid", 25, -1},
        {0, "type", 25, -1},       {0, "payload", 3802, -1},     {0, "created_at", 1184, -1},
        {0, "attachment", 17, -1}, {0, "trace_id", 25, -1},
    };
    CHECK(relation.columns == outbox_columns);

    const auto insert = decode_as<Insert>(frames[2]);
    CHECK(insert.relation == RelationId(16384));
    const Tuple first_row{{
        text("6f1c2b4e-8d3a-4f5b-9c7e-1a2b3c4d5e6f"),
        text("order"),
        text("Bestellung-Ünïcødé-€-日本"),
        text("OrderCreated"),
        text(R"({"items": ["äpfel", "pears"], "total": 42.5})"),  // jsonb normalises key order
        text("2024-05-01 12:34:56.789+00"),
        text(R"(\x00ff10)"),  // bytea's hex output format
        kNull,
    }};
    CHECK(insert.new_tuple == first_row);

    CHECK(decode_as<Insert>(frames[5]).new_tuple ==
          Tuple{{text("00000000-0000-0000-0000-000000000001"), text("order"), text("o-1"), text("OrderPaid"),
                 text(R"({"n": 1})"), text("2024-05-01 12:00:00+00"), kNull, text("trace-1")}});
    CHECK(decode_as<Insert>(frames[6]).new_tuple ==
          Tuple{{text("00000000-0000-0000-0000-000000000002"), text("order"), text("o-2"), text("OrderPaid"),
                 text(R"({"n": 2})"), text("2024-05-01 12:00:01+00"), text(R"(\x)"), text("trace-2")}});
    CHECK(decode_as<Insert>(frames[7]).new_tuple ==
          Tuple{{text("00000000-0000-0000-0000-000000000003"), text("order"), text("o-3"), text("OrderPaid"),
                 text(R"({"n": 3})"), text("2024-05-01 12:00:02+00"), kNull, kNull}});
}

TEST_CASE("fixture v1: ALTER TABLE mid-stream resends the Relation and the cache follows it") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    REQUIRE(frames.size() == 52);
    RelationCache cache;
    const Insert before = decode_as<Insert>(frames[2]);
    cache.update(decode_as<Relation>(frames[1]));
    CHECK_NOTHROW(cache.get(before.relation).check_tuple(before.new_tuple));

    const auto altered = decode_as<Relation>(frames[10]);
    CHECK(altered.id == RelationId(16384));
    REQUIRE(altered.columns.size() == 9);
    CHECK(altered.columns[8] == RelationColumn{0, "tenant", 25, -1});
    cache.update(altered);

    const auto after = decode_as<Insert>(frames[11]);
    const RelationInfo& schema = cache.get(after.relation);
    CHECK(schema.columns.size() == 9);
    CHECK_NOTHROW(schema.check_tuple(after.new_tuple));
    CHECK_THROWS_AS(schema.check_tuple(before.new_tuple), DecodeError);  // old shape, new schema
    REQUIRE(schema.column_index("tenant").has_value());
    CHECK(after.new_tuple.columns[*schema.column_index("tenant")] == text("acme"));
    CHECK(after.new_tuple.columns[*schema.column_index("payload")] == text(R"({"city": "Zürich"})"));
    CHECK(after.new_tuple.columns[*schema.column_index("aggregatetype")] == text("customer"));
}

TEST_CASE("fixture v1: REPLICA IDENTITY FULL updates and deletes carry the old row") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    REQUIRE(frames.size() == 52);
    const auto account = decode_as<Relation>(frames[14]);
    CHECK(account.id == RelationId(16391));
    CHECK(account.name == "account");
    CHECK(account.replica_identity == ReplicaIdentity::Full);
    CHECK(account.columns ==
          std::vector<RelationColumn>{{1, "id", 23, -1}, {1, "owner", 25, -1}, {1, "balance", 23, -1}});

    CHECK(decode_as<Insert>(frames[15]).new_tuple == Tuple{{text("1"), text("alice"), text("100")}});

    const auto update = decode_as<Update>(frames[18]);
    CHECK(update.relation == RelationId(16391));
    REQUIRE(update.old_tuple.has_value());
    CHECK(update.old_tuple->kind == OldTupleKind::Full);
    CHECK(update.old_tuple->tuple == Tuple{{text("1"), text("alice"), text("100")}});
    CHECK(update.new_tuple == Tuple{{text("1"), text("alice"), text("150")}});

    const auto del = decode_as<Delete>(frames[21]);
    CHECK(del.old_tuple.kind == OldTupleKind::Full);
    CHECK(del.old_tuple.tuple == Tuple{{text("1"), text("alice"), text("150")}});
}

TEST_CASE("fixture v1: unchanged TOAST values and key changes under the default identity") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    REQUIRE(frames.size() == 52);
    const auto document = decode_as<Relation>(frames[24]);
    CHECK(document.id == RelationId(16398));
    CHECK(document.replica_identity == ReplicaIdentity::Default);
    CHECK(document.columns ==
          std::vector<RelationColumn>{{1, "id", 23, -1}, {0, "title", 25, -1}, {0, "body", 25, -1}});

    const auto retitle = decode_as<Update>(frames[25]);
    CHECK_FALSE(retitle.old_tuple.has_value());
    CHECK(retitle.new_tuple == Tuple{{text("1"), text("final"), kUnchanged}});

    const auto rekey = decode_as<Update>(frames[28]);
    REQUIRE(rekey.old_tuple.has_value());
    CHECK(rekey.old_tuple->kind == OldTupleKind::Key);
    CHECK(rekey.old_tuple->tuple == Tuple{{text("1"), kNull, kNull}});
    CHECK(rekey.new_tuple == Tuple{{text("2"), text("final"), kUnchanged}});

    const auto del = decode_as<Delete>(frames[31]);
    CHECK(del.old_tuple.kind == OldTupleKind::Key);
    CHECK(del.old_tuple.tuple == Tuple{{text("2"), kNull, kNull}});
}

TEST_CASE("fixture v1: Type, Message, Truncate and Origin") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1.hex");
    REQUIRE(frames.size() == 52);
    const auto mood = decode_as<Type>(frames[34]);
    CHECK(mood.type_oid == 16406);
    CHECK(mood.namespace_name == "public");
    CHECK(mood.name == "mood");
    const auto feeling = decode_as<Relation>(frames[35]);
    CHECK(feeling.id == RelationId(16411));
    CHECK(feeling.columns == std::vector<RelationColumn>{{1, "id", 23, -1}, {0, "mood", 16406, -1}});
    CHECK(decode_as<Insert>(frames[36]).new_tuple == Tuple{{text("1"), text("happy")}});

    const auto hello = decode_as<LogicalMessage>(frames[39]);
    CHECK(hello.transactional());
    CHECK(hello.lsn == lsn("0/153EF28"));
    CHECK(hello.prefix == "pfx");
    CHECK(hello.content == "hello");

    const auto loose = decode_as<LogicalMessage>(frames[41]);
    CHECK_FALSE(loose.transactional());
    CHECK(loose.lsn == lsn("0/153EFA0"));
    CHECK(loose.prefix == "pfx");
    CHECK(loose.content == "non-transactional");

    const auto truncate = decode_as<Truncate>(frames[46]);
    CHECK(truncate.cascade());
    CHECK(truncate.restart_identity());
    CHECK(truncate.relations == std::vector<RelationId>{RelationId(16391), RelationId(16411)});

    const auto origin = decode_as<Origin>(frames[49]);
    CHECK(origin.lsn == lsn("0/ABCDEF"));
    CHECK(origin.name == "upstream");
    CHECK(decode_as<Insert>(frames[50]).new_tuple.columns[2] == text("o-5"));
}

TEST_CASE("fixture v1 binary: values in the types' send formats") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v1_binary.hex");
    REQUIRE(frames.size() == 4);
    CHECK(names_of(decode_all(frames)) == "Begin Relation Insert Commit");
    CHECK(decode_as<Begin>(frames[0]).xid == Xid(734));
    const auto insert = decode_as<Insert>(frames[2]);
    const Tuple expected{{
        binary(std::string_view("\x6f\x1c\x2b\x4e\x8d\x3a\x4f\x5b\x9c\x7e\x1a\x2b\x3c\x4d\x5e\x6f", 16)),
        binary("order"),
        binary("Bestellung-Ünïcødé-€-日本"),
        binary("OrderCreated"),
        binary("\x01"
               R"({"items": ["äpfel", "pears"], "total": 42.5})"),  // jsonb version 1, then text
        // 2024-05-01 12:34:56.789 UTC = 767882096789000 µs since 2000 = 0x0002BA627B9BC608.
        binary(std::string_view("\x00\x02\xba\x62\x7b\x9b\xc6\x08", 8)),
        binary(std::string_view("\x00\xff\x10", 3)),
        kNull,
    }};
    CHECK(insert.new_tuple == expected);
}

TEST_CASE("fixture v2: streamed transactions, subtransaction abort, commit and abort") {
    const std::vector<std::string> frames = load_fixture("pgoutput_v2_stream.hex");
    const std::vector<Message> messages = decode_all(frames);
    REQUIRE(messages.size() == 1406);

    // Block structure, by hand: [start, end) of each run of Inserts and the messages between.
    const auto check_inserts = [&](std::size_t from, std::size_t to, std::uint32_t xid, int first_id) {
        for (std::size_t i = from; i < to; ++i) {
            CAPTURE(i);
            const auto* insert = std::get_if<Insert>(&messages[i]);
            REQUIRE(insert != nullptr);
            CHECK(insert->stream_xid == std::optional<Xid>(Xid(xid)));
            CHECK(insert->relation == RelationId(16428));
            CHECK(insert->new_tuple == Tuple{{text(std::to_string(first_id + static_cast<int>(i - from)))}});
        }
    };
    const auto check_relation = [&](std::size_t i, std::uint32_t xid) {
        CAPTURE(i);
        const auto* relation = std::get_if<Relation>(&messages[i]);
        REQUIRE(relation != nullptr);
        CHECK(relation->stream_xid == std::optional<Xid>(Xid(xid)));
        CHECK(relation->id == RelationId(16428));
        CHECK(relation->name == "bulk");
        CHECK(relation->columns == std::vector<RelationColumn>{{1, "id", 23, -1}});
    };

    // Transaction 751: ids 1..400, then savepoint subtransaction 752 (ids 1001..) streamed and
    // rolled back, then subtransaction 753 (ids 2001..2400) sent at commit.
    CHECK(std::get<StreamStart>(messages[0]) == StreamStart{Xid(751), true});
    check_relation(1, 751);
    check_inserts(2, 402, 751, 1);
    check_inserts(402, 499, 752, 1001);
    CHECK(std::holds_alternative<StreamStop>(messages[499]));
    CHECK(std::get<StreamAbort>(messages[500]) == StreamAbort{Xid(751), Xid(752)});
    CHECK(std::get<StreamStart>(messages[501]) == StreamStart{Xid(751), false});
    check_relation(502, 753);
    check_inserts(503, 903, 753, 2001);
    CHECK(std::holds_alternative<StreamStop>(messages[903]));
    const auto& commit = std::get<StreamCommit>(messages[904]);
    CHECK(commit.xid == Xid(751));
    CHECK(commit.flags == 0);
    CHECK(commit.end_lsn == lsn("0/156A598"));  // the lsn the server reported on that row
    CHECK(commit.commit_lsn < commit.end_lsn);
    CHECK(commit.commit_time.unix_micros() >= kCaptureDayUnixMicros);
    CHECK(commit.commit_time.unix_micros() < kCaptureDayUnixMicros + kUnixMicrosPerDay);

    // Transaction 755: 600 rows, streamed once over the memory limit, then rolled back.
    CHECK(std::get<StreamStart>(messages[905]) == StreamStart{Xid(755), true});
    check_relation(906, 755);
    check_inserts(907, 1404, 755, 5001);
    CHECK(std::holds_alternative<StreamStop>(messages[1404]));
    CHECK(std::get<StreamAbort>(messages[1405]) == StreamAbort{Xid(755), Xid(755)});
}

TEST_CASE("fixtures: every truncation of every real server message throws DecodeError") {
    for (const char* name : {"pgoutput_v1.hex", "pgoutput_v1_binary.hex", "pgoutput_v2_stream.hex"}) {
        const std::vector<std::string> frames = load_fixture(name);
        bool in_stream = false;
        for (std::size_t index = 0; index < frames.size(); ++index) {
            const std::string& frame = frames[index];
            CAPTURE(name);
            CAPTURE(index);
            for (std::size_t length = 0; length < frame.size(); ++length) {
                CAPTURE(length);
                CHECK_THROWS_AS(decode_exact_copy(std::string_view(frame).substr(0, length), in_stream),
                                DecodeError);
            }
            const Message message = decode(frame, in_stream);
            if (std::holds_alternative<StreamStart>(message)) in_stream = true;
            if (std::holds_alternative<StreamStop>(message)) in_stream = false;
        }
    }
}

// =====================================================================================
// Decoder (reused buffers)
// =====================================================================================

TEST_CASE("Decoder gives what decode() gives, message after message, whatever came before") {
    // Row messages lend their tuple buffers to the next one: every order of Insert, Update
    // (with and without an old tuple) and Delete, with other messages and errors in between,
    // must still decode exactly.
    const std::vector<std::string> synthetic = {begin_frame(),
                                                insert_frame(false),
                                                update_frame(false, 'K'),
                                                update_frame(false, 0),
                                                delete_frame(false, 'O'),
                                                update_frame(false, 'O'),
                                                insert_frame(false),
                                                delete_frame(false, 'K'),
                                                insert_frame(false),
                                                commit_frame(),
                                                insert_frame(false),
                                                truncate_frame(false),
                                                update_frame(false, 'K'),
                                                relation_frame(false).bytes(),
                                                delete_frame(false, 'K'),
                                                origin_frame()};
    Decoder decoder;
    for (const std::string& frame : synthetic) {
        CAPTURE(message_name(decode(frame)));
        CHECK(decoder.decode(frame) == decode(frame));
        // A message that fails half-way does not disturb the next one.
        const std::string truncated = frame.substr(0, frame.size() - 1);
        CHECK_THROWS_AS(decoder.decode(truncated), DecodeError);
    }
    for (const char* name : {"pgoutput_v1.hex", "pgoutput_v1_binary.hex", "pgoutput_v2_stream.hex"}) {
        CAPTURE(name);
        const std::vector<std::string> frames = load_fixture(name);
        const std::vector<Message> expected = decode_all(frames);
        Decoder fixture_decoder;
        bool in_stream = false;
        for (std::size_t i = 0; i < frames.size(); ++i) {
            CAPTURE(i);
            const Message& message = fixture_decoder.decode(frames[i], in_stream);
            CHECK(message == expected[i]);
            if (std::holds_alternative<StreamStart>(message)) in_stream = true;
            if (std::holds_alternative<StreamStop>(message)) in_stream = false;
        }
    }
}

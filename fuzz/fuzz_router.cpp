// libFuzzer target: outbox::OutboxRouter on a relation schema and a row made from the bytes.
// route() must answer Routed, Rejected or NotOutbox for anything; the dead-letter records for
// a rejected row and for a refused record must build too. Findings: any exception, a sanitizer
// report, or a broken invariant (std::abort).
//
// Input (fuzz/make-seeds writes seeds in it; a read past the end gives zeros / empty strings):
//   UInt8   options: bit0 on_invalid stop; bits1-2 topic template (outbox.event.{aggregate_type}
//           | events | {table}.{aggregate_id} | by-id.{id}); bit3 header column "trace_id";
//           bit4 column roles renamed (event_id, agg_type, agg_id, body); bits5-6 the record
//           timestamp (commit time | produce time | column "ts" | column "trace_id"); bit7
//           tombstone_on_empty_payload, and the header column (bit3) sent as "trace-id"
//   String  schema, String table            (String: UInt8 length + bytes)
//   UInt8   column count, then per column: UInt8 flags, String name, UInt32 type OID
//   UInt8   value count, then per value: UInt8 kind ('n' 'u' 't' 'b'), and for 't'/'b':
//           UInt16 length + bytes
//   UInt64  commit LSN, UInt32 xid, Int64 commit time (µs since the Unix epoch)
//   UInt8   more options (older seeds end before it: zero): bit0 rows_are_valid_utf8 (the server
//           is UTF8: no second UTF-8 check); bits1-3 leave out outbox-lsn, outbox-xid,
//           outbox-commit-time (relay_headers)

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "finding.h"
#include "outbox/router.h"
#include "pgoutput/reader.h"
#include "pgoutput/relation_cache.h"

using namespace outbox;
namespace pg = outbox::pgoutput;

namespace {

// Lenient big-endian reader: past the end everything reads as zero, so every input is a case.
class Bytes {
public:
    explicit Bytes(std::string_view data) : data_(data) {}
    std::uint64_t uint(int width) {
        std::uint64_t v = 0;
        for (int i = 0; i < width; ++i)
            v = (v << 8) | (at_ < data_.size() ? static_cast<std::uint8_t>(data_[at_++]) : 0);
        return v;
    }
    std::string_view bytes(std::size_t count) {
        count = std::min(count, data_.size() - at_);
        const std::string_view out = data_.substr(at_, count);
        at_ += count;
        return out;
    }
    std::string_view string() { return bytes(uint(1)); }

private:
    std::string_view data_;
    std::size_t at_ = 0;
};

OutboxOptions options_from(std::uint8_t bits) {
    OutboxOptions options;
    options.tables = {TableName{"public", "outbox"}, TableName{"Sales", "Out.Box"}};
    options.on_invalid = (bits & 1) != 0 ? OnInvalid::Stop : OnInvalid::DeadLetter;
    using Kind = TopicSegment::Kind;
    switch ((bits >> 1) & 3) {
        case 0: break;
        case 1:
            options.topic = "events";
            options.topic_segments = {{Kind::Literal, "events"}};
            break;
        case 2:
            options.topic = "{table}.{aggregate_id}";
            options.topic_segments = {{Kind::Table, ""}, {Kind::Literal, "."}, {Kind::AggregateId, ""}};
            break;
        case 3:
            options.topic = "by-id.{id}";
            options.topic_segments = {{Kind::Literal, "by-id."}, {Kind::Id, ""}};
            break;
    }
    if ((bits & 8) != 0) options.headers = {"trace_id"};
    if ((bits & 16) != 0) options.columns = ColumnRoles{"event_id", "agg_type", "agg_id", "body"};
    switch ((bits >> 5) & 3) {
        case 0: break;
        case 1: options.timestamp = TimestampSource::Produce; break;
        case 2:
            options.timestamp = TimestampSource::Column;
            options.columns.timestamp = "ts";
            break;
        case 3:
            options.timestamp = TimestampSource::Column;
            options.columns.timestamp = "trace_id";
            break;
    }
    if ((bits & 128) != 0) {
        options.tombstone_on_empty_payload = true;
        if ((bits & 8) != 0) options.headers = {HeaderColumn{"trace_id", "trace-id"}};
    }
    return options;
}

bool known_code(std::string_view code) {
    for (std::string_view c : {"missing_column", "null_value", "empty_value", "unchanged_toast",
                               "invalid_topic", "invalid_payload", "invalid_utf8", "invalid_timestamp"}) {
        if (code == c) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Bytes in(std::string_view(reinterpret_cast<const char*>(data), size));
    OutboxOptions options = options_from(static_cast<std::uint8_t>(in.uint(1)));

    pg::RelationInfo relation;
    relation.id = RelationId(16384);
    relation.namespace_name = std::string(in.string());
    relation.name = std::string(in.string());
    const std::size_t columns = in.uint(1);
    for (std::size_t i = 0; i < columns; ++i) {
        pg::ColumnInfo column;
        column.is_key = (in.uint(1) & 1) != 0;
        column.name = std::string(in.string());
        column.type_oid = static_cast<std::uint32_t>(in.uint(4));
        relation.columns.push_back(column);
    }
    pg::Tuple tuple;
    const std::size_t values = in.uint(1);
    for (std::size_t i = 0; i < values; ++i) {
        const auto kind = static_cast<char>(in.uint(1));
        switch (kind) {
            case 'n': tuple.columns.push_back({pg::ColumnKind::Null, {}}); break;
            case 'u': tuple.columns.push_back({pg::ColumnKind::UnchangedToast, {}}); break;
            case 'b': tuple.columns.push_back({pg::ColumnKind::Binary, in.bytes(in.uint(2))}); break;
            default: tuple.columns.push_back({pg::ColumnKind::Text, in.bytes(in.uint(2))}); break;
        }
    }
    CommitInfo commit;
    commit.commit_lsn = Lsn(in.uint(8));
    commit.xid = Xid(static_cast<std::uint32_t>(in.uint(4)));
    commit.commit_time_unix_us = static_cast<std::int64_t>(in.uint(8));
    const auto more = static_cast<std::uint8_t>(in.uint(1));
    options.relay_headers = {.lsn = (more & 2) == 0, .xid = (more & 4) == 0, .commit_time = (more & 8) == 0};
    const std::size_t commit_headers = (options.relay_headers.lsn ? 1 : 0) +
                                       (options.relay_headers.xid ? 1 : 0) +
                                       (options.relay_headers.commit_time ? 1 : 0);
    OutboxRouter router(std::move(options));
    router.set_rows_are_valid_utf8((more & 1) != 0);

    // The pipeline checks a row against its schema before routing it (RelationCache's contract).
    try {
        relation.check_tuple(tuple);
    } catch (const pg::DecodeError&) {
        return 0;
    }
    (void)router.missing_columns(relation);

    Record record;
    Rejection rejection;
    Record dead_letter;
    switch (router.route(relation, tuple, commit, record, rejection)) {
        case RouteOutcome::NotOutbox: FUZZ_CHECK(!router.is_outbox_table(relation)); return 0;
        case RouteOutcome::Routed: {
            FUZZ_CHECK(router.is_outbox_table(relation));
            FUZZ_CHECK(is_valid_topic_name(record.topic));
            FUZZ_CHECK(record.key && !record.key->empty());
            FUZZ_CHECK(!record.headers.empty() && record.headers.front().name == "id");
            for (const auto& h : record.headers) FUZZ_CHECK(!h.value || h.value->size() <= size);
            // id, the header columns, then the commit headers relay_headers asks for.
            FUZZ_CHECK(record.headers.size() == 1 + router.config().headers.size() + commit_headers);
            (void)record.size_bytes();
            // Kafka refused it for good: the dead-letter copy keeps key and headers, drops the payload.
            router.dead_letter_for_record(record, Rejection{"too_large", "fuzz"}, dead_letter);
            FUZZ_CHECK(dead_letter.topic == router.config().dead_letter_topic);
            FUZZ_CHECK(!dead_letter.value);
            FUZZ_CHECK(dead_letter.key == record.key);
            break;
        }
        case RouteOutcome::Rejected:
            FUZZ_CHECK(known_code(rejection.code));
            FUZZ_CHECK(!rejection.detail.empty());
            router.dead_letter_for_row(relation, tuple, commit, rejection, record, dead_letter);
            FUZZ_CHECK(dead_letter.topic == router.config().dead_letter_topic);
            // Topic, headers and the log carry the detail: it names the column, never garbage.
            break;
    }
    (void)dead_letter.size_bytes();
    return 0;
}

#include "outbox/router.h"

#include <charconv>
#include <cstdio>

#include "common/json.h"

namespace outbox {
namespace {

constexpr std::uint32_t kByteaOid = 17;

struct ColumnRef {
    const pgoutput::ColumnValue* value = nullptr;
    std::uint32_t type_oid = 0;
};

// Finds the column named `name`; nullptr value when the relation has no such column.
ColumnRef find_column(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                      std::string_view name) {
    const auto index = relation.column_index(name);
    if (!index || *index >= tuple.columns.size()) return {};
    return {&tuple.columns[*index], relation.columns[*index].type_oid};
}

// A text value must be UTF-8: the relay connects with client_encoding UTF8, so only a SQL_ASCII
// database (which stores bytes unchecked and is not converted) can send anything else. bytea is
// bytes, not text.
// `check_utf8` false: the server guarantees it (OutboxRouter::set_rows_are_valid_utf8).
bool is_valid_text(const ColumnRef& ref, bool check_utf8) noexcept {
    return !check_utf8 || ref.value->kind != pgoutput::ColumnKind::Text || ref.type_oid == kByteaOid ||
           is_valid_utf8(ref.value->bytes);
}

std::string not_utf8_detail(std::string_view role, std::string_view column) {
    return std::string(role) + " column \"" + std::string(column) +
           "\" is not valid UTF-8 (a SQL_ASCII database stores bytes unchecked)";
}

// Reads a column used for routing; a rejection when it is missing, NULL, unsent or empty.
std::optional<std::string_view> routing_value(const pgoutput::RelationInfo& relation,
                                              const pgoutput::Tuple& tuple, std::string_view role,
                                              std::string_view column, bool check_utf8,
                                              Rejection& rejection) {
    const ColumnRef ref = find_column(relation, tuple, column);
    if (ref.value == nullptr) {
        rejection = {"missing_column", "column \"" + std::string(column) + "\" (" + std::string(role) +
                                           ") is not in table " + relation.namespace_name + "." +
                                           relation.name};
        return std::nullopt;
    }
    switch (ref.value->kind) {
        case pgoutput::ColumnKind::Null:
            rejection = {"null_value", std::string(role) + " column \"" + std::string(column) + "\" is NULL"};
            return std::nullopt;
        case pgoutput::ColumnKind::UnchangedToast:
            rejection = {"unchanged_toast", std::string(role) + " column \"" + std::string(column) +
                                                "\" was not sent (unchanged TOAST value)"};
            return std::nullopt;
        case pgoutput::ColumnKind::Text:
        case pgoutput::ColumnKind::Binary: break;
    }
    if (ref.value->bytes.empty()) {
        rejection = {"empty_value", std::string(role) + " column \"" + std::string(column) + "\" is empty"};
        return std::nullopt;
    }
    if (!is_valid_text(ref, check_utf8)) {
        rejection = {"invalid_utf8", not_utf8_detail(role, column)};
        return std::nullopt;
    }
    return ref.value->bytes;
}

void append_u64(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, res.ptr);
}

// Lsn::to_string()'s "X/X" (upper-case hex) into `out`'s own buffer: no temporary string.
void assign_lsn_text(Lsn lsn, std::string& out) {
    char buf[24];
    char* end = std::to_chars(buf, buf + sizeof buf, lsn.value() >> 32, 16).ptr;
    *end++ = '/';
    end = std::to_chars(end, buf + sizeof buf, lsn.value() & 0xFFFFFFFFu, 16).ptr;
    for (char* c = buf; c != end; ++c) {
        if (*c >= 'a' && *c <= 'f') *c = static_cast<char>(*c - 'a' + 'A');
    }
    out.assign(buf, end);
}

// The commit headers `which` asks for, formatted into `record`'s own buffers.
void add_commit_headers(const CommitInfo& commit, const CommitHeaders& which, Record& record) {
    // The same for every event of a transaction: format once per transaction, not per event.
    // (One router, one `which`: a record's texts always hold the same subset.)
    if (record.texts_for != commit) {
        record.texts_for = commit;
        if (which.lsn) assign_lsn_text(commit.commit_lsn, record.lsn_text);
        if (which.xid) {
            record.xid_text.clear();
            append_u64(record.xid_text, commit.xid.value());
        }
        if (which.commit_time) format_utc_micros(commit.commit_time_unix_us, record.time_text);
    }
    if (which.lsn) record.headers.push_back({"outbox-lsn", std::string_view(record.lsn_text)});
    if (which.xid) record.headers.push_back({"outbox-xid", std::string_view(record.xid_text)});
    if (which.commit_time)
        record.headers.push_back({"outbox-commit-time", std::string_view(record.time_text)});
}

void reset(Record& record) {
    record.topic.clear();
    record.key.reset();
    record.value.reset();
    record.headers.clear();
    record.timestamp_ms = 0;
    record.topic_complete = false;
    record.value_storage.clear();
    record.original_topic.clear();
}

// Days from 1970-01-01 to year-month-day (proleptic Gregorian; Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

// Reads `width` digits at `pos`; false when they are not all digits.
bool read_digits(std::string_view text, std::size_t& pos, std::size_t width, std::int64_t& out) {
    if (pos + width > text.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < width; ++i) {
        const char c = text[pos + i];
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    pos += width;
    return true;
}

bool is_blank(std::string_view text) noexcept {
    return text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

// Milliseconds from microseconds, rounded down also before 1970, for every int64 (no overflow).
std::int64_t floor_millis(std::int64_t micros) noexcept {
    const std::int64_t ms = micros / 1000;
    return micros % 1000 < 0 ? ms - 1 : ms;
}

}  // namespace

bool parse_timestamp_ms(std::string_view text, std::int64_t& out) {
    // bigint: milliseconds since the Unix epoch.
    if (!text.empty() && (text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) &&
        text.find_first_not_of("0123456789", 1) == std::string_view::npos) {
        const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
        return r.ec == std::errc() && r.ptr == text.data() + text.size();
    }
    // ISO (DateStyle ISO): YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]], 'T' accepted too.
    std::size_t pos = 0;
    std::int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits(text, pos, 4, year) || pos >= text.size() || text[pos++] != '-' ||
        !read_digits(text, pos, 2, month) || pos >= text.size() || text[pos++] != '-' ||
        !read_digits(text, pos, 2, day) || pos >= text.size() || (text[pos] != ' ' && text[pos] != 'T') ||
        !read_digits(text, ++pos, 2, hour) || pos >= text.size() || text[pos++] != ':' ||
        !read_digits(text, pos, 2, minute) || pos >= text.size() || text[pos++] != ':' ||
        !read_digits(text, pos, 2, second)) {
        return false;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 60)
        return false;
    std::int64_t micros = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            if (digits < 6) micros = micros * 10 + (text[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0) return false;
        for (; digits < 6; ++digits) micros *= 10;
    }
    std::int64_t offset_seconds = 0;
    if (pos + 1 == text.size() && text[pos] == 'Z') {
        ++pos;  // RFC 3339's UTC designator
    } else if (pos < text.size()) {
        const char sign = text[pos++];
        if (sign != '+' && sign != '-') return false;
        std::int64_t oh = 0, om = 0, os = 0;
        if (!read_digits(text, pos, 2, oh)) return false;
        if (pos < text.size() && text[pos] == ':') {
            if (!read_digits(text, ++pos, 2, om)) return false;
            if (pos < text.size() && text[pos] == ':' && !read_digits(text, ++pos, 2, os)) return false;
        }
        offset_seconds = (oh * 3600 + om * 60 + os) * (sign == '+' ? 1 : -1);
    }
    if (pos != text.size()) return false;  // "BC", "infinity" and anything else
    const std::int64_t seconds =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
    out = seconds * 1000 + micros / 1000;
    return true;
}

OutboxRouter::OutboxRouter(OutboxOptions config) : config_(std::move(config)) {}

bool OutboxRouter::is_outbox_table(const pgoutput::RelationInfo& relation) const {
    for (const auto& t : config_.tables) {
        if (t.schema == relation.namespace_name && t.name == relation.name) return true;
    }
    return false;
}

std::vector<std::string> OutboxRouter::missing_columns(const pgoutput::RelationInfo& relation) const {
    std::vector<std::string> missing;
    const auto check = [&](const std::string& column, std::string_view role) {
        if (!relation.column_index(column))
            missing.push_back("\"" + column + "\" (" + std::string(role) + ")");
    };
    const auto& roles = config_.columns;
    check(roles.id, "id");
    check(roles.aggregate_type, "aggregate_type");
    check(roles.aggregate_id, "aggregate_id");
    check(roles.payload, "payload");
    if (config_.timestamp == TimestampSource::Column) check(roles.timestamp, "timestamp");
    for (const auto& header : config_.headers) check(header.column, "header");
    return missing;
}

RouteOutcome OutboxRouter::route(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                                 const CommitInfo& commit, Record& record, Rejection& rejection) const {
    if (!is_outbox_table(relation)) return RouteOutcome::NotOutbox;
    return route_tuple(relation, tuple, commit, !rows_are_valid_utf8_, record, rejection);
}

RouteOutcome OutboxRouter::route_values(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                                        const CommitInfo& commit, Record& record,
                                        Rejection& rejection) const {
    return route_tuple(relation, tuple, commit, true, record, rejection);
}

RouteOutcome OutboxRouter::route_tuple(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                                       const CommitInfo& commit, bool check_utf8, Record& record,
                                       Rejection& rejection) const {
    reset(record);
    const auto& roles = config_.columns;

    // Topic from the template; every substituted value must be present and legal.
    for (const auto& seg : config_.topic_segments) {
        using Kind = TopicSegment::Kind;
        std::optional<std::string_view> part;
        switch (seg.kind) {
            case Kind::Literal: part = seg.text; break;
            case Kind::AggregateType:
                part = routing_value(relation, tuple, "aggregate_type", roles.aggregate_type, check_utf8,
                                     rejection);
                break;
            case Kind::AggregateId:
                part =
                    routing_value(relation, tuple, "aggregate_id", roles.aggregate_id, check_utf8, rejection);
                break;
            case Kind::Id:
                part = routing_value(relation, tuple, "id", roles.id, check_utf8, rejection);
                break;
            case Kind::Table:
                record.topic += relation.namespace_name;
                record.topic += '.';
                part = relation.name;
                break;
        }
        if (!part) return RouteOutcome::Rejected;
        record.topic += *part;
    }
    // Most events go to the topic of the event before: a comparison instead of a character scan.
    if (record.topic.empty() || record.topic != record.valid_topic) {
        if (!is_valid_topic_name(record.topic)) {
            rejection = {"invalid_topic",
                         "topic name \"" + record.topic +
                             "\" is not a valid Kafka topic (1-249 characters of a-z A-Z 0-9 . _ -)"};
            return RouteOutcome::Rejected;
        }
        record.valid_topic = record.topic;
    }
    record.topic_complete = true;

    record.key = routing_value(relation, tuple, "aggregate_id", roles.aggregate_id, check_utf8, rejection);
    if (!record.key) return RouteOutcome::Rejected;
    const auto id = routing_value(relation, tuple, "id", roles.id, check_utf8, rejection);
    if (!id) return RouteOutcome::Rejected;

    const ColumnRef payload = find_column(relation, tuple, roles.payload);
    if (payload.value == nullptr) {
        rejection = {"missing_column", "column \"" + roles.payload + "\" (payload) is not in table " +
                                           relation.namespace_name + "." + relation.name};
        return RouteOutcome::Rejected;
    }
    switch (payload.value->kind) {
        case pgoutput::ColumnKind::Null: break;  // tombstone
        case pgoutput::ColumnKind::UnchangedToast:
            rejection = {"unchanged_toast", "payload column \"" + roles.payload + "\" was not sent"};
            return RouteOutcome::Rejected;
        case pgoutput::ColumnKind::Binary: record.value = payload.value->bytes; break;
        case pgoutput::ColumnKind::Text:
            if (payload.type_oid == kByteaOid) {
                if (!decode_bytea_hex(payload.value->bytes, record.value_storage)) {
                    rejection = {"invalid_payload", "bytea payload is not in hex output format"};
                    return RouteOutcome::Rejected;
                }
                record.value = std::string_view(record.value_storage);
            } else {
                if (check_utf8 && !is_valid_utf8(payload.value->bytes)) {
                    rejection = {"invalid_utf8", not_utf8_detail("payload", roles.payload)};
                    return RouteOutcome::Rejected;
                }
                record.value = payload.value->bytes;
            }
            break;
    }
    // Debezium's route.tombstone.on.empty.payload: a blank payload is a tombstone too.
    if (config_.tombstone_on_empty_payload && record.value && is_blank(*record.value)) record.value.reset();

    record.headers.push_back({"id", *id});
    for (const auto& header : config_.headers) {
        const std::string& name = header.column;
        const ColumnRef h = find_column(relation, tuple, name);
        if (h.value == nullptr) {
            rejection = {"missing_column", "header column \"" + name + "\" is not in table " +
                                               relation.namespace_name + "." + relation.name};
            return RouteOutcome::Rejected;
        }
        if (h.value->kind == pgoutput::ColumnKind::UnchangedToast) {
            rejection = {"unchanged_toast", "header column \"" + name + "\" was not sent"};
            return RouteOutcome::Rejected;
        }
        std::optional<std::string_view> v;
        if (h.value->kind != pgoutput::ColumnKind::Null) {
            if (!is_valid_text(h, check_utf8)) {
                rejection = {"invalid_utf8", not_utf8_detail("header", name)};
                return RouteOutcome::Rejected;
            }
            v = h.value->bytes;
        }
        record.headers.push_back({header.name, v});
    }
    if (!set_timestamp(relation, tuple, commit, record, rejection)) return RouteOutcome::Rejected;
    add_commit_headers(commit, config_.relay_headers, record);
    return RouteOutcome::Routed;
}

bool OutboxRouter::set_timestamp(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                                 const CommitInfo& commit, Record& record, Rejection& rejection) const {
    const std::int64_t commit_ms = floor_millis(commit.commit_time_unix_us);
    switch (config_.timestamp) {
        case TimestampSource::Commit: record.timestamp_ms = commit_ms; return true;
        case TimestampSource::Produce: record.timestamp_ms = 0; return true;
        case TimestampSource::Column: break;
    }
    const std::string& column = config_.columns.timestamp;
    const ColumnRef ref = find_column(relation, tuple, column);
    if (ref.value == nullptr) {
        rejection = {"missing_column", "timestamp column \"" + column + "\" is not in table " +
                                           relation.namespace_name + "." + relation.name};
        return false;
    }
    if (ref.value->kind == pgoutput::ColumnKind::Null) {
        record.timestamp_ms = commit_ms;  // as Debezium: no value, the default time
        return true;
    }
    std::int64_t ms = 0;
    if (ref.value->kind != pgoutput::ColumnKind::Text || !parse_timestamp_ms(ref.value->bytes, ms) ||
        ms <= 0) {
        rejection = {"invalid_timestamp",
                     "timestamp column \"" + column + "\" holds \"" +
                         std::string(ref.value->bytes.substr(0, 64)) +
                         "\", not a timestamp after 1970 in ISO form or milliseconds since 1970"};
        return false;
    }
    record.timestamp_ms = ms;
    return true;
}

void OutboxRouter::dead_letter_for_row(const pgoutput::RelationInfo& relation, const pgoutput::Tuple& tuple,
                                       const CommitInfo& commit, const Rejection& rejection,
                                       const Record& attempted, Record& out) const {
    reset(out);
    out.topic = config_.dead_letter_topic;
    const auto& roles = config_.columns;
    auto text_of = [&](std::string_view column) -> std::optional<std::string_view> {
        const ColumnRef ref = find_column(relation, tuple, column);
        if (ref.value == nullptr || (ref.value->kind != pgoutput::ColumnKind::Text &&
                                     ref.value->kind != pgoutput::ColumnKind::Binary)) {
            return std::nullopt;
        }
        return ref.value->bytes;
    };
    out.key = text_of(roles.aggregate_id);
    out.value = text_of(roles.payload);  // as the server printed it: the raw row for inspection
    if (const auto id = text_of(roles.id)) out.headers.push_back({"id", *id});
    out.error_text = rejection.detail;
    out.headers.push_back({"outbox-error", std::string_view(out.error_text)});
    out.headers.push_back({"outbox-error-code", rejection.code});
    out.original_topic = relation.namespace_name + "." + relation.name;
    out.headers.push_back({"outbox-table", std::string_view(out.original_topic)});
    if (attempted.topic_complete) {
        // Reuse value_storage for the original topic: a rejected row's payload is not decoded.
        out.value_storage = attempted.topic;
        out.headers.push_back({"outbox-original-topic", std::string_view(out.value_storage)});
    }
    for (const auto& header : config_.headers) {
        if (const auto v = text_of(header.column)) out.headers.push_back({header.name, *v});
    }
    out.timestamp_ms = floor_millis(commit.commit_time_unix_us);
    add_commit_headers(commit, config_.relay_headers, out);
}

void OutboxRouter::dead_letter_for_record(const Record& original, const Rejection& rejection,
                                          Record& out) const {
    reset(out);
    out.topic = config_.dead_letter_topic;
    out.key = original.key;
    out.value.reset();  // the payload is what Kafka refused
    out.error_text = rejection.detail;
    out.original_topic = original.topic;
    out.size_text.clear();
    append_u64(out.size_text, original.value ? original.value->size() : 0);
    out.headers = original.headers;  // views into the original's frame and storage
    out.timestamp_ms = original.timestamp_ms;
    out.headers.push_back({"outbox-error", std::string_view(out.error_text)});
    out.headers.push_back({"outbox-error-code", rejection.code});
    out.headers.push_back({"outbox-original-topic", std::string_view(out.original_topic)});
    out.headers.push_back({"outbox-payload-bytes", std::string_view(out.size_text)});
}

bool is_valid_topic_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool decode_bytea_hex(std::string_view text, std::string& out) {
    out.clear();
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    out.reserve((text.size() - 2) / 2);
    for (std::size_t i = 2; i < text.size(); i += 2) {
        const int hi = nibble(text[i]);
        const int lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>((hi << 4) | lo));
    }
    return true;
}

void format_utc_micros(std::int64_t unix_us, std::string& out) {
    // Civil-from-days (Howard Hinnant's algorithm): pure arithmetic, no time zone database.
    std::int64_t secs = unix_us / 1'000'000;
    std::int64_t micros = unix_us % 1'000'000;
    if (micros < 0) {
        micros += 1'000'000;
        --secs;
    }
    std::int64_t days = secs / 86400;
    std::int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        --days;
    }
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const std::int64_t doe = days - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t year = yoe + era * 400;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    if (month <= 2) ++year;
    if (year < 0 || year > 9999) {
        // PostgreSQL allows 4713 BC to 294276 AD; outside 4-digit years take the slow path.
        char buf[48];
        const int n = std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ",
                                    static_cast<long long>(year), static_cast<long long>(month),
                                    static_cast<long long>(day), static_cast<long long>(rem / 3600),
                                    static_cast<long long>((rem / 60) % 60), static_cast<long long>(rem % 60),
                                    static_cast<long long>(micros));
        out.assign(buf, static_cast<std::size_t>(n));
        return;
    }
    // Once per transaction: digits by hand, snprintf cost ~4k instructions (a quarter of the
    // relay thread's work for 1-row transactions).
    char buf[] = "0000-00-00T00:00:00.000000Z";
    const auto put = [&buf](std::size_t at, std::int64_t value, std::size_t width) {
        for (std::size_t i = width; i-- > 0;) {
            buf[at + i] = static_cast<char>('0' + value % 10);
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, rem / 3600, 2);
    put(14, (rem / 60) % 60, 2);
    put(17, rem % 60, 2);
    put(20, micros, 6);
    out.assign(buf, sizeof buf - 1);
}

}  // namespace outbox

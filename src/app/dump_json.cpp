#include "app/dump_json.h"

#include <fmt/format.h>

#include <type_traits>

#include "common/json.h"
#include "pgoutput/decoder.h"

namespace outbox::app {
namespace {

using namespace pgoutput;

void key(std::string& out, std::string_view name) {
    if (out.back() != '{') out.push_back(',');
    append_json_string(out, name);
    out.push_back(':');
}

void field(std::string& out, std::string_view name, std::string_view value) {
    key(out, name);
    append_json_string(out, value);
}

void field(std::string& out, std::string_view name, std::int64_t value) {
    key(out, name);
    out += std::to_string(value);
}

void field(std::string& out, std::string_view name, Lsn value) {
    field(out, name, value.to_string());
}

void field_bool(std::string& out, std::string_view name, bool value) {
    key(out, name);
    out += value ? "true" : "false";
}

void bytes_value(std::string& out, std::string_view bytes) {
    if (is_valid_utf8(bytes)) {
        append_json_string(out, bytes);
    } else {
        out += "{\"hex\":\"";
        append_hex(out, bytes);
        out += "\"}";
    }
}

void tuple(std::string& out, std::string_view name, const Tuple& t, const RelationInfo& rel) {
    key(out, name);
    out.push_back('{');
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        const std::string column = i < rel.columns.size() ? rel.columns[i].name : fmt::format("#{}", i);
        key(out, column);
        const ColumnValue& v = t.columns[i];
        switch (v.kind) {
            case ColumnKind::Null: out += "null"; break;
            case ColumnKind::UnchangedToast: out += "{\"unchanged_toast\":true}"; break;
            case ColumnKind::Text: bytes_value(out, v.bytes); break;
            case ColumnKind::Binary:
                out += "{\"hex\":\"";
                append_hex(out, v.bytes);
                out += "\"}";
                break;
        }
    }
    out.push_back('}');
}

void stream_xid(std::string& out, const std::optional<Xid>& xid) {
    if (xid) field(out, "stream_xid", static_cast<std::int64_t>(xid->value()));
}

void relation_ref(std::string& out, RelationId id, const RelationCache& relations) {
    field(out, "relation_id", static_cast<std::int64_t>(id.value()));
    field(out, "relation", relations.get(id).qualified_name());
}

}  // namespace

std::string message_to_json(const Message& message, const RelationCache& relations, const XLogData& frame) {
    std::string out = "{";
    field(out, "type", message_name(message));
    field(out, "lsn", frame.wal_start);
    std::visit(
        [&](const auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, Begin>) {
                field(out, "xid", static_cast<std::int64_t>(m.xid.value()));
                field(out, "final_lsn", m.final_lsn);
                field(out, "commit_time_us", m.commit_time.unix_micros());
            } else if constexpr (std::is_same_v<T, Commit> || std::is_same_v<T, StreamCommit>) {
                if constexpr (std::is_same_v<T, StreamCommit>)
                    field(out, "xid", static_cast<std::int64_t>(m.xid.value()));
                field(out, "commit_lsn", m.commit_lsn);
                field(out, "end_lsn", m.end_lsn);
                field(out, "commit_time_us", m.commit_time.unix_micros());
            } else if constexpr (std::is_same_v<T, Origin>) {
                field(out, "origin_lsn", m.lsn);
                field(out, "name", m.name);
            } else if constexpr (std::is_same_v<T, Relation>) {
                stream_xid(out, m.stream_xid);
                field(out, "relation_id", static_cast<std::int64_t>(m.id.value()));
                field(out, "namespace", m.namespace_name);
                field(out, "name", m.name);
                field(out, "replica_identity", std::string(1, static_cast<char>(m.replica_identity)));
                key(out, "columns");
                out.push_back('[');
                for (std::size_t i = 0; i < m.columns.size(); ++i) {
                    if (i > 0) out.push_back(',');
                    out.push_back('{');
                    field(out, "name", m.columns[i].name);
                    field(out, "type_oid", static_cast<std::int64_t>(m.columns[i].type_oid));
                    field(out, "type_modifier", m.columns[i].type_modifier);
                    field_bool(out, "key", m.columns[i].is_key());
                    out.push_back('}');
                }
                out.push_back(']');
            } else if constexpr (std::is_same_v<T, Type>) {
                stream_xid(out, m.stream_xid);
                field(out, "type_oid", static_cast<std::int64_t>(m.type_oid));
                field(out, "namespace", m.namespace_name);
                field(out, "name", m.name);
            } else if constexpr (std::is_same_v<T, Insert>) {
                stream_xid(out, m.stream_xid);
                relation_ref(out, m.relation, relations);
                tuple(out, "new", m.new_tuple, relations.get(m.relation));
            } else if constexpr (std::is_same_v<T, Update>) {
                stream_xid(out, m.stream_xid);
                relation_ref(out, m.relation, relations);
                if (m.old_tuple) tuple(out, "old", m.old_tuple->tuple, relations.get(m.relation));
                tuple(out, "new", m.new_tuple, relations.get(m.relation));
            } else if constexpr (std::is_same_v<T, Delete>) {
                stream_xid(out, m.stream_xid);
                relation_ref(out, m.relation, relations);
                tuple(out, "old", m.old_tuple.tuple, relations.get(m.relation));
            } else if constexpr (std::is_same_v<T, Truncate>) {
                stream_xid(out, m.stream_xid);
                key(out, "relation_ids");
                out.push_back('[');
                for (std::size_t i = 0; i < m.relations.size(); ++i) {
                    if (i > 0) out.push_back(',');
                    out += std::to_string(m.relations[i].value());
                }
                out.push_back(']');
            } else if constexpr (std::is_same_v<T, LogicalMessage>) {
                stream_xid(out, m.stream_xid);
                field_bool(out, "transactional", m.transactional());
                field(out, "message_lsn", m.lsn);
                field(out, "prefix", m.prefix);
                key(out, "content");
                bytes_value(out, m.content);
            } else if constexpr (std::is_same_v<T, StreamStart>) {
                field(out, "xid", static_cast<std::int64_t>(m.xid.value()));
                field_bool(out, "first_segment", m.first_segment);
            } else if constexpr (std::is_same_v<T, StreamAbort>) {
                field(out, "xid", static_cast<std::int64_t>(m.xid.value()));
                field(out, "subxid", static_cast<std::int64_t>(m.subxid.value()));
            }
        },
        message);
    out.push_back('}');
    return out;
}

std::string keepalive_to_json(const PrimaryKeepalive& keepalive) {
    std::string out = "{";
    field(out, "type", "Keepalive");
    field(out, "wal_end", keepalive.wal_end);
    field_bool(out, "reply_requested", keepalive.reply_requested);
    out.push_back('}');
    return out;
}

}  // namespace outbox::app

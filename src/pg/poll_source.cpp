#include "pg/poll_source.h"

#include <fmt/format.h>

#include <algorithm>

namespace outbox::pg {
namespace {

// The column's type and NOT NULL, if the table has it.
struct ColumnFacts {
    std::string type;
    bool not_null = false;
};

std::optional<ColumnFacts> column_facts(Connection& conn, const TableName& table, const std::string& column) {
    const auto rows = conn.query(
        "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull::text FROM pg_attribute a JOIN pg_class c "
        "ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND "
        "c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped",
        {table.schema, table.name, column});
    if (rows.empty()) return std::nullopt;
    return ColumnFacts{rows[0][0].value_or(""), rows[0][1] == "true"};
}

std::string table_oid(Connection& conn, const TableName& table) {
    const auto oid = conn.query_value(
        "SELECT c.oid::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
        "$1 AND c.relname = $2",
        {table.schema, table.name});
    if (!oid)
        throw Error(ErrorKind::Config, fmt::format("outbox table {} does not exist", table.qualified()));
    return *oid;
}

bool is_true(const std::optional<std::string>& value) {
    return value == "true";
}

// The two keys of the poller's advisory lock as pg_try_advisory_lock(int, int) takes them.
std::string lock_key2(std::uint32_t table_oid) {
    return std::to_string(static_cast<std::int32_t>(table_oid));
}

}  // namespace

void require_poll_columns(Connection& conn, const PollOptions& options) {
    const TableName& t = options.table;
    if (const auto id = column_facts(conn, t, options.id_column); id && !id->not_null) {
        throw Error(
            ErrorKind::Config,
            fmt::format("outbox table {}: the id column \"{}\" may be NULL, but the poller deletes or "
                        "marks published rows by id (a row without one would be published again and "
                        "again); fix: ALTER TABLE {} ALTER COLUMN {} SET NOT NULL (or make it the "
                        "primary key)",
                        t.qualified(), options.id_column, t.quoted(), quote_identifier(options.id_column)));
    }
    if (options.published_column.empty()) return;
    const auto published = column_facts(conn, t, options.published_column);
    if (!published) return;  // require_columns() says so
    if (published->type != "timestamp with time zone" && published->type != "timestamp without time zone") {
        throw Error(ErrorKind::Config,
                    fmt::format("outbox table {}: poll.published_column \"{}\" is {}, not a timestamp; the "
                                "poller sets it to now() when a row is published (ALTER TABLE {} ADD COLUMN "
                                "{} timestamptz)",
                                t.qualified(), options.published_column, published->type, t.quoted(),
                                quote_identifier(options.published_column)));
    }
    if (published->not_null) {
        throw Error(ErrorKind::Config,
                    fmt::format("outbox table {}: poll.published_column \"{}\" is NOT NULL, but NULL is what "
                                "marks a row as not yet published (every row would count as published); "
                                "fix: ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL, DROP DEFAULT",
                                t.qualified(), options.published_column, t.quoted(),
                                quote_identifier(options.published_column)));
    }
}

void require_poll_privileges(Connection& conn, const PollOptions& options) {
    const TableName& t = options.table;
    const std::string oid = table_oid(conn, t);
    const std::string role = conn.query_value("SELECT current_user").value_or("?");
    const std::string grantee = quote_identifier(role);
    std::vector<std::string> columns;
    for (const auto& [column, key] : options.columns) columns.push_back(column);
    columns.push_back(options.order_by);
    if (!options.published_column.empty()) columns.push_back(options.published_column);
    std::string not_readable;
    for (const auto& column : columns) {
        if (is_true(
                conn.query_value("SELECT has_column_privilege($1::oid, $2, 'SELECT')::text", {oid, column})))
            continue;
        if (not_readable.find(quote_identifier(column)) != std::string::npos) continue;
        not_readable += (not_readable.empty() ? "" : ", ") + quote_identifier(column);
    }
    if (!not_readable.empty()) {
        throw Error(ErrorKind::Config,
                    fmt::format("role {} may not read column(s) {} of outbox table {}; fix: "
                                "GRANT SELECT ON {} TO {};",
                                role, not_readable, t.qualified(), t.quoted(), grantee));
    }
    if (!options.published_column.empty()) {
        if (!is_true(conn.query_value("SELECT has_column_privilege($1::oid, $2, 'UPDATE')::text",
                                      {oid, options.published_column}))) {
            throw Error(
                ErrorKind::Config,
                fmt::format("role {} may not update column \"{}\" of outbox table {} (poll.after_publish: "
                            "mark sets it, and locking rows FOR UPDATE needs it); fix: GRANT UPDATE ({}) "
                            "ON {} TO {};",
                            role, options.published_column, t.qualified(),
                            quote_identifier(options.published_column), t.quoted(), grantee));
        }
        return;
    }
    if (!is_true(conn.query_value("SELECT has_table_privilege($1::oid, 'DELETE')::text", {oid}))) {
        throw Error(ErrorKind::Config,
                    fmt::format("role {} may not delete from outbox table {} (poll.after_publish: delete); "
                                "fix: GRANT DELETE ON {} TO {};",
                                role, t.qualified(), t.quoted(), grantee));
    }
    if (!is_true(conn.query_value("SELECT has_any_column_privilege($1::oid, 'UPDATE')::text", {oid}))) {
        throw Error(
            ErrorKind::Config,
            fmt::format("role {} may not lock rows of outbox table {}: SELECT ... FOR UPDATE needs the "
                        "UPDATE privilege on some column; fix: GRANT UPDATE ({}) ON {} TO {}; (the "
                        "poller never updates it in delete mode)",
                        role, t.qualified(), quote_identifier(options.id_column), t.quoted(), grantee));
    }
}

PollTable inspect_poll_table(Connection& conn, const PollOptions& options) {
    const TableName& t = options.table;
    PollTable table;
    table.oid = static_cast<std::uint32_t>(std::stoul(table_oid(conn, t)));
    const auto id = column_facts(conn, t, options.id_column);
    if (!id)
        throw Error(ErrorKind::Config, fmt::format("outbox table {} has no column \"{}\" (outbox.columns.id)",
                                                   t.qualified(), options.id_column));
    table.id_type = id->type;
    table.commit_timestamps = conn.query_value("SHOW track_commit_timestamp") == "on";
    const auto leading_index = [&](const std::string& column) {
        return is_true(conn.query_value(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
            "a.attnum = i.indkey[0] WHERE i.indrelid = $1::oid AND a.attname = $2)::text",
            {std::to_string(table.oid), column}));
    };
    if (const auto order = column_facts(conn, t, options.order_by); order && order->type == "uuid") {
        table.warnings.push_back(fmt::format(
            "outbox table {}: poll.order_by \"{}\" is a uuid: rows are published in its order, which is the "
            "insert order only for time-ordered UUIDs (v7); with random ones (gen_random_uuid()) events of "
            "one "
            "key come out in random order; fix: ALTER TABLE {} ADD COLUMN seq bigserial, and poll.order_by: "
            "seq",
            t.qualified(), options.order_by, t.quoted()));
    }
    if (!leading_index(options.order_by)) {
        table.warnings.push_back(fmt::format(
            "outbox table {} has no index that starts with poll.order_by \"{}\": every poll sorts the whole "
            "table; CREATE INDEX ON {} ({}){}",
            t.qualified(), options.order_by, t.quoted(), quote_identifier(options.order_by),
            options.published_column.empty()
                ? ""
                : fmt::format(" WHERE {} IS NULL", quote_identifier(options.published_column))));
    }
    if (!leading_index(options.id_column)) {
        table.warnings.push_back(fmt::format(
            "outbox table {} has no index that starts with its id column \"{}\": every batch's {} scans the "
            "whole table; add a primary key or CREATE INDEX ON {} ({})",
            t.qualified(), options.id_column, options.published_column.empty() ? "DELETE" : "UPDATE",
            t.quoted(), quote_identifier(options.id_column)));
    }
    return table;
}

bool try_poll_lock(Connection& conn, std::uint32_t table_oid) {
    return is_true(conn.query_value("SELECT pg_try_advisory_lock($1::int, $2::int)::text",
                                    {std::to_string(kPollLockClass), lock_key2(table_oid)}));
}

std::optional<std::string> poll_lock_holder(Connection& conn, std::uint32_t table_oid) {
    return conn.query_value(
        "SELECT pid::text FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM "
        "pg_database "
        "WHERE datname = current_database()) AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND "
        "objsubid = 2 AND granted LIMIT 1",
        {std::to_string(kPollLockClass), std::to_string(table_oid)});
}

std::string poll_sql(const PollOptions& options, const PollTable& table, bool count_backlog) {
    const std::string where = options.published_column.empty()
                                  ? ""
                                  : " WHERE " + quote_identifier(options.published_column) + " IS NULL";
    std::string sql = "BEGIN; ";
    if (count_backlog) {
        sql += fmt::format("SELECT count(*) FROM (SELECT 1 FROM {}{} LIMIT {}) backlog; ",
                           options.table.quoted(), where, kBacklogCountLimit + 1);
    }
    sql += "SELECT ";
    for (const auto& [column, key] : options.columns) sql += quote_identifier(column) + ", ";
    // xmin: the transaction that inserted the row (outbox-xid). Its commit time when PostgreSQL
    // keeps them; else the time this poll began (later than the commit).
    sql += "xmin::text, ";
    sql += table.commit_timestamps
               ? "(extract(epoch FROM coalesce(pg_xact_commit_timestamp(xmin), now())) * 1000000)::bigint"
               : "(extract(epoch FROM now()) * 1000000)::bigint";
    sql += fmt::format(" FROM {}{} ORDER BY {} LIMIT {} FOR UPDATE SKIP LOCKED", options.table.quoted(),
                       where, quote_identifier(options.order_by), options.batch_size);
    return sql;
}

std::string array_text(const std::vector<std::string_view>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i != 0) out += ',';
        out += '"';
        for (const char c : values[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

std::string after_publish_sql(const PollOptions& options, const PollTable& table,
                              const std::string& quoted_ids) {
    // The cast to the id column's own type lets the index on it find the rows.
    const std::string match =
        fmt::format("{} = ANY({}::{}[])", quote_identifier(options.id_column), quoted_ids, table.id_type);
    if (options.published_column.empty()) {
        return fmt::format("DELETE FROM {} WHERE {}; COMMIT", options.table.quoted(), match);
    }
    return fmt::format("UPDATE {} SET {} = now() WHERE {}; COMMIT", options.table.quoted(),
                       quote_identifier(options.published_column), match);
}

}  // namespace outbox::pg

#include "pg/connection.h"

#include <fmt/format.h>

namespace outbox::pg {

ErrorKind classify_sqlstate(std::string_view sqlstate) noexcept {
    if (sqlstate.size() != 5) return ErrorKind::Transient;
    const std::string_view cls = sqlstate.substr(0, 2);
    // 08 connection exception, 57 operator intervention (shutdown, terminated backend),
    // 53 insufficient resources, 40 transaction rollback (serialization, deadlock),
    // 55006 object in use (slot active for another PID: a standby waits and retries).
    if (cls == "08" || cls == "57" || cls == "53" || cls == "40" || sqlstate == "55006") {
        return ErrorKind::Transient;
    }
    // 28 invalid authorization, 42 syntax/access/undefined object, 3D/3F undefined db/schema,
    // 55 object not in prerequisite state (e.g. wal_level), 22 data exception.
    if (cls == "28" || cls == "42" || cls == "3D" || cls == "3F" || cls == "55") return ErrorKind::Config;
    if (cls == "XX") return ErrorKind::Fatal;
    return ErrorKind::Fatal;
}

Connection Connection::connect(const std::string& conninfo, ReplicationMode mode,
                               const std::optional<std::string>& password,
                               const std::string& application_name) {
    // PQconnectdbParams with expand_dbname=1: "dbname" may hold a full conninfo or URI, and the
    // keywords after it override what it says.
    // connect_timeout first so the DSN can override it: a blocking connect must not hang for
    // minutes (the event loop, the systemd watchdog and the standby retry wait on it).
    std::vector<const char*> keys{"connect_timeout", "dbname", "application_name"};
    std::vector<const char*> values{"10", conninfo.c_str(), application_name.c_str()};
    if (mode == ReplicationMode::Database) {
        keys.push_back("replication");
        values.push_back("database");
    }
    if (password) {
        keys.push_back("password");
        values.push_back(password->c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* raw = PQconnectdbParams(keys.data(), values.data(), 1);
    if (raw == nullptr) throw Error(ErrorKind::Fatal, "libpq: out of memory creating a connection");
    Connection conn(raw);
    if (PQstatus(raw) != CONNECTION_OK) {
        // libpq's message names host and user but never the password.
        throw Error(ErrorKind::Transient, "cannot connect to PostgreSQL: " + conn.error_message());
    }
    conn.use_utf8();
    return conn;
}

void Connection::use_utf8() {
    // pgoutput converts text columns from the database encoding to the client's, so Kafka gets
    // UTF-8 whatever the database encoding. Not for SQL_ASCII: it stores bytes unchecked and the
    // conversion would validate them, failing the walsender at the first non-UTF-8 row for good
    // (the slot could never pass it). From SQL_ASCII the bytes come as they are; the router
    // dead-letters what is not valid UTF-8.
    const char* server = PQparameterStatus(conn_.get(), "server_encoding");
    const char* client = PQparameterStatus(conn_.get(), "client_encoding");
    if (server == nullptr || std::string_view(server) == "SQL_ASCII") return;
    if (client != nullptr && std::string_view(client) == "UTF8") return;
    if (PQsetClientEncoding(conn_.get(), "UTF8") != 0) {
        throw Error(ErrorKind::Transient, "cannot set client_encoding to UTF8: " + error_message());
    }
}

std::string Connection::error_message() const {
    std::string msg = PQerrorMessage(conn_.get());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
}

ResultHandle Connection::check(PGresult* res, std::string_view what) {
    ResultHandle result(res);
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_BOTH ||
        status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_EMPTY_QUERY) {
        return result;
    }
    std::string sqlstate;
    std::string message;
    if (result) {
        if (const char* s = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE)) sqlstate = s;
        message = PQresultErrorMessage(result.get());
    }
    if (message.empty()) message = error_message();
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    ErrorKind kind = sqlstate.empty() ? ErrorKind::Transient : classify_sqlstate(sqlstate);
    if (sqlstate.empty() && PQstatus(conn_.get()) == CONNECTION_OK) kind = ErrorKind::Fatal;
    const std::string prefix = what.empty() ? std::string("query failed") : std::string(what);
    throw ServerError(
        kind,
        fmt::format("{}: {}{}", prefix, message, sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"),
        sqlstate);
}

ResultHandle Connection::exec(const std::string& sql, std::string_view what) {
    return check(PQexec(conn_.get(), sql.c_str()), what);
}

ResultHandle Connection::exec_params(const std::string& sql,
                                     const std::vector<std::optional<std::string>>& params,
                                     std::string_view what) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    return check(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0),
                 what);
}

std::vector<Row> Connection::query(const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params) {
    ResultHandle res = params.empty() ? exec(sql) : exec_params(sql, params);
    std::vector<Row> rows;
    const int n = PQntuples(res.get());
    const int cols = PQnfields(res.get());
    rows.reserve(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
        Row row;
        row.reserve(static_cast<std::size_t>(cols));
        for (int c = 0; c < cols; ++c) {
            if (PQgetisnull(res.get(), r, c)) {
                row.emplace_back(std::nullopt);
            } else {
                row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                             static_cast<std::size_t>(PQgetlength(res.get(), r, c))));
            }
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

std::optional<std::string> Connection::query_value(const std::string& sql,
                                                   const std::vector<std::optional<std::string>>& params) {
    auto rows = query(sql, params);
    if (rows.empty() || rows.front().empty()) return std::nullopt;
    return rows.front().front();
}

std::string quote_identifier(std::string_view ident) {
    std::string out = "\"";
    for (char c : ident) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string quote_literal(std::string_view value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'') out += '\'';
        out += c;
    }
    out += '\'';
    return out;
}

}  // namespace outbox::pg

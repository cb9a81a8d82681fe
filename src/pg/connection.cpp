#include "pg/connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "config/secrets.h"

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

namespace {

// Keyword/value arrays for PQconnectdbParams / PQconnectStartParams (views into the arguments).
struct ConnectParams {
    std::vector<const char*> keys;
    std::vector<const char*> values;
};

ConnectParams connect_params(const std::string& conninfo, ReplicationMode mode,
                             const std::optional<std::string>& password, const std::string& application_name,
                             TargetServer target) {
    // expand_dbname=1: "dbname" may hold a full conninfo or URI, and the keywords after it
    // override what it says. connect_timeout first so the DSN can override it: a blocking
    // connect must not hang for minutes (the watchdog and the standby retry wait on it).
    // target_session_attrs first too: libpq then tries a multi-host DSN's hosts in turn and
    // settles only on the primary, unless the DSN asks for something else.
    ConnectParams p{{"connect_timeout"}, {"10"}};
    if (target == TargetServer::Primary) {
        p.keys.push_back("target_session_attrs");
        p.values.push_back("primary");
    }
    p.keys.insert(p.keys.end(), {"dbname", "application_name"});
    p.values.insert(p.values.end(), {conninfo.c_str(), application_name.c_str()});
    if (mode == ReplicationMode::Database) {
        p.keys.push_back("replication");
        p.values.push_back("database");
    }
    if (password) {
        p.keys.push_back("password");
        p.values.push_back(password->c_str());
    }
    p.keys.push_back(nullptr);
    p.values.push_back(nullptr);
    return p;
}

// How long an interruptible step waits for the server (libpq ignores connect_timeout when
// polled, so this is its stand-in).
constexpr int kInterruptibleTimeoutMs = 10000;

// libpq's message for a failed connection, on one line (it may hold the server's FATAL and
// DETAIL lines and one "connection to server ... failed" line per host tried).
std::string fold_lines(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\n') {
            out += text[i];
            continue;
        }
        while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\t')) ++i;
        out += "; ";
    }
    return out;
}

// Waits until `socket` is ready for `events`; throws when `cancel_fd` becomes readable first
// or the server does not answer in time.
void wait_interruptible(int socket, short events, int cancel_fd) {
    pollfd fds[2] = {{socket, events, 0}, {cancel_fd, POLLIN, 0}};
    int n = 0;
    while ((n = ::poll(fds, 2, kInterruptibleTimeoutMs)) < 0) {
        if (errno != EINTR)
            throw Error(ErrorKind::Transient, std::string("poll failed: ") + std::strerror(errno));
    }
    if (fds[1].revents != 0) throw Error(ErrorKind::Transient, "interrupted");
    if (n == 0) throw Error(ErrorKind::Transient, "PostgreSQL did not answer within 10 s");
}

}  // namespace

Connection Connection::connect(const std::string& conninfo, ReplicationMode mode,
                               const std::optional<std::string>& password,
                               const std::string& application_name, TargetServer target) {
    const ConnectParams p = connect_params(conninfo, mode, password, application_name, target);
    PGconn* raw = PQconnectdbParams(p.keys.data(), p.values.data(), 1);
    if (raw == nullptr) throw Error(ErrorKind::Fatal, "libpq: out of memory creating a connection");
    Connection conn(raw);
    if (PQstatus(raw) != CONNECTION_OK) throw connection_failure(conn.error_message(), conninfo);
    conn.use_utf8();
    return conn;
}

Connection Connection::connect_interruptible(const std::string& conninfo, int cancel_fd,
                                             const std::optional<std::string>& password,
                                             const std::string& application_name, TargetServer target) {
    const ConnectParams p =
        connect_params(conninfo, ReplicationMode::None, password, application_name, target);
    PGconn* raw = PQconnectStartParams(p.keys.data(), p.values.data(), 1);
    if (raw == nullptr) throw Error(ErrorKind::Fatal, "libpq: out of memory creating a connection");
    Connection conn(raw);
    conn.cancel_fd_ = cancel_fd;
    // libpq's documented loop: wait for what PQconnectPoll asks for until it says OK or FAILED.
    PostgresPollingStatusType status =
        PQstatus(raw) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED) {
        wait_interruptible(PQsocket(raw), status == PGRES_POLLING_READING ? POLLIN : POLLOUT, cancel_fd);
        status = PQconnectPoll(raw);
    }
    if (status == PGRES_POLLING_FAILED) throw connection_failure(conn.error_message(), conninfo);
    // No use_utf8(): it blocks in a SET, and this connection's users read catalog names only.
    return conn;
}

PGresult* Connection::run(const std::string& sql, const std::vector<const char*>& params) {
    const int n = static_cast<int>(params.size());
    if (cancel_fd_ < 0) {
        return n == 0
                   ? PQexec(conn_.get(), sql.c_str())
                   : PQexecParams(conn_.get(), sql.c_str(), n, nullptr, params.data(), nullptr, nullptr, 0);
    }
    // Interruptible: send, then wait for the whole result without blocking in libpq.
    if (PQsendQueryParams(conn_.get(), sql.c_str(), n, nullptr, n == 0 ? nullptr : params.data(), nullptr,
                          nullptr, 0) == 0) {
        return nullptr;
    }
    while (PQflush(conn_.get()) == 1) wait_interruptible(socket(), POLLOUT, cancel_fd_);
    while (PQisBusy(conn_.get()) != 0) {
        wait_interruptible(socket(), POLLIN, cancel_fd_);
        if (PQconsumeInput(conn_.get()) == 0) return nullptr;
    }
    PGresult* result = PQgetResult(conn_.get());
    // One statement: drain to the terminating null result so the connection is idle again.
    while (PGresult* extra = PQgetResult(conn_.get())) PQclear(extra);
    return result;
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

namespace {

// libpq's message without what the DSN hides from logs: libpq quotes a malformed URI whole
// ("... in URI: \"postgresql://u:secret@[::1/db\"") and a token it cannot percent-decode alone
// ("invalid percent-encoded token: \"se%zzcret\""), which may be the password. The URI becomes
// its masked form; a quoted token that occurs in the DSN but not in its masked form is a secret.
std::string without_secrets(std::string message, const std::string& conninfo) {
    if (conninfo.empty()) return message;
    const std::string masked = config::mask_dsn(conninfo);
    if (masked == conninfo) return message;
    for (std::size_t at = message.find(conninfo); at != std::string::npos;
         at = message.find(conninfo, at + masked.size())) {
        message.replace(at, conninfo.size(), masked);
    }
    std::size_t open = message.find('"');
    while (open != std::string::npos) {
        const std::size_t close = message.find('"', open + 1);
        if (close == std::string::npos) break;
        const std::string token = message.substr(open + 1, close - open - 1);
        if (!token.empty() && conninfo.find(token) != std::string::npos &&
            masked.find(token) == std::string::npos) {
            message.replace(open + 1, token.size(), config::kMasked);
            open = message.find('"', open + 1 + config::kMasked.size() + 1);
        } else {
            open = message.find('"', close + 1);
        }
    }
    return message;
}

}  // namespace

Error connection_failure(const std::string& libpq_message, const std::string& conninfo) {
    // libpq gives no SQLSTATE for a failed connection: match the server's FATAL text (English
    // server messages; anything not recognised is retried).
    struct Permanent {
        std::string_view says;
        std::string_view fix;
    };
    static constexpr Permanent kPermanent[] = {
        {"password authentication failed",
         "check the password (postgres.password_file) and the user in postgres.dsn"},
        {"no password supplied", "the server asks for a password: set postgres.password_file"},
        {"does not exist", "fix user= or dbname= in postgres.dsn, or create the role or database"},
        {"no encryption",
         "the server accepts this connection only with TLS (hostssl in pg_hba.conf): set sslmode=verify-full "
         "and sslrootcert in postgres.dsn, or add a pg_hba.conf line for this user, database and address"},
        {"no pg_hba.conf entry",
         "add a pg_hba.conf line for this user, database and address (logical "
         "replication connections match the database name), then reload PostgreSQL"},
        {"pg_hba.conf rejects", "change the pg_hba.conf line that rejects this user, database or address"},
        {"authentication failed",
         "check the authentication method in pg_hba.conf and the user in postgres.dsn"},
        {"start WAL sender", "the role needs the REPLICATION attribute: ALTER ROLE <user> REPLICATION;"},
        {"replication role to start walsender",
         "the role needs the REPLICATION attribute: ALTER ROLE <user> REPLICATION;"},
        {"private key file",
         "check sslkey in postgres.dsn: the file must exist, hold the key of sslcert and be readable by its "
         "owner only (chmod 0600; 0640 if owned by root)"},
        {"certificate",
         "check sslrootcert, sslcert and sslkey in postgres.dsn against the server's certificate"},
        {"SSL", "check the ssl* settings in postgres.dsn and the server's ssl settings"},
        {"invalid connection option", "fix postgres.dsn"},
        {"invalid URI", "fix postgres.dsn"},
        {"in URI", "fix postgres.dsn"},
        {"percent-encoded", "fix postgres.dsn"},
        {"in connection info string", "fix postgres.dsn"},
        {"for connection option", "fix postgres.dsn"},
        {"missing \"=\"", "fix postgres.dsn"},
        {"invalid sslmode", "fix postgres.dsn"},
        {"invalid target_session_attrs", "fix postgres.dsn"},
        {" value: \"", "fix postgres.dsn"},       // libpq's "invalid <option> value: \"...\""
        {"could not match", "fix postgres.dsn"},  // as many ports (hostaddrs) as hosts
        {"could not parse network address", "fix hostaddr= in postgres.dsn"},
        {"is not currently accepting connections",
         "ALTER DATABASE ... ALLOW_CONNECTIONS true, or fix dbname="},
    };
    // Transient whatever else the message says: the server is busy, starting or stopping, or is
    // a standby of a multi-host DSN (the relay waits for a primary).
    static constexpr std::string_view kTransient[] = {
        "too many connections",
        "connection slots are reserved",
        "starting up",
        "shutting down",
        "in recovery mode",
        "hot standby",
        "read-only",
        "Connection refused",
        "timeout expired",
        "could not translate host name",
        "server closed the connection unexpectedly",
        "SSL SYSCALL",
        "closed unexpectedly",
    };
    const std::string message = fold_lines(without_secrets(libpq_message, conninfo));
    const bool transient = std::any_of(std::begin(kTransient), std::end(kTransient), [&](std::string_view t) {
        return message.find(t) != std::string::npos;
    });
    if (!transient) {
        for (const auto& p : kPermanent) {
            if (message.find(p.says) != std::string::npos) {
                return Error(ErrorKind::Config,
                             fmt::format("cannot connect to PostgreSQL: {} (retrying will not help: {})",
                                         message, p.fix));
            }
        }
    }
    // libpq's message names host and user but never the password.
    return Error(ErrorKind::Transient, "cannot connect to PostgreSQL: " + message);
}

std::string Connection::server_address() const {
    const char* host = PQhost(conn_.get());
    const char* port = PQport(conn_.get());
    return fmt::format("{}:{}", host != nullptr ? host : "?", port != nullptr ? port : "?");
}

std::string Connection::error_message() const {
    std::string msg = PQerrorMessage(conn_.get());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
}

ServerError statement_failure(PGconn* conn, const PGresult* result, std::string_view what) {
    std::string sqlstate;
    std::string message;
    if (result != nullptr) {
        if (const char* s = PQresultErrorField(result, PG_DIAG_SQLSTATE)) sqlstate = s;
        message = PQresultErrorMessage(result);
    }
    if (message.empty()) message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    ErrorKind kind = sqlstate.empty() ? ErrorKind::Transient : classify_sqlstate(sqlstate);
    if (sqlstate.empty() && PQstatus(conn) == CONNECTION_OK) kind = ErrorKind::Fatal;
    const std::string prefix = what.empty() ? std::string("query failed") : std::string(what);
    return ServerError(
        kind,
        fmt::format("{}: {}{}", prefix, message, sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"),
        sqlstate);
}

ResultHandle Connection::check(PGresult* res, std::string_view what) {
    ResultHandle result(res);
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_BOTH ||
        status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_EMPTY_QUERY) {
        return result;
    }
    throw statement_failure(conn_.get(), result.get(), what);
}

ResultHandle Connection::exec(const std::string& sql, std::string_view what) {
    return check(run(sql, {}), what);
}

ResultHandle Connection::exec_params(const std::string& sql,
                                     const std::vector<std::optional<std::string>>& params,
                                     std::string_view what) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    return check(run(sql, values), what);
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

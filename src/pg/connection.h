#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace outbox::pg {

struct ConnDeleter {
    void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
struct ResultDeleter {
    void operator()(PGresult* res) const noexcept { PQclear(res); }
};
// A buffer handed out by PQgetCopyData, released with PQfreemem.
struct CopyBufferDeleter {
    void operator()(char* buf) const noexcept { PQfreemem(buf); }
};
using ResultHandle = std::unique_ptr<PGresult, ResultDeleter>;
using CopyBuffer = std::unique_ptr<char, CopyBufferDeleter>;

using Row = std::vector<std::optional<std::string>>;

// An error reported by the server: carries its SQLSTATE so callers can react to specific
// conditions (e.g. 55006 "replication slot is active", 42704 "does not exist").
class ServerError : public Error {
public:
    ServerError(ErrorKind kind, const std::string& what, std::string sqlstate)
        : Error(kind, what), sqlstate_(std::move(sqlstate)) {}
    [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

private:
    std::string sqlstate_;
};

// The error for a connection attempt that failed with `libpq_message`: Config (exit 78, with
// the fix) when retrying cannot help (wrong password, no such role or database, no pg_hba.conf
// entry, no REPLICATION attribute, TLS verification or files, a malformed DSN), else Transient.
// `conninfo`, the DSN the attempt used, is masked in the message (libpq quotes a malformed URI,
// password included).
Error connection_failure(const std::string& libpq_message, const std::string& conninfo = {});

// Maps a SQLSTATE to what the caller should do: connection and shutdown classes reconnect,
// privilege/undefined-object classes need the operator.
ErrorKind classify_sqlstate(std::string_view sqlstate) noexcept;

// The error for a failed statement: `result` (nullptr when none came back) on `conn`, prefixed
// with `what` ("query failed" when empty). Its kind follows the SQLSTATE; without one, Transient
// when the connection is gone, else Fatal.
ServerError statement_failure(PGconn* conn, const PGresult* result, std::string_view what);

enum class ReplicationMode { None, Database };

// Which server of a multi-host DSN (host=a,b) a connection may settle on. Primary adds
// target_session_attrs=primary unless the DSN says otherwise: a standby is never used.
enum class TargetServer { Any, Primary };

// One libpq connection, owned. Blocking helpers for setup queries; the replication stream
// uses the raw handle in non-blocking mode.
class Connection {
public:
    // `conninfo` is a libpq keyword/value string or URI. `password`, when given, overrides the
    // one in conninfo without ever being formatted into a string we might log.
    static Connection connect(const std::string& conninfo, ReplicationMode mode = ReplicationMode::None,
                              const std::optional<std::string>& password = std::nullopt,
                              const std::string& application_name = "outbox-relay",
                              TargetServer target = TargetServer::Any);

    // A normal connection whose connect and queries give up (Error(Transient, "interrupted"))
    // as soon as `cancel_fd` becomes readable, or after 10 s without an answer: for threads
    // that must stop promptly. Keeps the server's client_encoding (catalog queries only).
    static Connection connect_interruptible(const std::string& conninfo, int cancel_fd,
                                            const std::optional<std::string>& password = std::nullopt,
                                            const std::string& application_name = "outbox-relay",
                                            TargetServer target = TargetServer::Any);

    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;

    [[nodiscard]] PGconn* get() const noexcept { return conn_.get(); }

    // Runs one or more statements; throws ServerError on failure, naming `what`.
    ResultHandle exec(const std::string& sql, std::string_view what = {});
    // Runs a query with text parameters ($1, $2, ...), never interpolated into the SQL.
    ResultHandle exec_params(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                             std::string_view what = {});
    std::vector<Row> query(const std::string& sql,
                           const std::vector<std::optional<std::string>>& params = {});
    // First column of the first row; nullopt when there is no row or the value is NULL.
    std::optional<std::string> query_value(const std::string& sql,
                                           const std::vector<std::optional<std::string>>& params = {});

    [[nodiscard]] int server_version() const noexcept { return PQserverVersion(conn_.get()); }
    // "host:port" of the server this connection settled on (one of a multi-host DSN's).
    [[nodiscard]] std::string server_address() const;
    [[nodiscard]] int socket() const noexcept { return PQsocket(conn_.get()); }
    [[nodiscard]] std::string error_message() const;

private:
    explicit Connection(PGconn* conn) : conn_(conn) {}
    // Switches client_encoding to UTF8 unless the database is SQL_ASCII (see the definition).
    void use_utf8();
    ResultHandle check(PGresult* res, std::string_view what);
    // Runs one statement (with text parameters when `params` is not empty), interruptible when
    // cancel_fd_ is set. nullptr when it could not be sent (check() reports the connection's error).
    PGresult* run(const std::string& sql, const std::vector<const char*>& params);
    std::unique_ptr<PGconn, ConnDeleter> conn_;
    int cancel_fd_ = -1;
};

// Quotes an identifier for SQL ("my table" -> "\"my table\"").
std::string quote_identifier(std::string_view ident);
// Quotes a string literal for replication commands, which take no parameters.
std::string quote_literal(std::string_view value);

}  // namespace outbox::pg

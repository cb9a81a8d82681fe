#include "pg/replication_stream.h"

#include <poll.h>

#include <fmt/format.h>
#include <algorithm>
#include <utility>

namespace outbox::pg {
namespace {

std::int64_t pg_now_micros() {
    const auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    return since_unix.count() - pgoutput::kPgEpochOffsetMicros;
}

Lsn parse_lsn_or_throw(const std::optional<std::string>& text, std::string_view what) {
    if (!text) return Lsn();
    const auto lsn = Lsn::parse(*text);
    if (!lsn)
        throw Error(ErrorKind::Protocol, fmt::format("server sent an invalid LSN for {}: {}", what, *text));
    return *lsn;
}

std::string table_list(const std::vector<TableName>& tables) {
    std::string out;
    for (const auto& t : tables) {
        if (!out.empty()) out += ", ";
        out += t.quoted();
    }
    return out;
}

void require_logical_wal_level(Connection& conn) {
    const auto level = conn.query_value("SHOW wal_level");
    if (level != "logical") {
        throw Error(
            ErrorKind::Config,
            fmt::format("PostgreSQL has wal_level = {}; logical replication needs wal_level = logical "
                        "(ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)",
                        level.value_or("?")));
    }
}

void require_tables(Connection& conn, const std::vector<TableName>& tables) {
    for (const auto& t : tables) {
        const auto found = conn.query_value(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2",
            {t.schema, t.name});
        if (!found)
            throw Error(ErrorKind::Config, fmt::format("outbox table {} does not exist", t.qualified()));
        if (*found != "r" && *found != "p") {
            throw Error(ErrorKind::Config,
                        fmt::format("outbox table {} is not a table (relkind {})", t.qualified(), *found));
        }
    }
}

void require_columns(Connection& conn, const ReplicationOptions& options) {
    for (const auto& t : options.tables) {
        const auto rows = conn.query(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
            "ON "
            "n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT "
            "a.attisdropped",
            {t.schema, t.name});
        std::vector<std::string> present;
        for (const auto& r : rows) present.push_back(r[0].value_or(""));
        std::string missing;
        for (const auto& [column, key] : options.required_columns) {
            if (std::find(present.begin(), present.end(), column) != present.end()) continue;
            missing += fmt::format("{}\"{}\" ({})", missing.empty() ? "" : ", ", column, key);
        }
        if (!missing.empty()) {
            throw Error(
                ErrorKind::Config,
                fmt::format("outbox table {} has no column {}; fix the configuration or the table (ALTER "
                            "TABLE {} ADD COLUMN ...)",
                            t.qualified(), missing, t.quoted()));
        }
    }
}

// 'insert', 'insert, update', ...
std::string publish_list(const ReplicationOptions& options) {
    std::string list = "insert";
    if (options.publish_updates) list += ", update";
    if (options.publish_deletes) list += ", delete";
    return list;
}

std::string create_publication_sql(const ReplicationOptions& options) {
    return fmt::format("CREATE PUBLICATION {} FOR TABLE {} WITH (publish = '{}')",
                       quote_identifier(options.publication), table_list(options.tables),
                       publish_list(options));
}

// Publishing UPDATEs or DELETEs of a table without a replica identity makes PostgreSQL refuse
// the application's own UPDATEs and DELETEs of it: check before the publication exists.
void require_replica_identity(Connection& conn, const ReplicationOptions& options) {
    if (!options.publish_updates && !options.publish_deletes) return;
    for (const auto& t : options.tables) {
        const auto rows = conn.query(
            "SELECT c.relreplident::text, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND "
            "(i.indisprimary OR i.indisreplident)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2",
            {t.schema, t.name});
        if (rows.empty()) continue;  // require_tables() says so
        const std::string identity = rows[0][0].value_or("");
        const bool has_index = rows[0][1] == "t";
        if (identity == "f" || ((identity == "d" || identity == "i") && has_index)) continue;
        throw Error(
            ErrorKind::Config,
            fmt::format("outbox table {} has no replica identity (no primary key), so publishing its {} "
                        "would make PostgreSQL refuse the application's own UPDATEs and DELETEs of it; add a "
                        "primary key (or ALTER TABLE {} REPLICA IDENTITY FULL), or set outbox.on_update and "
                        "outbox.on_delete to ignore",
                        t.qualified(), options.publish_updates ? "updates" : "deletes", t.quoted()));
    }
}

// Checks the publication without changing anything; false when it is missing and the relay may
// create it. Throws a Config error with the fix when it is missing (and may not be created) or
// does not cover the outbox tables' inserts.
bool check_publication(Connection& conn, const ReplicationOptions& options) {
    const std::string pub = quote_identifier(options.publication);
    const auto rows = conn.query(
        "SELECT pubinsert, puballtables, pubupdate, pubdelete FROM pg_publication WHERE pubname = $1",
        {options.publication});
    if (rows.empty()) {
        if (options.create_publication) return false;
        throw Error(ErrorKind::Config,
                    fmt::format("publication \"{}\" does not exist (postgres.create_publication is false); "
                                "create it as the owner of the outbox table: {};",
                                options.publication, create_publication_sql(options)));
    }
    const auto missing_action = [&](std::string_view action) {
        throw Error(ErrorKind::Config,
                    fmt::format("publication \"{}\" does not publish {}; fix: ALTER PUBLICATION {} "
                                "SET (publish = '{}');",
                                options.publication, action, pub, publish_list(options)));
    };
    if (rows[0][0] != "t") missing_action("inserts");
    if (options.publish_updates && rows[0][2] != "t") missing_action("updates (outbox.on_update)");
    if (options.publish_deletes && rows[0][3] != "t") missing_action("deletes (outbox.on_delete)");
    if (rows[0][1] == "t") return true;  // FOR ALL TABLES covers every outbox table
    std::vector<std::string> missing;
    for (const auto& t : options.tables) {
        const auto covered = conn.query_value(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
            {options.publication, t.schema, t.name});
        if (!covered) missing.push_back(t.quoted());
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        throw Error(
            ErrorKind::Config,
            fmt::format("publication \"{}\" does not include outbox table(s) {}; fix: ALTER PUBLICATION {} "
                        "ADD TABLE {};",
                        options.publication, list, pub, list));
    }
    return true;
}

constexpr int kFailoverSlotsVersion = 170000;  // failover slots and slot synchronization

std::vector<Row> query_slot(Connection& conn, const std::string& slot) {
    const bool has_failover = conn.server_version() >= kFailoverSlotsVersion;
    return conn.query(
        fmt::format("SELECT plugin, slot_type, database, confirmed_flush_lsn::text, restart_lsn::text, "
                    "coalesce(wal_status, ''), database = current_database(), {} "
                    "FROM pg_replication_slots WHERE slot_name = $1",
                    has_failover ? "failover" : "false"),
        {slot});
}

// "17.4 (server_version_num 170004)"
std::string version_text(int version) {
    return fmt::format("{}.{} (server_version_num {})", version / 10000, version % 10000, version);
}

void refuse_standby(Connection& conn, const ServerIdentity& identity) {
    if (conn.query_value("SELECT pg_is_in_recovery()::text") == "true") {
        throw Error(
            ErrorKind::Transient,
            fmt::format("{} is a standby (in recovery); the slot is used only on the primary (list every "
                        "host in postgres.dsn: host=a,b)",
                        identity.address));
    }
}

void require_failover_support(const ReplicationOptions& options, int version) {
    if (options.slot_failover == true && version < kFailoverSlotsVersion) {
        throw Error(
            ErrorKind::Config,
            fmt::format("postgres.slot_failover is true, but PostgreSQL {} has no failover slots (17 and "
                        "later do); set slot_failover: auto or false",
                        version_text(version)));
    }
}

void create_slot(Connection& conn, const ReplicationOptions& options) {
    const bool failover =
        options.slot_failover.value_or(true) && conn.server_version() >= kFailoverSlotsVersion;
    // pg_create_logical_replication_slot(name, plugin, temporary, twophase, failover)
    conn.exec_params(failover
                         ? "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
                         : "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                     {options.slot}, fmt::format("cannot create replication slot \"{}\"", options.slot));
}

}  // namespace

SlotState prepare_publication_and_slot(Connection& conn, const ReplicationOptions& options,
                                       const ServerIdentity& identity) {
    refuse_standby(conn, identity);
    require_logical_wal_level(conn);
    require_tables(conn, options.tables);
    require_columns(conn, options);
    require_replica_identity(conn, options);
    require_failover_support(options, conn.server_version());

    const bool publication_exists = check_publication(conn, options);
    SlotState state;
    auto rows = query_slot(conn, options.slot);
    if (rows.empty()) {
        if (!options.create_slot) {
            throw Error(ErrorKind::Config,
                        fmt::format("replication slot \"{}\" does not exist (postgres.create_slot is false); "
                                    "create it: SELECT pg_create_logical_replication_slot({}, 'pgoutput');",
                                    options.slot, quote_literal(options.slot)));
        }
        if (options.before_creating_slot) options.before_creating_slot(identity);
    }
    // Everything is checked: create what is missing. The publication must exist before the
    // slot's starting point: pgoutput looks publications up in the catalog as of each change, and
    // one created later is "does not exist" there.
    if (!publication_exists) {
        conn.exec(create_publication_sql(options),
                  fmt::format("cannot create publication \"{}\"", options.publication));
    }
    if (rows.empty()) {
        create_slot(conn, options);
        state.created = true;
        rows = query_slot(conn, options.slot);
        if (rows.empty())
            throw Error(ErrorKind::Fatal, "replication slot vanished right after it was created");
    }
    const Row& r = rows[0];
    if (r[1] != "logical" || r[0] != "pgoutput") {
        throw Error(
            ErrorKind::Config,
            fmt::format("replication slot \"{}\" is a {} slot with plugin {}; outbox-relay needs a logical "
                        "slot with plugin pgoutput",
                        options.slot, r[1].value_or("?"), r[0].value_or("none")));
    }
    if (r[6] != "t") {
        throw Error(
            ErrorKind::Config,
            fmt::format("replication slot \"{}\" belongs to database \"{}\", not the one in postgres.dsn",
                        options.slot, r[2].value_or("?")));
    }
    state.confirmed_flush = parse_lsn_or_throw(r[3], "confirmed_flush_lsn");
    state.restart_lsn = parse_lsn_or_throw(r[4], "restart_lsn");
    state.wal_status = r[5].value_or("");
    state.failover = r[7] == "t";
    if (state.wal_status == "lost") {
        throw Error(
            ErrorKind::Config,
            fmt::format("replication slot \"{}\" was invalidated (wal_status = lost): PostgreSQL removed WAL "
                        "it still needed, so events in that WAL can no longer be read. outbox-relay will not "
                        "recreate the slot by itself; see docs/operations.md, \"The slot was invalidated\"",
                        options.slot));
    }
    if (conn.server_version() >= kFailoverSlotsVersion) {
        state.synchronized_standby_slots = conn.query_value("SHOW synchronized_standby_slots").value_or("");
    }
    return state;
}

ReplicationStream::ReplicationStream(ReplicationOptions options) : options_(std::move(options)) {}

ReplicationStream::~ReplicationStream() = default;

int ReplicationStream::socket() const noexcept {
    return conn_ ? conn_->socket() : -1;
}

void ReplicationStream::on_notice(void* self, const PGresult* notice) {
    auto* stream = static_cast<ReplicationStream*>(self);
    const char* sqlstate = PQresultErrorField(notice, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(notice, PG_DIAG_MESSAGE_PRIMARY);
    const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY);
    const std::string message = primary != nullptr ? primary : "";
    if (message.find("skipped loading publication") != std::string::npos ||
        (sqlstate != nullptr && std::string_view(sqlstate) == "55000" &&
         message.find("publication") != std::string::npos)) {
        if (!stream->skipped_publication_) stream->skipped_publication_ = message;
        return;
    }
    std::string text = PQresultErrorMessage(notice);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text.empty()) text = fmt::format("{}: {}", severity != nullptr ? severity : "NOTICE", message);
    stream->notices_.push_back(std::move(text));
}

std::vector<std::string> ReplicationStream::take_notices() {
    return std::exchange(notices_, {});
}

void ReplicationStream::start() {
    conn_.emplace(Connection::connect(options_.dsn, ReplicationMode::Database, options_.password,
                                      options_.application_name, TargetServer::Primary));
    // Server notices on the stream come to on_notice() instead of libpq's stderr printer.
    PQsetNoticeReceiver(conn_->get(), &ReplicationStream::on_notice, this);
    const auto ident = conn_->query("IDENTIFY_SYSTEM");
    if (ident.size() != 1 || ident[0].size() < 4) {
        throw Error(ErrorKind::Protocol, "IDENTIFY_SYSTEM returned an unexpected result");
    }
    if (!ident[0][3]) {
        throw Error(ErrorKind::Config,
                    "the replication connection is not bound to a database (add dbname to postgres.dsn)");
    }
    identity_.system_id = ident[0][0].value_or("");
    identity_.timeline = static_cast<std::uint32_t>(std::stoul(ident[0][1].value_or("0")));
    identity_.database = *ident[0][3];
    identity_.server_version = conn_->server_version();
    identity_.address = conn_->server_address();
    {
        // The same server as the replication connection: a multi-host DSN settles on the primary.
        Connection setup = Connection::connect(options_.dsn, ReplicationMode::None, options_.password,
                                               options_.application_name, TargetServer::Primary);
        slot_ = prepare_publication_and_slot(setup, options_, identity_);
    }
    if (options_.slot_failover == true && !slot_.failover) {
        conn_->exec(
            fmt::format("ALTER_REPLICATION_SLOT {} ( FAILOVER true )", quote_identifier(options_.slot)),
            fmt::format("cannot make replication slot \"{}\" a failover slot", options_.slot));
        slot_.failover = true;
    }

    confirmed_ = slot_.confirmed_flush;
    last_sent_flush_ = slot_.confirmed_flush;
    received_ = slot_.confirmed_flush;
    const std::string command = fmt::format(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '{}', publication_names {}, messages '{}')",
        quote_identifier(options_.slot), slot_.confirmed_flush.to_string(), options_.proto_version,
        quote_literal(quote_identifier(options_.publication)), options_.messages ? "true" : "false");
    conn_->exec(command, fmt::format("cannot start replication from slot \"{}\"", options_.slot));
    if (PQsetnonblocking(conn_->get(), 1) != 0)
        fail_stream("cannot switch the connection to non-blocking mode");
    streaming_ = true;
    last_status_ = std::chrono::steady_clock::now();
}

void ReplicationStream::fail_stream(const std::string& context) {
    streaming_ = false;
    const std::string message = conn_ ? conn_->error_message() : std::string();
    throw Error(ErrorKind::Transient, message.empty() ? context : context + ": " + message);
}

std::optional<pgoutput::StreamFrame> ReplicationStream::read_frame() {
    if (!streaming_) throw Error(ErrorKind::Fatal, "read_frame() on a stream that is not streaming");
    buffer_.reset();
    char* raw = nullptr;
    int n = PQgetCopyData(conn_->get(), &raw, 1);
    if (n == 0) {
        if (PQconsumeInput(conn_->get()) == 0) fail_stream("lost the replication connection");
        n = PQgetCopyData(conn_->get(), &raw, 1);
        if (n == 0) return std::nullopt;
    }
    if (n == -1) {
        // The server ended the copy: it says why in the command's result.
        streaming_ = false;
        std::string why = "the server ended the replication stream";
        while (PGresult* res = PQgetResult(conn_->get())) {
            ResultHandle result(res);
            if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
                const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                std::string msg = PQresultErrorMessage(res);
                while (!msg.empty() && msg.back() == '\n') msg.pop_back();
                const std::string sqlstate = state != nullptr ? state : "";
                throw ServerError(sqlstate.empty() ? ErrorKind::Transient : classify_sqlstate(sqlstate),
                                  "replication stream failed: " + msg, sqlstate);
            }
        }
        throw Error(ErrorKind::Transient, why);
    }
    if (n < 0) fail_stream("reading the replication stream failed");
    buffer_.reset(raw);
    if (skipped_publication_) {
        // Everything after the warning lacks the outbox rows: never confirm past it.
        streaming_ = false;
        throw Error(
            ErrorKind::Config,
            fmt::format("the server {} (publication \"{}\", dropped while the relay streamed?); the rows "
                        "after it cannot be decoded without it, so the relay stops without confirming "
                        "anything past it. Recreate the publication, then see docs/operations.md, \"The "
                        "slot was invalidated\", for the rows since",
                        *skipped_publication_, options_.publication));
    }
    bytes_received_ += static_cast<std::uint64_t>(n);
    auto frame = pgoutput::parse_stream_frame(std::string_view(raw, static_cast<std::size_t>(n)));
    if (const auto* data = std::get_if<pgoutput::XLogData>(&frame)) {
        received_ = std::max({received_, data->wal_start, data->wal_end});
        server_wal_end_ = std::max(server_wal_end_, data->wal_end);
    } else {
        const auto& keepalive = std::get<pgoutput::PrimaryKeepalive>(frame);
        server_wal_end_ = std::max(server_wal_end_, keepalive.wal_end);
        if (keepalive.reply_requested) reply_pending_ = true;
    }
    return frame;
}

void ReplicationStream::confirm(Lsn flushed) {
    confirmed_ = std::max(confirmed_, flushed);
}

void ReplicationStream::flush_output() {
    const int r = PQflush(conn_->get());
    if (r < 0) fail_stream("sending to the replication connection failed");
    pending_output_ = r == 1;
}

void ReplicationStream::send_status(bool reply_requested) {
    if (!streaming_) return;
    pgoutput::StandbyStatus status;
    status.written = std::max(received_, confirmed_);
    status.flushed = confirmed_;
    status.applied = confirmed_;
    status.send_time = pg_now_micros();
    status.reply_requested = reply_requested;
    const std::string bytes = pgoutput::encode_standby_status(status);
    const int r = PQputCopyData(conn_->get(), bytes.data(), static_cast<int>(bytes.size()));
    if (r < 0) fail_stream("sending a standby status update failed");
    if (r == 0) {
        // libpq's buffer is full (non-blocking): keep the update due and retry on the next turn.
        pending_output_ = true;
        reply_pending_ = true;
        return;
    }
    last_sent_flush_ = confirmed_;
    reply_pending_ = false;
    last_status_ = std::chrono::steady_clock::now();
    flush_output();
}

std::chrono::steady_clock::time_point ReplicationStream::service(std::chrono::steady_clock::time_point now) {
    if (!streaming_) return now + options_.status_interval;
    const bool moved = confirmed_ != last_sent_flush_;
    if (reply_pending_ || now - last_status_ >= options_.status_interval ||
        (moved && now - last_status_ >= options_.confirm_coalesce)) {
        send_status(false);
    } else if (pending_output_) {
        flush_output();
    }
    auto next = last_status_ + options_.status_interval;
    if (confirmed_ != last_sent_flush_) next = std::min(next, last_status_ + options_.confirm_coalesce);
    if (reply_pending_) next = now;
    return next;
}

void ReplicationStream::keep_alive(std::chrono::steady_clock::time_point now,
                                   std::chrono::milliseconds max_silence) {
    if (streaming_ && now - last_status_ >= max_silence) send_status(false);
}

void ReplicationStream::finish(std::chrono::milliseconds timeout) {
    if (!streaming_ || !conn_) return;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto wait_socket = [&](short events) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            streaming_ = false;
            throw Error(ErrorKind::Transient, "timed out ending the replication stream");
        }
        pollfd pfd{conn_->socket(), events, 0};
        ::poll(&pfd, 1, static_cast<int>(left.count()));
    };
    send_status(false);
    if (PQputCopyEnd(conn_->get(), nullptr) < 0) fail_stream("sending CopyDone failed");
    while (true) {
        const int r = PQflush(conn_->get());
        if (r < 0) fail_stream("sending CopyDone failed");
        if (r == 0) break;
        wait_socket(POLLOUT | POLLIN);
        PQconsumeInput(conn_->get());
    }
    // Read to the end of the stream so that a last-minute ErrorResponse is not missed. What
    // arrives now is not confirmed, so it is sent again next time.
    while (true) {
        char* raw = nullptr;
        const int n = PQgetCopyData(conn_->get(), &raw, 1);
        if (n > 0) {
            PQfreemem(raw);
            continue;
        }
        if (n == 0) {
            wait_socket(POLLIN);
            if (PQconsumeInput(conn_->get()) == 0) fail_stream("lost the connection while ending the stream");
            continue;
        }
        if (n == -2) fail_stream("ending the replication stream failed");
        break;
    }
    streaming_ = false;
    std::string error;
    while (true) {
        if (PQisBusy(conn_->get()) != 0) {
            wait_socket(POLLIN);
            if (PQconsumeInput(conn_->get()) == 0) break;
            continue;
        }
        PGresult* res = PQgetResult(conn_->get());
        if (res == nullptr) break;
        ResultHandle result(res);
        if (PQresultStatus(res) == PGRES_FATAL_ERROR && error.empty()) error = PQresultErrorMessage(res);
    }
    if (!error.empty()) {
        while (!error.empty() && error.back() == '\n') error.pop_back();
        throw Error(ErrorKind::Transient, "the server reported an error as the stream ended: " + error);
    }
}

}  // namespace outbox::pg

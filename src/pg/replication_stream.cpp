#include "pg/replication_stream.h"

#include <poll.h>
#include <sys/socket.h>

#include <fmt/format.h>
#include <algorithm>
#include <string_view>
#include <utility>

namespace outbox::pg {
namespace {

std::int64_t pg_now_micros() {
    const auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    return since_unix.count() - pgoutput::kPgEpochOffsetMicros;
}

}  // namespace

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
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    unix_socket_ = ::getsockname(conn_->socket(), reinterpret_cast<sockaddr*>(&local), &length) == 0 &&
                   local.ss_family == AF_UNIX;
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
    if (auto frame = read_buffered_frame()) return frame;
    consume_input();
    return read_buffered_frame();
}

void ReplicationStream::consume_input() {
    if (!streaming_) throw Error(ErrorKind::Fatal, "consume_input() on a stream that is not streaming");
    if (PQconsumeInput(conn_->get()) == 0) fail_stream("lost the replication connection");
    maybe_buffered_ = true;
}

bool ReplicationStream::text_is_valid_utf8() const {
    if (!conn_) return false;
    const char* server = PQparameterStatus(conn_->get(), "server_encoding");
    const char* client = PQparameterStatus(conn_->get(), "client_encoding");
    return server != nullptr && client != nullptr && std::string_view(server) == "UTF8" &&
           std::string_view(client) == "UTF8";
}

std::optional<pgoutput::StreamFrame> ReplicationStream::read_buffered_frame() {
    if (!streaming_) throw Error(ErrorKind::Fatal, "read_frame() on a stream that is not streaming");
    buffer_.reset();
    char* raw = nullptr;
    const int n = PQgetCopyData(conn_->get(), &raw, 1);
    if (n == 0) {
        maybe_buffered_ = false;
        return std::nullopt;
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
    // A flush that could not send everything reads input meanwhile (libpq avoids a deadlock so).
    if (pending_output_) maybe_buffered_ = true;
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
    maybe_buffered_ = true;  // libpq may read input while it makes room for output
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

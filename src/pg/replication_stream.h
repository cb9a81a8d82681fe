#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"
#include "outbox/options.h"
#include "pg/connection.h"
#include "pg/setup.h"
#include "pgoutput/stream_frame.h"

namespace outbox::pg {

// One logical replication connection streaming pgoutput from a slot.
//
// Reading is non-blocking: poll socket() for POLLIN (and POLLOUT while wants_write()), then
// call read_frame() until it returns nullopt, then service(). Keepalives that ask for a reply
// are answered from service() at once; status updates carry write = the last WAL position
// received and flush = what the caller confirmed with confirm().
class ReplicationStream {
public:
    explicit ReplicationStream(ReplicationOptions options);
    ~ReplicationStream();
    ReplicationStream(const ReplicationStream&) = delete;
    ReplicationStream& operator=(const ReplicationStream&) = delete;

    // Connects (replication=database, to the primary of a multi-host DSN), IDENTIFY_SYSTEM,
    // prepares publication and slot over a normal connection, and starts streaming from the
    // slot's confirmed position.
    void start();

    [[nodiscard]] int socket() const noexcept;
    // The connection is a Unix-domain socket (host= a directory), not TCP. Known once start()
    // returned.
    [[nodiscard]] bool over_unix_socket() const noexcept { return unix_socket_; }
    [[nodiscard]] const SlotState& slot() const noexcept { return slot_; }
    [[nodiscard]] const ServerIdentity& identity() const noexcept { return identity_; }
    [[nodiscard]] Lsn received() const noexcept { return received_; }
    [[nodiscard]] Lsn confirmed() const noexcept { return confirmed_; }
    [[nodiscard]] Lsn server_wal_end() const noexcept { return server_wal_end_; }
    [[nodiscard]] std::uint64_t bytes_received() const noexcept { return bytes_received_; }

    // The next frame if one is complete in libpq's buffer, else nullopt (wait for the socket).
    // Views in the frame stay valid until the next call. Throws Error when the stream ends.
    // Reads the socket once when the buffer holds no complete frame.
    std::optional<pgoutput::StreamFrame> read_frame();
    // The same without touching the socket: the next frame libpq has buffered, else nullopt.
    // With consume_input() once per readiness, a poll loop reads every frame of a burst with
    // one poll() and one recv() instead of a recv() per frame plus one that finds nothing.
    std::optional<pgoutput::StreamFrame> read_buffered_frame();
    // Reads what the socket holds into libpq's buffer (one recv()). Throws Error when the
    // connection is lost.
    void consume_input();
    // libpq's buffer may hold complete frames that poll() cannot announce: input was read
    // (consume_input(), or by libpq while it flushed output) and read_buffered_frame() has not
    // returned nullopt since.
    [[nodiscard]] bool may_have_buffered_frames() const noexcept { return maybe_buffered_; }
    // The server stores text as valid UTF-8 and sends it unconverted: server_encoding and
    // client_encoding are both UTF8. PostgreSQL checks every text value on input then.
    [[nodiscard]] bool text_is_valid_utf8() const;

    // What may be released: the end LSN of the last transaction whose events are all
    // acknowledged, or, when nothing is in flight, the last keepalive's WAL end. Never moves back.
    void confirm(Lsn flushed);

    // Sends a status update when one is due: a reply was requested, the interval passed, or
    // the confirmed position moved (coalesced). Also flushes pending output. Returns the time
    // by which service() must run again.
    std::chrono::steady_clock::time_point service(std::chrono::steady_clock::time_point now);
    // Sends a status update if none went out for `max_silence`. While the caller does not read
    // (backpressure) it cannot see keepalives asking for a reply; regular updates keep
    // wal_sender_timeout from ending the connection anyway.
    void keep_alive(std::chrono::steady_clock::time_point now, std::chrono::milliseconds max_silence);
    // Sends a status update now (e.g. before shutdown).
    void send_status(bool reply_requested = false);

    [[nodiscard]] bool wants_write() const noexcept { return pending_output_; }

    // Warnings and notices the server sent on the stream since the last call (e.g. "skipped
    // loading publication" is not among them: read_frame() throws for that one).
    std::vector<std::string> take_notices();

    // Ends the copy stream cleanly: final status update, CopyDone, then reads to the end of the
    // stream so a last-minute ErrorResponse is not missed. Bounded by `timeout`.
    void finish(std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
    void flush_output();
    void fail_stream(const std::string& context);
    static void on_notice(void* self, const PGresult* notice);

    ReplicationOptions options_;
    std::optional<Connection> conn_;
    SlotState slot_;
    ServerIdentity identity_;
    CopyBuffer buffer_;
    Lsn received_;
    Lsn confirmed_;
    Lsn last_sent_flush_;
    Lsn server_wal_end_;
    std::uint64_t bytes_received_ = 0;
    bool reply_pending_ = false;
    bool pending_output_ = false;
    bool unix_socket_ = false;
    bool streaming_ = false;
    bool maybe_buffered_ = true;
    std::chrono::steady_clock::time_point last_status_{};
    std::vector<std::string> notices_;
    // PostgreSQL 18's pgoutput skips a publication missing at a change's point in the WAL with a
    // WARNING and streams on without the outbox rows; 14-17 end the stream with an ERROR.
    std::optional<std::string> skipped_publication_;
};

}  // namespace outbox::pg

#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"
#include "outbox/options.h"
#include "pg/connection.h"
#include "pgoutput/stream_frame.h"

namespace outbox::pg {

using TableName = outbox::TableName;

// Which server the stream is on, from IDENTIFY_SYSTEM and the connection.
struct ServerIdentity {
    std::string system_id;       // the cluster's system identifier: a standby shares its primary's
    std::uint32_t timeline = 0;  // grows with every promotion
    std::string database;
    int server_version = 0;  // server_version_num, e.g. 170004
    std::string address;     // host:port the DSN settled on
};

struct ReplicationOptions {
    std::string dsn;                      // libpq conninfo or URI
    std::optional<std::string> password;  // from password_file; never logged
    std::string slot = "outbox_relay";
    std::string publication = "outbox_relay";
    std::vector<TableName> tables;  // the outbox tables the publication must cover
    // Columns every outbox table must have: {column, what names it (e.g. "outbox.columns.payload")}.
    std::vector<std::pair<std::string, std::string>> required_columns;
    bool create_slot = true;
    bool create_publication = true;
    // The publication carries UPDATEs / DELETEs of the outbox tables too (on_update/on_delete
    // other than ignore), which needs a replica identity on each table.
    bool publish_updates = false;
    bool publish_deletes = false;
    // Create the slot as a failover slot (PostgreSQL 17+), which slot synchronization keeps on
    // standbys. nullopt: where the server supports it. true: also turn it on for an existing
    // slot; a Config error before 17. false: never.
    std::optional<bool> slot_failover;
    // Called when the slot is missing, before anything is created; it may throw to refuse
    // creating the slot (e.g. because this relay streamed from that slot before).
    std::function<void(const ServerIdentity&)> before_creating_slot;
    int proto_version = 1;
    bool messages = true;  // ask pgoutput for pg_logical_emit_message too
    std::chrono::milliseconds status_interval = std::chrono::seconds(10);
    // Least time between two status updates sent because the confirmed position moved.
    std::chrono::milliseconds confirm_coalesce = std::chrono::milliseconds(200);
    std::string application_name = "outbox-relay";
};

struct SlotState {
    Lsn confirmed_flush;
    Lsn restart_lsn;
    std::string wal_status;  // reserved, extended, unreserved, lost
    bool created = false;    // this run created it
    bool failover = false;   // pg_replication_slots.failover (17+; false before)
    // The primary's synchronized_standby_slots (17+): the physical slots of standbys that must
    // have WAL before logical walsenders send it. Empty: a promoted standby may lack events the
    // relay already published.
    std::string synchronized_standby_slots;
};

// Creates or verifies the publication and the slot over a normal connection to the server
// `identity` describes. Checks everything before it creates anything. Throws a Config error
// naming what is missing and the SQL to fix it, or that the slot was invalidated (never
// silently recreated: that would skip every event in the lost WAL); a Transient error when the
// server is a standby.
SlotState prepare_publication_and_slot(Connection& conn, const ReplicationOptions& options,
                                       const ServerIdentity& identity);

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
    [[nodiscard]] const SlotState& slot() const noexcept { return slot_; }
    [[nodiscard]] const ServerIdentity& identity() const noexcept { return identity_; }
    [[nodiscard]] Lsn received() const noexcept { return received_; }
    [[nodiscard]] Lsn confirmed() const noexcept { return confirmed_; }
    [[nodiscard]] Lsn server_wal_end() const noexcept { return server_wal_end_; }
    [[nodiscard]] std::uint64_t bytes_received() const noexcept { return bytes_received_; }

    // The next frame if one is complete in libpq's buffer, else nullopt (wait for the socket).
    // Views in the frame stay valid until the next call. Throws Error when the stream ends.
    std::optional<pgoutput::StreamFrame> read_frame();

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
    bool streaming_ = false;
    std::chrono::steady_clock::time_point last_status_{};
    std::vector<std::string> notices_;
    // PostgreSQL 18's pgoutput skips a publication missing at a change's point in the WAL with a
    // WARNING and streams on without the outbox rows; 14-17 end the stream with an ERROR.
    std::optional<std::string> skipped_publication_;
};

}  // namespace outbox::pg

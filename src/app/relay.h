#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/service_notifier.h"
#include "config/config.h"
#include "kafka/publisher.h"
#include "metrics/http_server.h"
#include "metrics/relay_metrics.h"
#include "outbox/router.h"
#include "pg/replication_stream.h"
#include "pgoutput/decoder.h"
#include "pgoutput/messages.h"
#include "pgoutput/relation_cache.h"
#include "relay/ledger.h"

namespace outbox::app {

// Counters of what the relay did; read by the progress log (and the metrics exposition).
struct RelayStats {
    std::uint64_t events_published = 0;
    std::uint64_t events_dead_lettered = 0;
    std::uint64_t transactions = 0;
    std::uint64_t sessions = 0;
    Lsn confirmed;
    Lsn received;
    Lsn server_wal_end;
};

// The per-event state that travels with a Kafka message as its opaque: which transaction it
// belongs to and what it holds. Slots are reused (no heap allocation per event).
class InflightSlots {
public:
    struct Slot {
        relay::TxnTicket ticket;
        std::uint64_t bytes = 0;
        std::int64_t commit_time_us = 0;
        bool dead_letter = false;  // this message is the dead-letter copy of a refused event
    };
    std::uint64_t acquire(const Slot& slot);  // returns the cookie (never 0)
    Slot& at(std::uint64_t cookie);
    void release(std::uint64_t cookie);

private:
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;
};

// The relay: one thread, poll() over the PostgreSQL socket, the producer's wakeup fd, the
// signal fd and the status-update timer (DESIGN rule 3). A session is one replication stream
// and one producer; any failure that might lose an event ends the session without confirming
// it, and the next session resumes from the slot (duplicates, never loss).
class Relay {
public:
    // `signal_fd`: a signalfd for SIGTERM, SIGINT and SIGHUP (blocked by the caller).
    // `config_path` is read again on SIGHUP.
    Relay(config::Config config, std::string config_path, int signal_fd);
    // Runs until shutdown; returns the process exit code.
    int run();
    [[nodiscard]] const RelayStats& stats() const noexcept { return stats_; }

private:
    enum class SessionEnd { Shutdown, Stopped };
    SessionEnd run_session();
    void handle_message(const pgoutput::Message& message);
    void handle_insert(const pgoutput::Insert& insert);
    void publish(const Record& record, bool dead_letter);
    void reject(const Rejection& rejection, const Record* original_record,
                const pgoutput::RelationInfo* relation, const pgoutput::Tuple* tuple, std::uint64_t cookie);
    void on_delivery(const kafka::Delivery& delivery);
    void check_signals();
    void reload();
    void update_gauges(std::chrono::steady_clock::time_point now);
    void poll_slot_status(std::chrono::steady_clock::time_point now);
    prometheus::Counter& published_counter(const rd_kafka_message_t* message);
    bool wait_backoff(std::chrono::milliseconds delay);  // false when a signal asked to stop
    void log_progress(bool force);
    [[nodiscard]] bool backpressured() const noexcept;

    config::Config config_;
    std::string config_path_;
    int signal_fd_;
    metrics::RelayMetrics metrics_;
    metrics::HealthState health_;
    std::unique_ptr<metrics::HttpServer> http_;
    ServiceNotifier notifier_;
    OutboxRouter router_;
    RelayStats stats_;

    // Session state, rebuilt on every restart.
    std::optional<pg::ReplicationStream> stream_;
    std::optional<kafka::Publisher> publisher_;
    std::optional<relay::Ledger> ledger_;
    pgoutput::RelationCache relations_;
    pgoutput::Decoder decoder_;  // reuses its tuple buffers: no allocation per row
    InflightSlots slots_;
    std::uint64_t inflight_bytes_ = 0;
    relay::TxnTicket ticket_;
    CommitInfo commit_;
    Record record_;
    Record dead_letter_record_;
    std::optional<std::string> session_failure_;  // set by a delivery report: restart
    std::optional<std::string> stop_error_;       // on_invalid: stop was triggered
    std::uint64_t poisoned_events_ = 0;           // held pending forever by on_invalid: stop
    bool stopping_ = false;
    bool session_made_progress_ =
        false;  // some event was acknowledged: the next failure backs off from scratch
    std::optional<pg::Connection> monitor_;  // normal connection: pg_replication_slots
    std::chrono::steady_clock::time_point next_slot_poll_{};
    std::unordered_map<const rd_kafka_topic_t*, prometheus::Counter*> published_counters_;
    std::uint64_t wal_bytes_counted_ = 0;
    std::chrono::steady_clock::time_point last_progress_{};
    std::uint64_t last_progress_events_ = 0;
};

}  // namespace outbox::app

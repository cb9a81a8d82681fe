#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "app/pipeline_reporter.h"
#include "app/progress_log.h"
#include "app/service_notifier.h"
#include "app/signals.h"
#include "app/state_file.h"
#include "common/error.h"
#include "common/lsn.h"
#include "config/config.h"
#include "kafka/publisher.h"
#include "metrics/relay_metrics.h"
#include "pg/replication_stream.h"
#include "pgoutput/decoder.h"
#include "relay/pipeline.h"

namespace outbox::app {

// The process-wide parts a session reports to; owned by the Supervisor.
struct SessionContext {
    const config::Config& config;
    Signals& signals;
    ServiceNotifier& notifier;
    metrics::RelayMetrics& metrics;
    metrics::HealthState& health;
    RelayStats& stats;
    ProgressLog& progress;
    const StateFile* state;  // nullptr: no state file
};

// Ends a session that must not confirm anything more; the next session replays from the slot.
class SessionFailure : public Error {
public:
    explicit SessionFailure(const std::string& what) : Error(ErrorKind::Transient, what) {}
};

// A SessionFailure caused by Kafka (delivery failed, producer fatal) rather than PostgreSQL.
class KafkaFailure : public SessionFailure {
public:
    using SessionFailure::SessionFailure;
};

// One replication stream, one producer and one pipeline, driven by one poll() loop (DESIGN rule
// 3): read frames while the pipeline wants input, serve the producer's delivery reports, confirm
// what the pipeline says is confirmable, keep the walsender fed with status updates. A stop
// request finishes the open transaction, drains Kafka and confirms before the session ends.
class Session final {
public:
    enum class End {
        Shutdown,        // asked to stop; everything was acknowledged and confirmed
        Unacknowledged,  // asked to stop; the drain timed out with events unacknowledged
        Stopped,         // on_invalid: stop refused an event; nothing past it was confirmed
    };

    explicit Session(SessionContext context);
    // Connects and streams until it ends. Throws Error: SessionFailure/KafkaFailure and other
    // Transient errors mean "start a new session"; other kinds end the process.
    End run();
    // Some event was acknowledged in this session: the next failure backs off from scratch.
    [[nodiscard]] bool made_progress() const noexcept;
    // The session got as far as streaming from the slot.
    [[nodiscard]] bool streamed() const noexcept { return streamed_; }

private:
    void start();
    // The poll loop; run() around it.
    End stream();
    // Serves delivery reports until nothing is in flight or a deadline passes.
    void drain_kafka();
    void throw_if_failed();
    [[nodiscard]] bool wants_to_read() const noexcept;
    void on_delivery(const relay::Delivery& delivery);
    void account();
    void update_gauges(std::chrono::steady_clock::time_point now);
    End finish(bool unacknowledged);
    // Stops before a missing slot is created when the state file says this relay streamed from it.
    void refuse_lost_slot(const pg::ServerIdentity& identity) const;
    void report_failover_readiness();
    // Confirms what the pipeline says is confirmable, after the state file has it (its writes
    // coalesced unless `force`).
    void confirm(std::chrono::steady_clock::time_point now, bool force);
    // Records the slot at `confirmed` in the state file (if any); `confirmed` may then be confirmed.
    void write_state(Lsn confirmed, StateFile::Durability durability);

    SessionContext ctx_;
    PipelineReporter reporter_;
    std::optional<pg::ReplicationStream> stream_;
    std::optional<kafka::Publisher> publisher_;
    std::optional<relay::Pipeline> pipeline_;
    pgoutput::Decoder decoder_;  // reuses its tuple buffers: no allocation per row
    std::uint64_t wal_bytes_counted_ = 0;
    std::optional<KnownSlot> known_;  // what the state file said when the session started
    std::chrono::steady_clock::time_point last_state_write_{};
    Lsn persisted_;
    bool streamed_ = false;  // what the state file holds: the most the stream may confirm
};

}  // namespace outbox::app

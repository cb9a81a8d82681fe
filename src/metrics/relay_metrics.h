#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace outbox::metrics {

// Every metric the relay exposes (reference: docs/metrics.md). Handles to labelled children
// are cached, so the hot path does a hash lookup at most, never a family lookup; payloads and
// keys never become labels.
class RelayMetrics {
    // First member: everything below registers in it during construction.
    std::shared_ptr<prometheus::Registry> registry_;

public:
    explicit RelayMetrics(const std::string& version);

    [[nodiscard]] prometheus::Registry& registry() noexcept { return *registry_; }

    prometheus::Counter& published(std::string_view topic);
    prometheus::Counter& dead_lettered(std::string_view reason);
    prometheus::Counter& reconnects(std::string_view target);  // "postgres" | "kafka"
    // UPDATE/DELETE of outbox rows under on_update/on_delete: warn ("update" | "delete").
    prometheus::Counter& unexpected_operations(std::string_view operation);

    prometheus::Counter& transactions;
    prometheus::Counter& wal_received_bytes;
    prometheus::Gauge& inflight_events;
    prometheus::Gauge& inflight_bytes;
    prometheus::Gauge& received_lsn;
    prometheus::Gauge& confirmed_lsn;
    prometheus::Gauge& server_wal_end_lsn;
    prometheus::Gauge& lag_bytes;
    prometheus::Gauge& lag_seconds;
    prometheus::Gauge& lag_rows;   // source: poll
    prometheus::Gauge& poll_rows;  // source: poll
    prometheus::Gauge& confirmed_commit_timestamp_seconds;
    prometheus::Gauge& slot_safe_wal_size_bytes;
    prometheus::Histogram& commit_to_ack_seconds;
    prometheus::Gauge& postgres_connected;
    prometheus::Gauge& kafka_up;
    prometheus::Gauge& standby;
    prometheus::Gauge& slot_failover;
    prometheus::Gauge& synchronized_standby_slots;
    // Connections the metrics HTTP server closed without serving a request, by reason
    // (outbox_relay_http_rejected_connections_total). Created up front: the HTTP thread only
    // increments them.
    struct HttpRejected {
        prometheus::Counter& connection_limit;  // closed to make room for a newer connection
        prometheus::Counter& timeout;           // no complete request head in time (408)
        prometheus::Counter& too_large;         // request line or head over the limit (414, 431)
        prometheus::Counter& malformed;         // not a request the server accepts (400, 505)
    };
    HttpRejected http_rejected;

    // Sets outbox_relay_slot_wal_status{status} to 1 for `status` and 0 for the others.
    void set_slot_wal_status(std::string_view status);

private:
    prometheus::Family<prometheus::Counter>& published_family_;
    prometheus::Family<prometheus::Counter>& dead_lettered_family_;
    prometheus::Family<prometheus::Counter>& reconnects_family_;
    prometheus::Family<prometheus::Counter>& unexpected_operations_family_;
    prometheus::Family<prometheus::Gauge>& slot_status_family_;
    std::unordered_map<std::string, prometheus::Counter*> published_;
    std::unordered_map<std::string, prometheus::Counter*> dead_lettered_;
    std::unordered_map<std::string, prometheus::Counter*> reconnects_;
    std::unordered_map<std::string, prometheus::Counter*> unexpected_operations_;
};

// What /healthz and /readyz answer; written by the event loop, read by the HTTP thread.
struct HealthState {
    std::atomic<std::int64_t> last_turn_ms{0};  // steady clock, ms: the loop is turning
    std::atomic<bool> streaming{false};         // replication stream up
    std::atomic<bool> kafka_reachable{false};   // not all brokers down
};

}  // namespace outbox::metrics

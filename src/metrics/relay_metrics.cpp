#include "metrics/relay_metrics.h"

namespace outbox::metrics {
namespace {

prometheus::Counter& cached(prometheus::Family<prometheus::Counter>& family,
                            std::unordered_map<std::string, prometheus::Counter*>& cache, const char* label,
                            std::string_view value) {
    const std::string key(value);
    if (auto it = cache.find(key); it != cache.end()) return *it->second;
    prometheus::Counter& c = family.Add({{label, key}});
    cache.emplace(key, &c);
    return c;
}

RelayMetrics::HttpRejected http_rejected_counters(prometheus::Registry& registry) {
    auto& family = prometheus::BuildCounter()
                       .Name("outbox_relay_http_rejected_connections_total")
                       .Help(
                           "Connections to the metrics HTTP server closed without serving a request, "
                           "by reason.")
                       .Register(registry);
    return {family.Add({{"reason", "connection_limit"}}), family.Add({{"reason", "timeout"}}),
            family.Add({{"reason", "too_large"}}), family.Add({{"reason", "malformed"}})};
}

}  // namespace

RelayMetrics::RelayMetrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      transactions(prometheus::BuildCounter()
                       .Name("outbox_relay_transactions_total")
                       .Help("Transactions decoded from the replication stream.")
                       .Register(*registry_)
                       .Add({})),
      wal_received_bytes(prometheus::BuildCounter()
                             .Name("outbox_relay_wal_received_bytes_total")
                             .Help("Bytes received from the replication stream.")
                             .Register(*registry_)
                             .Add({})),
      inflight_events(prometheus::BuildGauge()
                          .Name("outbox_relay_inflight_events")
                          .Help("Events handed to Kafka and not yet acknowledged.")
                          .Register(*registry_)
                          .Add({})),
      inflight_bytes(prometheus::BuildGauge()
                         .Name("outbox_relay_inflight_bytes")
                         .Help("Bytes of events handed to Kafka and not yet acknowledged.")
                         .Register(*registry_)
                         .Add({})),
      received_lsn(prometheus::BuildGauge()
                       .Name("outbox_relay_received_lsn")
                       .Help("Last WAL position received from PostgreSQL, as a byte position.")
                       .Register(*registry_)
                       .Add({})),
      confirmed_lsn(prometheus::BuildGauge()
                        .Name("outbox_relay_confirmed_lsn")
                        .Help("WAL position confirmed to PostgreSQL (everything before it is in Kafka).")
                        .Register(*registry_)
                        .Add({})),
      server_wal_end_lsn(prometheus::BuildGauge()
                             .Name("outbox_relay_server_wal_end_lsn")
                             .Help("The server's end of WAL as last reported, as a byte position.")
                             .Register(*registry_)
                             .Add({})),
      lag_bytes(prometheus::BuildGauge()
                    .Name("outbox_relay_lag_bytes")
                    .Help("Server WAL end minus confirmed position, in bytes.")
                    .Register(*registry_)
                    .Add({})),
      lag_seconds(
          prometheus::BuildGauge()
              .Name("outbox_relay_lag_seconds")
              .Help("Seconds since the commit of the oldest transaction received but not yet confirmed "
                    "(0 when none).")
              .Register(*registry_)
              .Add({})),
      lag_rows(prometheus::BuildGauge()
                   .Name("outbox_relay_lag_rows")
                   .Help("source: poll: unpublished rows in the outbox table, counted every 5 s up to "
                         "100001.")
                   .Register(*registry_)
                   .Add({})),
      poll_rows(prometheus::BuildGauge()
                    .Name("outbox_relay_poll_rows")
                    .Help("source: poll: rows the last poll locked (poll.batch_size: a backlog).")
                    .Register(*registry_)
                    .Add({})),
      confirmed_commit_timestamp_seconds(
          prometheus::BuildGauge()
              .Name("outbox_relay_confirmed_commit_timestamp_seconds")
              .Help("Commit time (Unix seconds) of the last transaction confirmed to PostgreSQL.")
              .Register(*registry_)
              .Add({})),
      slot_safe_wal_size_bytes(prometheus::BuildGauge()
                                   .Name("outbox_relay_slot_safe_wal_size_bytes")
                                   .Help("pg_replication_slots.safe_wal_size: WAL that can still be written "
                                         "before the slot is in danger of being invalidated.")
                                   .Register(*registry_)
                                   .Add({})),
      commit_to_ack_seconds(
          prometheus::BuildHistogram()
              .Name("outbox_relay_commit_to_ack_seconds")
              .Help("Time from the transaction's commit to Kafka's acknowledgement of an event.")
              .Register(*registry_)
              // Fine between 5 and 25 ms so a 15 ms p99 target can be read off a bucket edge
              // (le="0.015"), not interpolated; coarse beyond, up to a backlog's minutes.
              .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015,
                                                               0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                               10, 30, 60, 300})),
      postgres_connected(prometheus::BuildGauge()
                             .Name("outbox_relay_postgres_connected")
                             .Help("1 while the replication stream from PostgreSQL is up.")
                             .Register(*registry_)
                             .Add({})),
      kafka_up(prometheus::BuildGauge()
                   .Name("outbox_relay_kafka_up")
                   .Help("1 unless librdkafka reports all brokers down.")
                   .Register(*registry_)
                   .Add({})),
      standby(prometheus::BuildGauge()
                  .Name("outbox_relay_standby")
                  .Help("1 while waiting for another instance to release the replication slot.")
                  .Register(*registry_)
                  .Add({})),
      slot_failover(prometheus::BuildGauge()
                        .Name("outbox_relay_slot_failover")
                        .Help("1 when the replication slot is a failover slot (PostgreSQL 17+), else 0.")
                        .Register(*registry_)
                        .Add({})),
      synchronized_standby_slots(
          prometheus::BuildGauge()
              .Name("outbox_relay_synchronized_standby_slots")
              .Help("1 when the primary's synchronized_standby_slots is set (PostgreSQL "
                    "17+), else 0.")
              .Register(*registry_)
              .Add({})),
      http_rejected(http_rejected_counters(*registry_)),
      published_family_(prometheus::BuildCounter()
                            .Name("outbox_relay_events_published_total")
                            .Help("Outbox events acknowledged by Kafka, by topic.")
                            .Register(*registry_)),
      dead_lettered_family_(prometheus::BuildCounter()
                                .Name("outbox_relay_events_dead_lettered_total")
                                .Help("Outbox events sent to the dead-letter topic, by reason.")
                                .Register(*registry_)),
      reconnects_family_(prometheus::BuildCounter()
                             .Name("outbox_relay_reconnects_total")
                             .Help("Sessions restarted after a failure, by the side that failed.")
                             .Register(*registry_)),
      unexpected_operations_family_(
          prometheus::BuildCounter()
              .Name("outbox_relay_unexpected_operations_total")
              .Help("UPDATEs and DELETEs of outbox rows seen under on_update/on_delete: "
                    "warn, by operation.")
              .Register(*registry_)),
      slot_status_family_(prometheus::BuildGauge()
                              .Name("outbox_relay_slot_wal_status")
                              .Help("pg_replication_slots.wal_status of the relay's slot (1 = current).")
                              .Register(*registry_)) {
    prometheus::BuildGauge()
        .Name("outbox_relay_build_info")
        .Help("Build information; always 1.")
        .Register(*registry_)
        .Add({{"version", version}})
        .Set(1);
    for (const char* status : {"reserved", "extended", "unreserved", "lost"})
        slot_status_family_.Add({{"status", status}});
    // Known labels start at 0 so rate() and alerts see them before the first increment.
    for (const char* target : {"postgres", "kafka"}) (void)reconnects(target);
}

prometheus::Counter& RelayMetrics::published(std::string_view topic) {
    return cached(published_family_, published_, "topic", topic);
}
prometheus::Counter& RelayMetrics::dead_lettered(std::string_view reason) {
    return cached(dead_lettered_family_, dead_lettered_, "reason", reason);
}
prometheus::Counter& RelayMetrics::reconnects(std::string_view target) {
    return cached(reconnects_family_, reconnects_, "target", target);
}
prometheus::Counter& RelayMetrics::unexpected_operations(std::string_view operation) {
    return cached(unexpected_operations_family_, unexpected_operations_, "operation", operation);
}

void RelayMetrics::set_slot_wal_status(std::string_view status) {
    for (const char* s : {"reserved", "extended", "unreserved", "lost"}) {
        slot_status_family_.Add({{"status", s}}).Set(status == s ? 1 : 0);
    }
}

}  // namespace outbox::metrics

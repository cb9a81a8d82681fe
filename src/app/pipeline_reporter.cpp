#include "app/pipeline_reporter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "app/logging.h"

namespace outbox::app {
namespace {

std::int64_t unix_now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

PipelineReporter::PipelineReporter(const config::Config& config, metrics::RelayMetrics& metrics,
                                   RelayStats& stats)
    : config_(config), metrics_(metrics), stats_(stats) {}

void PipelineReporter::settled(const relay::Delivery& delivery, const relay::Settled& settled) {
    if (!settled.event_published) return;
    published_counter(delivery.topic).Increment();
    metrics_.commit_to_ack_seconds.Observe(
        static_cast<double>(std::max<std::int64_t>(0, unix_now_us() - settled.commit_time_unix_us)) / 1e6);
}

void PipelineReporter::update_gauges(const relay::Pipeline& pipeline) {
    metrics_.inflight_events.Set(static_cast<double>(pipeline.unacknowledged()));
    metrics_.inflight_bytes.Set(static_cast<double>(pipeline.inflight_bytes()));
    const auto oldest = pipeline.oldest_pending_commit_time();
    metrics_.lag_seconds.Set(
        oldest ? static_cast<double>(std::max<std::int64_t>(0, unix_now_us() - *oldest)) / 1e6 : 0.0);
    if (const std::int64_t confirmed = pipeline.confirmed_commit_time(); confirmed != 0) {
        metrics_.confirmed_commit_timestamp_seconds.Set(static_cast<double>(confirmed) / 1e6);
    }
}

void PipelineReporter::account(const relay::PipelineCounters& now) {
    const std::uint64_t transactions = now.transactions - counted_.transactions;
    if (transactions != 0) metrics_.transactions.Increment(static_cast<double>(transactions));
    stats_.transactions += transactions;
    stats_.events_published += now.events_published - counted_.events_published;
    stats_.events_dead_lettered += now.events_dead_lettered - counted_.events_dead_lettered;
    counted_ = now;
}

prometheus::Counter& PipelineReporter::published_counter(std::string_view topic) {
    // The sink names a topic by the same pointer for the life of its producer.
    if (topic.data() == last_topic_) return *last_topic_counter_;
    auto it = published_counters_.find(std::string(topic));
    if (it == published_counters_.end()) {
        it = published_counters_.emplace(std::string(topic), &metrics_.published(topic)).first;
    }
    last_topic_ = topic.data();
    last_topic_counter_ = it->second;
    return *it->second;
}

void PipelineReporter::dead_lettered(const CommitInfo& txn, const Rejection& why, bool announced) {
    metrics_.dead_lettered(why.code).Increment();
    const LogFields fields{{"xid", std::to_string(txn.xid.value())},
                           {"lsn", txn.commit_lsn.to_string()},
                           {"topic", config_.outbox.dead_letter_topic},
                           {"error_code", std::string(why.code)}};
    spdlog::log(announced ? spdlog::level::debug : spdlog::level::warn,
                "outbox event in transaction {} (commit {}) sent to dead-letter topic \"{}\" ({}): {}",
                txn.xid.value(), txn.commit_lsn.to_string(), config_.outbox.dead_letter_topic, why.code,
                why.detail);
}

void PipelineReporter::outbox_columns_missing(const pgoutput::RelationInfo& relation,
                                              const std::vector<std::string>& missing) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    spdlog::warn(
        "outbox table {} changed and has no column {} now: its rows follow on_invalid ({}) until the table "
        "or the configuration is fixed (counted in outbox_relay_events_dead_lettered_total, reason "
        "missing_column; one line per table change, not per row)",
        relation.qualified_name(), list, config::to_string(config_.outbox.on_invalid));
}

void PipelineReporter::unexpected_operation(const CommitInfo& txn, const pgoutput::RelationInfo& relation,
                                            std::string_view operation) {
    metrics_.unexpected_operations(operation).Increment();
    const LogFields fields{{"xid", std::to_string(txn.xid.value())},
                           {"lsn", txn.commit_lsn.to_string()},
                           {"table", relation.qualified_name()},
                           {"operation", std::string(operation)}};
    spdlog::warn(
        "{} of a row of outbox table {} in transaction {} (commit {}): outbox rows are only inserted; "
        "nothing published (outbox.on_{}: warn)",
        operation == "update" ? "an UPDATE" : "a DELETE", relation.qualified_name(), txn.xid.value(),
        txn.commit_lsn.to_string(), operation);
}

void PipelineReporter::refused_stopping(const CommitInfo& txn, const Rejection& why) {
    const LogFields fields{{"xid", std::to_string(txn.xid.value())},
                           {"lsn", txn.commit_lsn.to_string()},
                           {"error_code", std::string(why.code)}};
    spdlog::error("outbox event in transaction {} (commit {}) rejected ({}): {}", txn.xid.value(),
                  txn.commit_lsn.to_string(), why.code, why.detail);
}

}  // namespace outbox::app

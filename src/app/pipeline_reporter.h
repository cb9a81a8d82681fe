#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/progress_log.h"
#include "config/config.h"
#include "metrics/relay_metrics.h"
#include "relay/pipeline.h"

namespace outbox::app {

// What a pipeline does, told to operators: the log lines and metrics of its Observer calls, of
// each settled delivery, and its counters added to the process's figures. One per session,
// whatever the source (WAL or polling).
class PipelineReporter final : public relay::Observer {
public:
    PipelineReporter(const config::Config& config, metrics::RelayMetrics& metrics, RelayStats& stats);

    // After pipeline.on_delivery(): the published counter by topic and the commit-to-ack latency.
    void settled(const relay::Delivery& delivery, const relay::Settled& settled);
    // Adds what the pipeline counted since the last call to the stats and metrics.
    void account(const relay::PipelineCounters& counters);
    [[nodiscard]] const relay::PipelineCounters& counted() const noexcept { return counted_; }
    // The in-flight and lag gauges from the pipeline's state.
    void update_gauges(const relay::Pipeline& pipeline);

    void dead_lettered(const CommitInfo& txn, const Rejection& why, bool announced) override;
    void refused_stopping(const CommitInfo& txn, const Rejection& why) override;
    void outbox_columns_missing(const pgoutput::RelationInfo& relation,
                                const std::vector<std::string>& missing) override;
    void unexpected_operation(const CommitInfo& txn, const pgoutput::RelationInfo& relation,
                              std::string_view operation) override;

private:
    prometheus::Counter& published_counter(std::string_view topic);

    const config::Config& config_;
    metrics::RelayMetrics& metrics_;
    RelayStats& stats_;
    relay::PipelineCounters counted_;   // what account() has already added
    const char* last_topic_ = nullptr;  // the sink's stable name of the last published topic
    prometheus::Counter* last_topic_counter_ = nullptr;
    std::unordered_map<std::string, prometheus::Counter*> published_counters_;
};

}  // namespace outbox::app

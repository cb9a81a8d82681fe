#include "app/progress_log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace outbox::app {

namespace {
constexpr auto kProgressInterval = std::chrono::seconds(10);
}  // namespace

void ProgressLog::maybe_log(const RelayStats& stats, bool force) {
    using Clock = std::chrono::steady_clock;
    const auto now = Clock::now();
    if (!force && now - last_ < kProgressInterval) return;
    if (!force && stats.events_published == last_events_) {
        last_ = now;
        return;
    }
    const double secs = std::chrono::duration<double>(now - last_).count();
    const double rate = last_ == Clock::time_point{} || secs <= 0
                            ? 0.0
                            : static_cast<double>(stats.events_published - last_events_) / secs;
    if (stats.polling) {
        spdlog::info("published {} events ({:.0f}/s), {} dead-lettered, {} batches; backlog {} rows",
                     stats.events_published, rate, stats.events_dead_lettered, stats.batches,
                     stats.backlog_rows);
        notifier_.status(fmt::format("polling; {} events published ({:.0f}/s); backlog {} rows",
                                     stats.events_published, rate, stats.backlog_rows));
        last_ = now;
        last_events_ = stats.events_published;
        return;
    }
    const std::uint64_t lag = bytes_between(stats.confirmed, stats.server_wal_end);
    spdlog::info(
        "published {} events ({:.0f}/s), {} dead-lettered, {} transactions; confirmed {}, lag {} bytes",
        stats.events_published, rate, stats.events_dead_lettered, stats.transactions,
        stats.confirmed.to_string(), lag);
    notifier_.status(fmt::format("streaming; {} events published ({:.0f}/s); lag {} bytes",
                                 stats.events_published, rate, lag));
    last_ = now;
    last_events_ = stats.events_published;
}

}  // namespace outbox::app

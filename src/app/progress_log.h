#pragma once

#include <chrono>
#include <cstdint>

#include "app/service_notifier.h"
#include "common/lsn.h"

namespace outbox::app {

// What the relay did over the life of the process (all sessions).
struct RelayStats {
    std::uint64_t events_published = 0;
    std::uint64_t events_dead_lettered = 0;
    std::uint64_t transactions = 0;
    std::uint64_t sessions = 0;
    Lsn confirmed;  // what this process last confirmed (0/0 before the first session streamed)
    Lsn received;
    Lsn server_wal_end;
    // source: poll: batches committed (their rows deleted or marked) and the last backlog count.
    bool polling = false;
    std::uint64_t batches = 0;
    std::uint64_t backlog_rows = 0;
};

// A progress line every 10 s while events flow (and the systemd STATUS= text with it).
class ProgressLog {
public:
    explicit ProgressLog(ServiceNotifier& notifier) : notifier_(notifier) {}
    // Logs when the interval passed and events were published since, or always with `force`.
    void maybe_log(const RelayStats& stats, bool force);

private:
    ServiceNotifier& notifier_;
    std::chrono::steady_clock::time_point last_{};
    std::uint64_t last_events_ = 0;
};

}  // namespace outbox::app

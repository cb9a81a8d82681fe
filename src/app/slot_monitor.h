#pragma once

#include <optional>
#include <string>
#include <thread>

#include "metrics/relay_metrics.h"

namespace outbox::app {

// Watches the relay's slot in pg_replication_slots (wal_status, safe_wal_size) every few seconds
// over a normal connection, on its own thread so a slow or unreachable server never stalls the
// event loop. Monitoring only: its failures are logged and retried, the stream is unaffected.
// Destruction interrupts a connect or query in progress and joins at once.
class SlotMonitor {
public:
    SlotMonitor(std::string dsn, std::optional<std::string> password, std::string slot,
                metrics::RelayMetrics& metrics);
    ~SlotMonitor();
    SlotMonitor(const SlotMonitor&) = delete;
    SlotMonitor& operator=(const SlotMonitor&) = delete;

private:
    void run();

    std::string dsn_;
    std::optional<std::string> password_;
    std::string slot_;
    metrics::RelayMetrics& metrics_;
    int stop_fd_ = -1;  // eventfd: readable once the monitor must stop
    std::thread thread_;
};

}  // namespace outbox::app

#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "app/progress_log.h"
#include "app/service_notifier.h"
#include "app/signals.h"
#include "app/state_file.h"
#include "config/config.h"
#include "metrics/http_server.h"
#include "metrics/relay_metrics.h"

namespace outbox::app {

// Owns the process around the sessions: runs one Session after another, backs off with jitter
// after a failure that retrying may fix, waits as a standby while another instance holds the
// slot, serves signals (stop, SIGHUP reload), the metrics endpoint and systemd notifications,
// and turns the way the last session ended into the process exit code.
class Supervisor {
public:
    // `signal_fd`: a signalfd for SIGTERM, SIGINT and SIGHUP (blocked by the caller).
    // `config_path` is read again on SIGHUP.
    Supervisor(config::Config config, std::string config_path, int signal_fd);
    // Runs until shutdown; returns the process exit code.
    int run();
    [[nodiscard]] const RelayStats& stats() const noexcept { return stats_; }

private:
    void reload();
    // Keeps /healthz and the systemd watchdog fed while no session runs.
    void heartbeat();
    bool wait(std::chrono::milliseconds delay);  // false when a signal asked to stop
    [[nodiscard]] bool polling() const noexcept { return config_.source == config::Source::Poll; }

    config::Config config_;
    std::string config_path_;
    metrics::RelayMetrics metrics_;
    metrics::HealthState health_;
    std::unique_ptr<metrics::HttpServer> http_;
    ServiceNotifier notifier_;
    Signals signals_;
    RelayStats stats_;
    ProgressLog progress_;
    std::optional<StateFile> state_;
};

}  // namespace outbox::app

#include "app/supervisor.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "app/component_options.h"
#include "app/logging.h"
#include "app/poll_session.h"
#include "app/session.h"
#include "common/version.h"
#include "pg/connection.h"

namespace outbox::app {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kBackoffInitial = 500ms;
constexpr auto kBackoffMax = 30s;
// A standby retries the slot quickly so it takes over within seconds of the holder's death.
constexpr auto kStandbyRetry = 1s;
constexpr const char* kSlotActiveSqlstate = "55006";
// A stop that could not wait for Kafka: nothing is lost (the events are sent again at the next
// start), but it was not a clean drain (EX_TEMPFAIL; docs/operations.md, "Exit codes").
constexpr int kExitUnacknowledged = 75;

// Runs one session of `Kind` (Session: the WAL; PollSession: the poller) to its end; when it
// throws, says first whether it made progress and got as far as streaming (polling).
template <class Kind>
Session::End run_session(const SessionContext& context, bool& made_progress, bool& streamed) {
    Kind session(context);
    try {
        return session.run();
    } catch (const Error&) {
        made_progress = session.made_progress();
        streamed = session.streamed();
        throw;
    }
}

}  // namespace

Supervisor::Supervisor(config::Config config, std::string config_path, int signal_fd)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      metrics_(kVersion),
      signals_(
          signal_fd, [this] { reload(); }, [this] { notifier_.stopping(); }),
      progress_(notifier_) {
    if (polling()) {
        const std::string table =
            config_.outbox.tables.empty() ? "" : config_.outbox.tables.front().qualified();
        set_process_log_fields({{"table", table}});
    } else {
        set_process_log_fields({{"slot", config_.postgres.slot}});
    }
    // What can be checked without a connection, before anything is created.
    kafka::check_properties(publisher_options(config_));
    if (config_.metrics.enabled) {
        http_ = std::make_unique<metrics::HttpServer>(config_.metrics.host, config_.metrics.port, metrics_,
                                                      health_);
        spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz)", config_.metrics.host,
                     http_->port());
    }
    health_.last_turn_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    if (polling()) {
        // The poller keeps no position of its own: the table's unpublished rows are its state.
    } else if (const auto path = config::state_file_path(config_.postgres)) {
        state_.emplace(*path);
        state_->check_usable();  // a Config error (exit 78) before anything is created
        spdlog::info("state file {}", *path);
    } else {
        spdlog::warn(
            "no state file (postgres.state_file is not set and there is no $STATE_DIRECTORY): if the slot "
            "goes "
            "missing (a failover, a DROP) the relay cannot tell and creates it anew, skipping events; see "
            "docs/operations.md, \"The state file\"");
    }
}

void Supervisor::reload() {
    notifier_.reloading();
    try {
        config::Config fresh = config::load_config_file(config_path_);
        const config::LogConfig old_log = config_.log;
        setup_logging(fresh.log);
        config_.log = fresh.log;
        fresh.log = old_log;
        fresh.origin = config_.origin;
        const bool others_changed = config::describe(fresh) != config::describe(config_);
        spdlog::info("SIGHUP: reloaded {}: log level {}, format {}{}", config_path_,
                     config::to_string(config_.log.level), config::to_string(config_.log.format),
                     others_changed ? "; other changed settings take effect after a restart" : "");
    } catch (const Error& e) {
        spdlog::error("SIGHUP: keeping the running configuration: {}", e.what());
    }
    notifier_.ready();
}

void Supervisor::heartbeat() {
    const auto now = Clock::now();
    health_.last_turn_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    notifier_.watchdog(now);
    health_.kafka_reachable = false;
    metrics_.kafka_up.Set(0);
}

bool Supervisor::wait(std::chrono::milliseconds delay) {
    const auto deadline = Clock::now() + delay;
    while (!signals_.stopping()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return true;
        pollfd pfd{signals_.fd(), POLLIN, 0};
        ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
        signals_.check();
        heartbeat();
    }
    return false;
}

int Supervisor::run() {
    std::mt19937_64 rng(std::random_device{}());
    auto backoff = std::chrono::milliseconds(kBackoffInitial);
    while (true) {
        bool made_progress = false;
        bool streamed = false;
        try {
            const SessionContext context{config_, signals_, notifier_, metrics_,
                                         health_, stats_,   progress_, state_ ? &*state_ : nullptr};
            const Session::End end = config_.source == config::Source::Poll
                                         ? run_session<PollSession>(context, made_progress, streamed)
                                         : run_session<Session>(context, made_progress, streamed);
            switch (end) {
                case Session::End::Stopped: return exit_code(ErrorKind::Config);
                case Session::End::Unacknowledged:
                    if (polling()) {
                        spdlog::warn("stopped with events unacknowledged; their rows were not deleted");
                    } else {
                        spdlog::warn("stopped with events unacknowledged; confirmed {}",
                                     stats_.confirmed.to_string());
                    }
                    return kExitUnacknowledged;
                case Session::End::Shutdown: break;
            }
            if (polling()) {
                spdlog::info("stopped; every published row was {}",
                             config_.poll.after_publish == config::AfterPublish::Mark ? "marked" : "deleted");
            } else {
                spdlog::info("stopped; confirmed {}", stats_.confirmed.to_string());
            }
            return 0;
        } catch (const Error& e) {
            const LogFields fields{{"error_kind", std::string(to_string(e.kind()))}};
            health_.streaming = false;
            metrics_.postgres_connected.Set(0);
            const auto* server_error = dynamic_cast<const pg::ServerError*>(&e);
            if (server_error != nullptr && server_error->sqlstate() == kSlotActiveSqlstate &&
                !signals_.stopping()) {
                // Another instance holds the slot: wait as a standby and take over when it is released.
                if (metrics_.standby.Value() == 0) {
                    spdlog::info("standby: {}; retrying every {} s", e.what(),
                                 std::chrono::seconds(kStandbyRetry).count());
                    notifier_.status(polling() ? "standby: another instance polls the outbox table"
                                               : "standby: replication slot is active in another instance");
                }
                metrics_.standby.Set(1);
                notifier_.ready();  // a standby is a started service: do not hold `systemctl start`
                if (!wait(kStandbyRetry)) return 0;
                continue;
            }
            metrics_.reconnects(dynamic_cast<const KafkaFailure*>(&e) != nullptr ? "kafka" : "postgres")
                .Increment();
            if (e.kind() != ErrorKind::Transient) {
                spdlog::critical("{} error: {}", to_string(e.kind()), e.what());
                return exit_code(e.kind());
            }
            if (signals_.stopping()) {
                spdlog::warn("stopping after error: {}", e.what());
                return 0;
            }
            if (made_progress) backoff = std::chrono::milliseconds(kBackoffInitial);
            // Decorrelated jitter: spread reconnects of many relays, never hammer a sick server.
            std::uniform_int_distribution<long> dist(
                kBackoffInitial.count(), std::max<long>(kBackoffInitial.count(), backoff.count() * 3));
            backoff = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(dist(rng)), kBackoffMax);
            // Nothing to restart from when the session never streamed (no connection, no slot yet).
            const char* restart = polling() ? "polling again (the batch was rolled back)"
                                            : "restarting from the slot's confirmed position";
            spdlog::error("{}; {} in {} ms", e.what(), streamed ? restart : "retrying", backoff.count());
            notifier_.status("reconnecting: " + std::string(e.what()));
            if (!wait(backoff)) return 0;
        }
    }
}

}  // namespace outbox::app

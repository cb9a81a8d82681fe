#include "app/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace outbox::app {

ServiceNotifier::ServiceNotifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket != nullptr && *socket != '\0';
    std::uint64_t usec = 0;
    if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_interval_ = std::chrono::microseconds(usec);
    }
}

void ServiceNotifier::send(const std::string& state) {
    if (enabled_) sd_notify(0, state.c_str());
}

void ServiceNotifier::ready() {
    // Also after a reconnect or a reload: READY=1 is idempotent for systemd.
    send("READY=1");
    ready_sent_ = true;
}

void ServiceNotifier::stopping() {
    send("STOPPING=1");
}

void ServiceNotifier::reloading() {
    // systemd 253+ also wants MONOTONIC_USEC; older versions ignore it.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const long long usec = static_cast<long long>(ts.tv_sec) * 1000000LL + ts.tv_nsec / 1000;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceNotifier::status(const std::string& text) {
    send("STATUS=" + text);
}

void ServiceNotifier::watchdog(std::chrono::steady_clock::time_point now) {
    if (!watchdog_interval_) return;
    if (now - last_watchdog_ >= *watchdog_interval_ / 2) {
        send("WATCHDOG=1");
        last_watchdog_ = now;
    }
}

std::optional<std::chrono::steady_clock::time_point> ServiceNotifier::next_watchdog() const {
    if (!watchdog_interval_) return std::nullopt;
    return last_watchdog_ +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(*watchdog_interval_ / 2);
}

}  // namespace outbox::app

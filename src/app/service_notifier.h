#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace outbox::app {

// Tells systemd (Type=notify) what the relay is doing: READY=1 once streaming, WATCHDOG=1
// from the event loop, STATUS=, STOPPING=1, RELOADING=1. Does nothing without NOTIFY_SOCKET.
class ServiceNotifier {
public:
    ServiceNotifier();

    void ready();
    void stopping();
    void reloading();
    void status(const std::string& text);
    // Sends WATCHDOG=1 when half the watchdog interval has passed since the last one.
    void watchdog(std::chrono::steady_clock::time_point now);
    // When the next watchdog ping is due (for the poll timeout); nullopt without a watchdog.
    [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> next_watchdog() const;

private:
    void send(const std::string& state);
    bool enabled_ = false;
    bool ready_sent_ = false;
    std::optional<std::chrono::microseconds> watchdog_interval_;
    std::chrono::steady_clock::time_point last_watchdog_{};
};

}  // namespace outbox::app

#pragma once

#include <functional>

namespace outbox::app {

// SIGTERM, SIGINT and SIGHUP, read from a signalfd on the event-loop thread (the caller blocks
// them before any thread starts). The first SIGTERM/SIGINT asks for a clean stop; a second one
// exits at once (130) without waiting for Kafka; SIGHUP calls `on_reload`.
class Signals {
public:
    Signals(int signal_fd, std::function<void()> on_reload, std::function<void()> on_stop);

    [[nodiscard]] int fd() const noexcept { return fd_; }
    // Reads every pending signal and acts on it.
    void check();
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }

private:
    int fd_;
    std::function<void()> on_reload_;
    std::function<void()> on_stop_;
    bool stopping_ = false;
};

}  // namespace outbox::app

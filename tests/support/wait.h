#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace outbox::test {

// Polls `condition` until it holds or `timeout` passes. Returns whether it held.
// Polling with a deadline, never a fixed sleep: the interval only bounds CPU use.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(interval);
    }
}

}  // namespace outbox::test

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

// The opposite of wait_until: checks that `condition` holds at every sample during the whole
// `window` (to show that something does NOT happen). Returns false at the first sample where it
// does not hold. The window is the point of the check, not a wait for something.
inline bool holds_for(const std::function<bool()>& condition, std::chrono::milliseconds window,
                      std::chrono::milliseconds interval = std::chrono::milliseconds(100)) {
    const auto end = std::chrono::steady_clock::now() + window;
    while (std::chrono::steady_clock::now() < end) {
        if (!condition()) return false;
        std::this_thread::sleep_for(interval);
    }
    return condition();
}

}  // namespace outbox::test

#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "support/process.h"

namespace outbox::test {

// The line the relay logs when a session has started streaming: `streaming from slot "x" at X/Y`.
inline constexpr const char* kStreamingLine = "streaming from slot";
// The line of a source: poll session that holds its table's lock: `polling table t on ...`.
inline constexpr const char* kPollingLine = "polling table";

// The relay daemon as a real process, on a config file written into `run_dir`.
class RelayProcess {
public:
    // Writes `config_yaml` to <run_dir>/relay-<n>.yaml and starts build/outbox-relay on it;
    // stdout and stderr go to <run_dir>/relay.log (appended across restarts).
    RelayProcess(std::string run_dir, std::string config_yaml, std::map<std::string, std::string> env = {});
    ~RelayProcess();

    void start();
    // SIGTERM and wait; returns the exit code (128+signal if killed).
    int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    void kill9();
    [[nodiscard]] bool running() { return process_.running(); }
    [[nodiscard]] pid_t pid() const { return process_.pid(); }
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    [[nodiscard]] std::string log() const;
    [[nodiscard]] const std::string& config_path() const { return config_path_; }
    // Waits until the log written since the last start() contains `text`; false on timeout or
    // when the relay exited first.
    bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout);
    // Waits until the relay started since the last start() streams from its slot (kStreamingLine).
    bool wait_streaming(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        return wait_for_log(kStreamingLine, timeout);
    }

private:
    std::string run_dir_;
    std::string config_path_;
    std::string log_path_;
    std::map<std::string, std::string> env_;
    std::size_t log_offset_ = 0;  // size of the log when the current process started
    ChildProcess process_;
};

// Path of the built relay executable.
std::string relay_binary();

// Whether `text` (e.g. a relay log) contains `what`.
inline bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

// How often `what` occurs in `text` (e.g. a line in a relay log).
inline std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
}

}  // namespace outbox::test

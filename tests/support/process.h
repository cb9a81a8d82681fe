#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace outbox::test {

struct SpawnOptions {
    std::vector<std::string> argv;               // argv[0] is looked up in PATH unless it has a '/'
    std::map<std::string, std::string> env_set;  // added to / overriding the inherited environment
    std::vector<std::string> env_unset;
    std::string stdout_path;          // empty: inherit; otherwise appended to
    std::string stderr_path;          // empty: inherit; "=stdout": same as stdout
    std::string working_dir;          // empty: inherit
    std::optional<uid_t> run_as_uid;  // drop to this user (and run_as_gid) before exec
    std::optional<gid_t> run_as_gid;
    // Signal the child gets when the spawning thread's process dies (prctl PR_SET_PDEATHSIG),
    // so a crashed test leaves no server behind. 0 = none.
    int parent_death_signal = 0;
};

// A child process owned by the test. The destructor kills it (SIGKILL) and reaps it if it is
// still running, so no test leaves a process behind, also when an assertion throws.
class ChildProcess {
public:
    ChildProcess() = default;
    explicit ChildProcess(const SpawnOptions& options);  // throws std::runtime_error
    ~ChildProcess();
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&& other) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] bool running();  // reaps if it exited
    void signal(int signo) const;

    // Waits for exit up to `timeout`. Returns the wait status, nullopt on timeout.
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    // SIGTERM (or `signo`), wait up to `grace`, then SIGKILL. Returns the wait status.
    int stop(int signo, std::chrono::milliseconds grace);

    // Exit code when it exited normally; 128+signal when killed by a signal; -1 while running.
    [[nodiscard]] int exit_code() const noexcept;

private:
    void reap_status(int status);
    pid_t pid_ = -1;
    std::optional<int> status_;
};

// Runs a command to completion and returns its exit code (128+signal if killed); its stdout is
// captured into `output` when given. Throws if it cannot be started or overruns `timeout`.
int run_command(const SpawnOptions& options, std::string* output,
                std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A free TCP port on 127.0.0.1 (bound to port 0 and released; good enough for tests).
int free_tcp_port();

std::string read_file(const std::string& path);

}  // namespace outbox::test

#include "support/relay_process.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include "support/wait.h"

namespace outbox::test {

std::string relay_binary() {
    return std::string(OUTBOX_BUILD_DIR) + "/outbox-relay";
}

RelayProcess::RelayProcess(std::string run_dir, std::string config_yaml,
                           std::map<std::string, std::string> env)
    : run_dir_(std::move(run_dir)), env_(std::move(env)) {
    static std::atomic<int> counter{0};
    config_path_ = run_dir_ + "/relay-" + std::to_string(++counter) + ".yaml";
    log_path_ = run_dir_ + "/relay.log";
    std::ofstream(config_path_) << config_yaml;
    start();
}

RelayProcess::~RelayProcess() {
    if (process_.running()) process_.stop(SIGKILL, std::chrono::seconds(10));
}

void RelayProcess::start() {
    log_offset_ = log().size();
    SpawnOptions opts;
    opts.argv = {relay_binary(), "--config", config_path_};
    opts.env_set = env_;
    opts.stdout_path = log_path_;
    opts.stderr_path = "=stdout";
    opts.parent_death_signal = SIGKILL;
    process_ = ChildProcess(opts);
}

int RelayProcess::terminate(std::chrono::milliseconds timeout) {
    process_.signal(SIGTERM);
    if (!process_.wait_for(timeout)) {
        process_.stop(SIGKILL, std::chrono::seconds(10));
        return -1;
    }
    return process_.exit_code();
}

void RelayProcess::kill9() {
    process_.stop(SIGKILL, std::chrono::seconds(10));
}

std::optional<int> RelayProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (!process_.wait_for(timeout)) return std::nullopt;
    return process_.exit_code();
}

std::string RelayProcess::log() const {
    try {
        return read_file(log_path_);
    } catch (const std::exception&) {
        return {};
    }
}

bool RelayProcess::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) {
    auto current = [&] {
        const std::string all = log();
        return all.size() > log_offset_ ? all.substr(log_offset_) : std::string();
    };
    wait_until([&] { return current().find(text) != std::string::npos || !process_.running(); }, timeout);
    if (current().find(text) != std::string::npos) return true;
    // Show why in the test's output.
    const std::string all = log();
    std::fprintf(stderr, "relay log did not show \"%s\"; its last lines:\n%s\n", text.c_str(),
                 all.substr(all.size() > 4000 ? all.size() - 4000 : 0).c_str());
    return false;
}

}  // namespace outbox::test

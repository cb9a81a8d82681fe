#include "support/mock_kafka.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "support/wait.h"

namespace outbox::test {
namespace {

constexpr auto kControlTimeout = std::chrono::seconds(10);

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

// A unix socket path must fit sockaddr_un::sun_path; deep run dirs get a short one under /tmp.
std::string control_socket_path(const std::string& run_dir) {
    std::string path = run_dir + "/mock-kafka.sock";
    if (path.size() < sizeof(sockaddr_un{}.sun_path)) return path;
    static std::atomic<int> counter{0};
    return "/tmp/mock-kafka-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".sock";
}

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

std::string mock_kafka_executable() {
    if (const char* env = std::getenv("OUTBOX_MOCK_KAFKA"); env != nullptr && *env != '\0') return env;
    return OUTBOX_BUILD_DIR "/tests/mock-kafka";
}

MockKafka::MockKafka(std::string run_dir, int brokers, std::vector<std::string> extra_args,
                     std::chrono::milliseconds startup_timeout)
    : run_dir_(std::move(run_dir)),
      brokers_(brokers),
      log_path_(run_dir_ + "/mock-kafka.log"),
      bootstrap_path_(run_dir_ + "/mock-kafka.bootstrap"),
      control_path_(control_socket_path(run_dir_)) {
    std::filesystem::create_directories(run_dir_);
    std::error_code ignored;
    std::filesystem::remove(bootstrap_path_, ignored);  // stale from an earlier broker in this dir

    const std::string exe = mock_kafka_executable();
    if (::access(exe.c_str(), X_OK) != 0) throw std::runtime_error("mock-kafka executable not found: " + exe);

    SpawnOptions options;
    options.argv = {exe,         "--brokers",  std::to_string(brokers_), "--bootstrap-file", bootstrap_path_,
                    "--control", control_path_};
    options.argv.insert(options.argv.end(), extra_args.begin(), extra_args.end());
    options.stdout_path = log_path_;
    options.stderr_path = "=stdout";
    options.parent_death_signal = SIGKILL;  // a crashed test never leaves a broker behind

    const auto started = std::chrono::steady_clock::now();
    process_ = ChildProcess(options);
    const bool up = wait_until(
        [&] { return std::filesystem::exists(bootstrap_path_) || !process_.running(); }, startup_timeout);
    startup_time_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

    std::string failure;
    if (!process_.running()) {
        failure = "mock-kafka exited during start-up with code " + std::to_string(process_.exit_code());
    } else if (!up) {
        failure = "mock-kafka did not come up within " + std::to_string(startup_timeout.count()) + " ms";
    } else {
        bootstrap_ = trim(read_file(bootstrap_path_));
        if (bootstrap_.empty()) failure = "mock-kafka wrote an empty bootstrap file";
    }
    if (!failure.empty()) {
        process_.stop(SIGKILL, std::chrono::seconds(5));
        stopped_ = true;
        ::unlink(control_path_.c_str());
        throw std::runtime_error(failure + "; log " + log_path_ + ":\n" + log_tail());
    }
}

MockKafka::~MockKafka() {
    try {
        stop();
    } catch (...) {
        // A destructor must not throw; ChildProcess's destructor still SIGKILLs the process.
    }
}

std::string MockKafka::log_tail(std::size_t max_bytes) const {
    try {
        std::string log = read_file(log_path_);
        if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
        return log;
    } catch (const std::exception& e) {
        return std::string("(no log: ") + e.what() + ")";
    }
}

std::string MockKafka::raw_command(const std::string& line) {
    if (line.find('\n') != std::string::npos) throw std::invalid_argument("control line contains a newline");
    if (stopped_) throw std::runtime_error("mock-kafka is stopped; cannot send '" + line + "'");

    Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kControlTimeout).count();
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, control_path_.c_str(), control_path_.size() + 1);
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("mock-kafka control connect " + control_path_ + ": " + std::strerror(errno) +
                                 "; log:\n" + log_tail());
    }
    const std::string request = line + "\n";
    std::size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t n = ::send(sock.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(std::string("mock-kafka control send: ") + std::strerror(errno));
        sent += static_cast<std::size_t>(n);
    }
    std::string reply;
    while (reply.find('\n') == std::string::npos) {
        char buf[1024];
        const ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            throw std::runtime_error("mock-kafka control: no reply to '" + line + "' within " +
                                     std::to_string(kControlTimeout.count()) + " s");
        if (n < 0) throw std::runtime_error(std::string("mock-kafka control recv: ") + std::strerror(errno));
        if (n == 0)
            throw std::runtime_error("mock-kafka control: connection closed without a reply to '" + line +
                                     "'");
        reply.append(buf, static_cast<std::size_t>(n));
    }
    return reply.substr(0, reply.find('\n'));
}

std::string MockKafka::command(const std::string& line) {
    const std::string reply = raw_command(line);
    if (reply == "OK") return {};
    if (reply.rfind("OK ", 0) == 0) return reply.substr(3);
    if (reply.rfind("ERR", 0) == 0) throw MockKafkaError("mock-kafka '" + line + "': " + reply);
    throw std::runtime_error("mock-kafka '" + line + "': malformed reply '" + reply + "'");
}

void MockKafka::push_errors(int apikey, const std::vector<int>& errors) {
    if (errors.empty()) throw std::invalid_argument("push_errors needs at least one error");
    std::string line = "push-errors " + std::to_string(apikey);
    for (const int e : errors) line.append(" ").append(std::to_string(e));
    command(line);
}

void MockKafka::broker_error_rtt(int broker_id, int apikey, int error, int rtt_ms) {
    command("broker-error-rtt " + std::to_string(broker_id) + " " + std::to_string(apikey) + " " +
            std::to_string(error) + " " + std::to_string(rtt_ms));
}

void MockKafka::set_rtt(int broker_id, int ms) {
    command("set-rtt " + std::to_string(broker_id) + " " + std::to_string(ms));
}

void MockKafka::create_topic(const std::string& name, int partitions, int replication_factor) {
    command("create-topic " + name + " " + std::to_string(std::max(partitions, 0)) + " " +
            std::to_string(std::max(replication_factor, 0)));
}

void MockKafka::topic_error(const std::string& name, int error) {
    command("topic-error " + name + " " + std::to_string(error));
}

void MockKafka::partition_leader(const std::string& topic, int partition, int broker_id) {
    command("partition-leader " + topic + " " + std::to_string(partition) + " " + std::to_string(broker_id));
}

int MockKafka::stop(std::chrono::milliseconds grace) {
    if (stopped_) return exit_code_;
    stopped_ = true;
    process_.stop(SIGTERM, grace);
    exit_code_ = process_.exit_code();
    if (exit_code_ != 0) {
        // Killed before it could clean up: remove what it leaves behind ourselves.
        ::unlink(control_path_.c_str());
        ::unlink(bootstrap_path_.c_str());
    }
    return exit_code_;
}

}  // namespace outbox::test

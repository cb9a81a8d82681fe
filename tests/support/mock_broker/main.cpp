// mock-kafka: librdkafka's mock Kafka cluster (rdkafka_mock.h) as a standalone process.
//
// The relay and kcat talk real Kafka protocol to it over TCP on 127.0.0.1. It runs as its own
// process so that a `kill -9` of the relay never takes the broker with it. Tests drive fault
// injection through a line-based control channel on a unix-domain socket (see `handle()` below
// and tests/support/mock_kafka.h for the client).
//
// Usage:
//   mock-kafka --bootstrap-file PATH [--brokers N] [--control PATH] [--partitions N]
//              [--replication-factor N] [--topic NAME]...
//
// Once the cluster and the control socket are up, the bootstrap list ("127.0.0.1:port,...") is
// written to PATH atomically (tmp file + rename), so a waiter that sees the file can connect to
// both. SIGTERM/SIGINT: destroy the cluster, remove the control socket and the bootstrap file,
// exit 0 (librdkafka takes a few seconds to tear the cluster down).
//
// Limits of the librdkafka 2.0.2 mock that tests must respect:
//  - Each mock partition keeps only ~5 MiB (or 100k batches) and silently drops older data:
//    large tests must consume while producing, or they will "lose" messages in the checker.
//  - Auto-created topics always get 4 partitions and replication factor min(3, brokers): the
//    default is hard-coded in rd_kafka_mock_cluster_new() and 2.0.2 has no setter. --partitions
//    and --replication-factor apply to topics created explicitly (--topic, `create-topic`).
//  - read_committed consumers see aborted transactional messages (no control records).
//  - broker-down does not move partition leadership (use partition-leader for that).

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kMaxLine = 64 * 1024;

struct Options {
    int brokers = 3;
    std::string bootstrap_file;
    std::string control_path;
    int partitions = 4;
    int replication_factor = -1;  // -1: min(3, brokers), as the mock does for auto-created topics
    std::vector<std::string> topics;
};

void log_line(const std::string& line) {
    std::fprintf(stderr, "mock-kafka: %s\n", line.c_str());
    std::fflush(stderr);
}

[[noreturn]] void die(const std::string& message, int code = 1) {
    log_line("error: " + message);
    std::exit(code);
}

std::optional<long long> parse_int(std::string_view text) {
    long long value = 0;
    const char* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
    return value;
}

int parse_int_arg(const std::string& name, const std::string& text, long long min, long long max) {
    const auto value = parse_int(text);
    if (!value || *value < min || *value > max) die("invalid value for " + name + ": '" + text + "'", 2);
    return static_cast<int>(*value);
}

Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + arg, 2);
            return argv[++i];
        };
        if (arg == "--brokers") {
            options.brokers = parse_int_arg(arg, value(), 1, 64);
        } else if (arg == "--bootstrap-file") {
            options.bootstrap_file = value();
        } else if (arg == "--control") {
            options.control_path = value();
        } else if (arg == "--partitions") {
            options.partitions = parse_int_arg(arg, value(), 1, 10000);
        } else if (arg == "--replication-factor") {
            options.replication_factor = parse_int_arg(arg, value(), 1, 64);
        } else if (arg == "--topic") {
            options.topics.push_back(value());
        } else if (arg == "--help" || arg == "-h") {
            std::printf(
                "usage: mock-kafka --bootstrap-file PATH [--brokers N] [--control PATH]\n"
                "                  [--partitions N] [--replication-factor N] [--topic NAME]...\n");
            std::exit(0);
        } else {
            die("unknown option " + arg, 2);
        }
    }
    if (options.bootstrap_file.empty()) die("--bootstrap-file is required", 2);
    if (options.control_path.empty()) options.control_path = options.bootstrap_file + ".sock";
    if (options.replication_factor < 0) options.replication_factor = std::min(3, options.brokers);
    if (options.replication_factor > options.brokers) die("--replication-factor exceeds --brokers", 2);
    return options;
}

std::vector<std::string> split_words(std::string_view line) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) words.emplace_back(line.substr(start, i - start));
    }
    return words;
}

// An error code given as a number (6, -185) or as a name, with or without the enum prefix
// (NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT).
std::optional<rd_kafka_resp_err_t> parse_error_code(std::string_view text) {
    if (const auto number = parse_int(text)) return static_cast<rd_kafka_resp_err_t>(*number);
    constexpr std::string_view prefix = "RD_KAFKA_RESP_ERR_";
    if (text.substr(0, prefix.size()) == prefix) text.remove_prefix(prefix.size());
    const rd_kafka_err_desc* descs = nullptr;
    std::size_t count = 0;
    rd_kafka_get_err_descs(&descs, &count);
    for (std::size_t i = 0; i < count; ++i) {
        if (descs[i].name != nullptr && text == descs[i].name) return descs[i].code;
    }
    return std::nullopt;
}

class ControlHandler {
public:
    ControlHandler(rd_kafka_mock_cluster_t* cluster, const Options& options, std::string bootstrap)
        : cluster_(cluster), options_(options), bootstrap_(std::move(bootstrap)) {}

    // One command line in, one reply line out (without the newline).
    std::string handle(std::string_view line) {
        const auto words = split_words(line);
        if (words.empty()) return "ERR empty command";
        const std::string& cmd = words[0];
        const std::size_t argc = words.size() - 1;
        auto arity = [&](std::size_t min, std::size_t max, const char* usage) -> std::optional<std::string> {
            if (argc < min || argc > max) return std::string("ERR usage: ") + usage;
            return std::nullopt;
        };
        auto result = [](rd_kafka_resp_err_t err) -> std::string {
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return "OK";
            return std::string("ERR ") + rd_kafka_err2name(err) + ": " + rd_kafka_err2str(err);
        };

        if (cmd == "ping") {
            if (auto e = arity(0, 0, "ping")) return *e;
            return "OK pong";
        }
        if (cmd == "bootstrap") {
            if (auto e = arity(0, 0, "bootstrap")) return *e;
            return "OK " + bootstrap_;
        }
        if (cmd == "brokers") {
            if (auto e = arity(0, 0, "brokers")) return *e;
            return "OK " + std::to_string(options_.brokers);
        }
        if (cmd == "broker-down" || cmd == "broker-up") {
            if (auto e = arity(1, 1, "broker-down|broker-up <id>")) return *e;
            const auto id = parse_int(words[1]);
            if (!id) return "ERR invalid broker id '" + words[1] + "'";
            const auto broker = static_cast<int32_t>(*id);
            return result(cmd == "broker-down" ? rd_kafka_mock_broker_set_down(cluster_, broker)
                                               : rd_kafka_mock_broker_set_up(cluster_, broker));
        }
        if (cmd == "all-down" || cmd == "all-up") {
            if (auto e = arity(0, 0, "all-down|all-up")) return *e;
            for (int32_t broker = 1; broker <= options_.brokers; ++broker) {
                const auto err = cmd == "all-down" ? rd_kafka_mock_broker_set_down(cluster_, broker)
                                                   : rd_kafka_mock_broker_set_up(cluster_, broker);
                if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return result(err);
            }
            return "OK";
        }
        if (cmd == "push-errors") {
            if (auto e = arity(2, 1000, "push-errors <apikey> <err> [<err>...]")) return *e;
            const auto apikey = parse_int(words[1]);
            if (!apikey || *apikey < 0 || *apikey > 32767) return "ERR invalid apikey '" + words[1] + "'";
            std::vector<rd_kafka_resp_err_t> errors;
            for (std::size_t i = 2; i < words.size(); ++i) {
                const auto err = parse_error_code(words[i]);
                if (!err) return "ERR invalid error code '" + words[i] + "'";
                errors.push_back(*err);
            }
            rd_kafka_mock_push_request_errors_array(cluster_, static_cast<int16_t>(*apikey), errors.size(),
                                                    errors.data());
            return "OK";
        }
        if (cmd == "clear-errors") {
            if (auto e = arity(1, 1, "clear-errors <apikey>")) return *e;
            const auto apikey = parse_int(words[1]);
            if (!apikey || *apikey < 0 || *apikey > 32767) return "ERR invalid apikey '" + words[1] + "'";
            rd_kafka_mock_clear_request_errors(cluster_, static_cast<int16_t>(*apikey));
            return "OK";
        }
        if (cmd == "broker-error-rtt") {
            if (auto e = arity(4, 4, "broker-error-rtt <broker> <apikey> <err> <rtt_ms>")) return *e;
            const auto broker = parse_int(words[1]);
            const auto apikey = parse_int(words[2]);
            const auto err = parse_error_code(words[3]);
            const auto rtt = parse_int(words[4]);
            if (!broker) return "ERR invalid broker id '" + words[1] + "'";
            if (!apikey || *apikey < 0 || *apikey > 32767) return "ERR invalid apikey '" + words[2] + "'";
            if (!err) return "ERR invalid error code '" + words[3] + "'";
            if (!rtt || *rtt < 0 || *rtt > 3600000) return "ERR invalid rtt '" + words[4] + "'";
            return result(rd_kafka_mock_broker_push_request_error_rtts(
                cluster_, static_cast<int32_t>(*broker), static_cast<int16_t>(*apikey), 1, *err,
                static_cast<int>(*rtt)));
        }
        if (cmd == "set-rtt") {
            if (auto e = arity(2, 2, "set-rtt <broker> <ms>")) return *e;
            const auto broker = parse_int(words[1]);
            const auto rtt = parse_int(words[2]);
            if (!broker) return "ERR invalid broker id '" + words[1] + "'";
            if (!rtt || *rtt < 0 || *rtt > 3600000) return "ERR invalid rtt '" + words[2] + "'";
            return result(rd_kafka_mock_broker_set_rtt(cluster_, static_cast<int32_t>(*broker),
                                                       static_cast<int>(*rtt)));
        }
        if (cmd == "create-topic") {
            if (auto e = arity(1, 3, "create-topic <name> [<partitions> [<replication>]]")) return *e;
            long long partitions = options_.partitions;
            long long replication = options_.replication_factor;
            // 0 (or omitted) takes the default: --partitions, --replication-factor.
            if (argc >= 2) {
                const auto p = parse_int(words[2]);
                if (!p || *p < 0 || *p > 10000) return "ERR invalid partition count '" + words[2] + "'";
                if (*p > 0) partitions = *p;
            }
            if (argc >= 3) {
                const auto r = parse_int(words[3]);
                if (!r || *r < 0 || *r > options_.brokers)
                    return "ERR invalid replication factor '" + words[3] + "'";
                if (*r > 0) replication = *r;
            }
            return result(rd_kafka_mock_topic_create(cluster_, words[1].c_str(), static_cast<int>(partitions),
                                                     static_cast<int>(replication)));
        }
        if (cmd == "topic-error") {
            if (auto e = arity(2, 2, "topic-error <name> <err>")) return *e;
            const auto err = parse_error_code(words[2]);
            if (!err) return "ERR invalid error code '" + words[2] + "'";
            rd_kafka_mock_topic_set_error(cluster_, words[1].c_str(), *err);
            return "OK";
        }
        if (cmd == "partition-leader") {
            if (auto e = arity(3, 3, "partition-leader <topic> <partition> <broker>")) return *e;
            const auto partition = parse_int(words[2]);
            const auto broker = parse_int(words[3]);
            if (!partition || *partition < 0) return "ERR invalid partition '" + words[2] + "'";
            if (!broker) return "ERR invalid broker id '" + words[3] + "'";
            return result(rd_kafka_mock_partition_set_leader(
                cluster_, words[1].c_str(), static_cast<int32_t>(*partition), static_cast<int32_t>(*broker)));
        }
        return "ERR unknown command '" + cmd + "'";
    }

private:
    rd_kafka_mock_cluster_t* cluster_;
    const Options& options_;
    std::string bootstrap_;
};

int listen_unix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path)
        die("control socket path too long (max " + std::to_string(sizeof addr.sun_path - 1) + "): " + path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
    ::unlink(path.c_str());  // a stale socket from a killed predecessor
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        die("bind " + path + ": " + std::strerror(errno));
    if (::listen(fd, 16) != 0) die(std::string("listen: ") + std::strerror(errno));
    return fd;
}

void write_file_atomically(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
        out.flush();
        if (!out) die("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) die("rename " + tmp + ": " + std::strerror(errno));
}

struct Client {
    int fd = -1;
    std::string buffer;
};

void send_reply(int fd, const std::string& reply) {
    const std::string line = reply + "\n";
    std::size_t sent = 0;
    while (sent < line.size()) {
        const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the client went away or stopped reading (SO_SNDTIMEO): its loss
        sent += static_cast<std::size_t>(n);
    }
}

// Reads what is available and answers every complete line. Returns false when the client is done.
bool serve_client(Client& client, ControlHandler& handler) {
    char buf[4096];
    const ssize_t n = ::recv(client.fd, buf, sizeof buf, 0);
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    if (n == 0) return false;
    client.buffer.append(buf, static_cast<std::size_t>(n));
    std::size_t pos;
    while ((pos = client.buffer.find('\n')) != std::string::npos) {
        std::string line = client.buffer.substr(0, pos);
        client.buffer.erase(0, pos + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string reply = handler.handle(line);
        log_line("control: " + line + " -> " + reply);
        send_reply(client.fd, reply);
    }
    if (client.buffer.size() > kMaxLine) {
        send_reply(client.fd, "ERR line too long");
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const auto started = std::chrono::steady_clock::now();
    const Options options = parse_options(argc, argv);

    // Signals are taken through a signalfd on the main loop. Block them before librdkafka starts
    // its threads, so those inherit the mask and no thread takes SIGTERM the default way.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) die("sigprocmask failed");
    ::signal(SIGPIPE, SIG_IGN);
    const int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) die(std::string("signalfd: ") + std::strerror(errno));

    // The mock cluster needs an rd_kafka_t for its bookkeeping; a producer without brokers
    // (as librdkafka's own tests do) that never produces anything.
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // log_level 4: hide the notice "No `bootstrap.servers` configured" of this broker-less handle.
    if (rd_kafka_conf_set(conf, "client.id", "mock-kafka", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        die(errstr);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == nullptr) die(std::string("rd_kafka_new: ") + errstr);
    rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, options.brokers);
    if (cluster == nullptr) die("rd_kafka_mock_cluster_new failed");
    const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);

    for (const auto& topic : options.topics) {
        const auto err = rd_kafka_mock_topic_create(cluster, topic.c_str(), options.partitions,
                                                    options.replication_factor);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) die("create topic " + topic + ": " + rd_kafka_err2str(err));
    }
    if (options.partitions != 4) {
        log_line("note: auto-created topics still get 4 partitions (hard-coded in librdkafka " +
                 std::string(rd_kafka_version_str()) + "); --partitions applies to --topic and create-topic");
    }

    const int listen_fd = listen_unix(options.control_path);
    ControlHandler handler(cluster, options, bootstrap);

    // Last: the bootstrap file is the readiness signal, so the control socket already listens.
    write_file_atomically(options.bootstrap_file, bootstrap);
    const auto startup_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
            .count();
    std::printf("mock-kafka ready bootstrap=%s control=%s brokers=%d pid=%d startup_ms=%lld\n",
                bootstrap.c_str(), options.control_path.c_str(), options.brokers,
                static_cast<int>(::getpid()), static_cast<long long>(startup_ms));
    std::fflush(stdout);

    std::vector<Client> clients;
    int exit_signal = 0;
    while (exit_signal == 0) {
        std::vector<pollfd> fds;
        fds.push_back({signal_fd, POLLIN, 0});
        fds.push_back({listen_fd, POLLIN, 0});
        for (const auto& c : clients) fds.push_back({c.fd, POLLIN, 0});
        const int ready = ::poll(fds.data(), fds.size(), -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die(std::string("poll: ") + std::strerror(errno));
        }
        if (fds[0].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
                exit_signal = static_cast<int>(info.ssi_signo);
        }
        // Clients first (their indices match `fds`), then new connections.
        std::vector<Client> still_open;
        for (std::size_t i = 0; i < clients.size(); ++i) {
            const short revents = fds[i + 2].revents;
            bool keep = true;
            if (revents & POLLIN) {
                keep = serve_client(clients[i], handler);
            } else if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
                keep = false;
            }
            if (keep) {
                still_open.push_back(std::move(clients[i]));
            } else {
                ::close(clients[i].fd);
            }
        }
        clients = std::move(still_open);
        if (fds[1].revents & POLLIN) {
            while (true) {
                const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd < 0) break;  // EAGAIN: no more pending
                timeval send_timeout{1, 0};
                ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
                clients.push_back(Client{fd, {}});
            }
        }
    }

    const auto stopping = std::chrono::steady_clock::now();
    log_line("received " + std::string(strsignal(exit_signal)) + ", shutting down");
    for (const auto& c : clients) ::close(c.fd);
    ::close(listen_fd);
    ::unlink(options.control_path.c_str());
    ::unlink(options.bootstrap_file.c_str());
    auto ms_since = [](std::chrono::steady_clock::time_point t) {
        return std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
                .count());
    };
    rd_kafka_mock_cluster_destroy(cluster);
    const std::string cluster_ms = ms_since(stopping);
    rd_kafka_destroy(rk);
    ::close(signal_fd);
    log_line("stopped in " + ms_since(stopping) + " ms (cluster destroy " + cluster_ms + " ms)");
    return 0;
}

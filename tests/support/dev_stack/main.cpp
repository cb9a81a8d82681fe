// outbox-dev-stack: a throwaway PostgreSQL 15 and a mock Kafka cluster for the local demo
// (scripts/demo) and for trying the relay by hand.
//
// Usage: outbox-dev-stack --dir DIR [--brokers N]
//
// Starts PostgreSQL (tests/support/pg_cluster.h) under DIR/pg and librdkafka's mock cluster
// (tests/support/mock_kafka.h) under DIR/kafka, creates the demo database `shop` with the tables
// `orders` and `outbox` (Debezium's outbox shape), writes DIR/env (shell-sourceable NAME='value'
// lines: OUTBOX_DEMO_DSN, OUTBOX_DEMO_SOCKET_DSN, OUTBOX_DEMO_BOOTSTRAP, OUTBOX_DEMO_PG_PORT, ...)
// and prints "dev stack ready". Then it waits for SIGINT/SIGTERM/SIGHUP, stops Kafka and
// PostgreSQL cleanly and exits 0. Both servers are its children with a parent-death signal, so
// a kill -9 of the stack takes them down too. A previous run's DIR/pg, DIR/kafka and DIR/env are
// replaced on start.
//
// When run as root, PostgreSQL runs as the `postgres` OS user, which must be able to reach
// DIR/pg. If it cannot (e.g. DIR is under /root, mode 0700), or if the unix socket path would be
// too long, the cluster lives in /tmp/outbox-dev-stack-XXXXXX and DIR/pg is a symlink to it.
#include <pwd.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/mock_kafka.h"
#include "support/outbox_table.h"
#include "support/pg_cluster.h"
#include "support/process.h"

namespace fs = std::filesystem;
using namespace outbox::test;

namespace {

constexpr const char* kUsage =
    "Usage: outbox-dev-stack --dir DIR [--brokers N]\n"
    "\n"
    "Runs a throwaway PostgreSQL 15 (wal_level=logical, database `shop` with tables `orders`\n"
    "and `outbox`) and librdkafka's mock Kafka cluster until SIGINT/SIGTERM, for the demo.\n"
    "\n"
    "  --dir DIR      run directory: DIR/pg, DIR/kafka, and DIR/env (shell-sourceable variables)\n"
    "  --brokers N    mock Kafka brokers (default 3)\n"
    "  --help\n"
    "\n"
    "Environment: OUTBOX_MOCK_KAFKA (mock-kafka executable), OUTBOX_PG_BIN (PostgreSQL server binaries).\n";

constexpr std::string_view kTmpPrefix = "outbox-dev-stack-";

constexpr const char* kOrdersDdl = R"sql(
CREATE TABLE orders (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer   text NOT NULL,
    total      numeric(10,2) NOT NULL,
    created_at timestamptz DEFAULT now()
)
)sql";

struct Options {
    std::string dir;
    int brokers = 3;
};

void say(const std::string& line) {
    std::fprintf(stdout, "outbox-dev-stack: %s\n", line.c_str());
    std::fflush(stdout);
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "outbox-dev-stack: %s\n\n%s", message.c_str(), kUsage);
    std::exit(64);
}

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (arg == "--dir") {
            o.dir = value();
        } else if (arg == "--brokers") {
            const std::string text = value();
            int n = 0;
            const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc() || ptr != text.data() + text.size() || n < 1 || n > 16) {
                usage_error("--brokers needs a number from 1 to 16, not '" + text + "'");
            }
            o.brokers = n;
        } else {
            usage_error("unknown option '" + std::string(arg) + "'");
        }
    }
    if (o.dir.empty()) usage_error("--dir is required");
    return o;
}

// NAME='value' with the value quoted for sh.
std::string shell_assignment(const std::string& name, const std::string& value) {
    std::string out = name + "='";
    for (const char c : value) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

// Whether the server's OS user can reach `dir`. Only a question when we are root: PgCluster then
// runs the server as `postgres`.
bool server_user_can_reach(const std::string& dir) {
    if (geteuid() != 0) return true;
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) return true;  // PgCluster reports the missing user itself
    SpawnOptions check;
    check.argv = {"test", "-x", dir};
    check.run_as_uid = pw->pw_uid;
    check.run_as_gid = pw->pw_gid;
    check.working_dir = "/";
    return run_command(check, nullptr, std::chrono::seconds(10)) == 0;
}

// A postmaster from an earlier stack may still use `pg_dir` (it is a child of that stack, so it
// normally dies with it): never delete a live server's data directory.
void refuse_if_server_running(const fs::path& pg_dir) {
    std::ifstream pidfile(pg_dir / "data" / "postmaster.pid");
    long pid = 0;
    if (!(pidfile >> pid) || pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) return;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    if (comm >> name && name == "postgres") {
        throw std::runtime_error("a PostgreSQL server (pid " + std::to_string(pid) + ") still runs in " +
                                 pg_dir.string() + "; stop the other outbox-dev-stack first");
    }
}

// Removes DIR/pg (and the /tmp directory it points to if it is one of ours), DIR/kafka, DIR/env.
void remove_previous_run(const fs::path& dir) {
    const fs::path pg = dir / "pg";
    refuse_if_server_running(pg);
    if (fs::is_symlink(pg)) {
        const fs::path target = fs::read_symlink(pg);
        if (target.parent_path() == "/tmp" && target.filename().string().rfind(kTmpPrefix, 0) == 0) {
            fs::remove_all(target);
        }
        fs::remove(pg);
    } else {
        fs::remove_all(pg);
    }
    fs::remove_all(dir / "kafka");
    fs::remove(dir / "env");
}

// Where the cluster lives: DIR/pg, or a /tmp directory that DIR/pg links to.
std::string prepare_pg_run_dir(const fs::path& dir) {
    const fs::path pg = dir / "pg";
    // The unix socket DIR/pg/.s.PGSQL.<port> must fit sun_path (107 bytes + NUL).
    const bool socket_fits = (pg / ".s.PGSQL.65535").string().size() < sizeof(sockaddr_un{}.sun_path);
    const bool reachable = server_user_can_reach(dir.string());
    if (socket_fits && reachable) return pg.string();

    std::string tmpl = "/tmp/" + std::string(kTmpPrefix) + "XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    // mkdtemp makes it 0700; PgCluster chowns it to the server user and opens it up.
    fs::permissions(tmpl, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    fs::create_directory_symlink(tmpl, pg);
    say(std::string("note: ") +
        (reachable ? "the socket path under " + dir.string() + " would be too long"
                   : "the postgres user cannot reach " + dir.string()) +
        "; PostgreSQL lives in " + tmpl + " (" + pg.string() + " links there)");
    return tmpl;
}

void write_env_file(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& vars) {
    const fs::path tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << "# written by outbox-dev-stack (pid " << ::getpid() << "); source with: set -a; . "
            << path.string() << "; set +a\n";
        for (const auto& [name, value] : vars) out << shell_assignment(name, value) << "\n";
        out.flush();
        if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, path);  // atomic: a poller never sees half a file
}

// Reads signals until one asks us to stop; returns it. SIGCHLD wakes us to check the servers.
int wait_for_stop_signal(int sigfd, PgCluster& pg, MockKafka& kafka) {
    while (true) {
        signalfd_siginfo info{};
        const ssize_t n = ::read(sigfd, &info, sizeof info);
        if (n < 0 && errno == EINTR) continue;
        if (n != static_cast<ssize_t>(sizeof info)) throw std::runtime_error("reading the signal fd failed");
        if (info.ssi_signo != SIGCHLD) return static_cast<int>(info.ssi_signo);
        if (!pg.running()) throw std::runtime_error("PostgreSQL exited unexpectedly; log:\n" + pg.log());
        if (!kafka.running())
            throw std::runtime_error("mock-kafka exited unexpectedly; log:\n" + kafka.log_tail());
    }
}

int run(const Options& options) {
    // A program started as a background job of a non-interactive shell has SIGINT ignored: keep
    // it that way (the shell's Ctrl-C is meant for the shell; scripts/demo stops us with SIGTERM).
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    struct sigaction current {};
    if (::sigaction(SIGINT, nullptr, &current) == 0 && current.sa_handler != SIG_IGN)
        sigaddset(&mask, SIGINT);
    ::signal(SIGCHLD, SIG_DFL);
    // A closed stdout must not kill us before we stop the servers. A handler, not SIG_IGN, so the
    // servers (exec'd) get the default disposition back.
    struct sigaction on_pipe {};
    on_pipe.sa_handler = [](int) {};
    ::sigaction(SIGPIPE, &on_pipe, nullptr);
    // Blocked from here on: a signal during start-up stays pending and is read once we are up.
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) throw std::runtime_error("sigprocmask failed");
    const int sigfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (sigfd < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));

    const fs::path dir = fs::absolute(options.dir).lexically_normal();
    fs::create_directories(dir);
    remove_previous_run(dir);

    PgClusterOptions pg_options;
    pg_options.run_dir = prepare_pg_run_dir(dir);
    say("starting PostgreSQL in " + pg_options.run_dir);
    auto pg = std::make_unique<PgCluster>(pg_options);
    say("PostgreSQL " + pg->query_value("SHOW server_version").value_or("?") + " up on 127.0.0.1:" +
        std::to_string(pg->port()) + " (pid " + std::to_string(pg->postmaster_pid()) + ")");

    say("starting mock Kafka (" + std::to_string(options.brokers) + " brokers) in " +
        (dir / "kafka").string());
    auto kafka = std::make_unique<MockKafka>((dir / "kafka").string(), options.brokers);
    say("mock Kafka up on " + kafka->bootstrap() + " (pid " + std::to_string(kafka->pid()) + ")");

    pg->exec("CREATE DATABASE shop");
    pg->exec(kOrdersDdl, "shop");
    // The outbox as a service would declare it: the routing columns NOT NULL.
    pg->exec(outbox_ddl(OutboxTable{.routing_not_null = true}), "shop");
    say("created database shop with tables orders and outbox");

    const std::vector<std::pair<std::string, std::string>> vars = {
        {"OUTBOX_DEMO_DSN", pg->tcp_dsn("shop")},
        {"OUTBOX_DEMO_SOCKET_DSN", pg->unix_dsn("shop")},
        {"OUTBOX_DEMO_BOOTSTRAP", kafka->bootstrap()},
        {"OUTBOX_DEMO_PG_PORT", std::to_string(pg->port())},
        {"OUTBOX_DEMO_PG_LOG", pg->run_dir() + "/postgres.log"},
        {"OUTBOX_DEMO_KAFKA_LOG", kafka->log_path()},
        {"OUTBOX_DEMO_KAFKA_CONTROL", kafka->control_path()},
    };
    const fs::path env_path = dir / "env";
    write_env_file(env_path, vars);
    std::string ready =
        "dev stack ready (pid " + std::to_string(::getpid()) + "; " + env_path.string() + "):";
    for (const auto& [name, value] : vars) ready += "\n  " + shell_assignment(name, value);
    say(ready);

    int exit_code = 0;
    try {
        const int signo = wait_for_stop_signal(sigfd, *pg, *kafka);
        say(std::string("got SIG") + sigabbrev_np(signo) + ", stopping");
    } catch (const std::exception& e) {
        say(std::string("error: ") + e.what());
        exit_code = 1;
    }
    ::close(sigfd);
    std::error_code ignored;
    fs::remove(env_path, ignored);  // no longer true

    const int kafka_rc = kafka->stop(std::chrono::seconds(15));
    if (kafka_rc != 0 && exit_code == 0) {
        say("mock Kafka did not stop cleanly (exit " + std::to_string(kafka_rc) + ")");
        exit_code = 1;
    }
    kafka.reset();
    try {
        pg->stop(PgCluster::StopMode::Fast, std::chrono::seconds(15));
    } catch (const std::exception& e) {
        say(std::string("PostgreSQL: ") + e.what());
        exit_code = 1;
    }
    pg.reset();
    say(exit_code == 0 ? "stopped" : "stopped (with errors)");
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_args(argc, argv);
    try {
        return run(options);
    } catch (const std::exception& e) {
        // The destructors have stopped whatever was started.
        std::fprintf(stderr, "outbox-dev-stack: error: %s\n", e.what());
        return 1;
    }
}

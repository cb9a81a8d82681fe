#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "app/component_options.h"
#include "app/logging.h"
#include "app/preflight.h"
#include "app/supervisor.h"
#include "common/error.h"
#include "common/version.h"
#include "config/config.h"
#include "kafka/publisher.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/outbox-relay/outbox-relay.yaml";

constexpr const char* kUsage =
    "Usage: outbox-relay [--config PATH] [--check-config | --preflight]\n"
    "\n"
    "Relays transactional outbox events from PostgreSQL (logical replication, pgoutput)\n"
    "to Kafka with at-least-once delivery.\n"
    "\n"
    "Options:\n"
    "  --config PATH     configuration file (default /etc/outbox-relay/outbox-relay.yaml)\n"
    "  --check-config    validate the configuration (offline), print a summary, and exit\n"
    "  --preflight       run every start-up check against PostgreSQL and Kafka without creating\n"
    "                    anything, print one line per check, exit 0 (all passed) or 78\n"
    "  --version         print the version and exit\n"
    "  --help            print this help and exit\n"
    "\n"
    "Exit codes: 0 stopped cleanly, 64 usage, 69 unavailable, 70 internal error,\n"
    "76 protocol error, 78 configuration error (see docs/operations.md).\n";

}  // namespace

int main(int argc, char** argv) {
    // Block the signals we serve through a signalfd before anything else, so one that arrives
    // during start-up is queued for the event loop instead of killing the process mid-setup.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);

    std::string config_path = kDefaultConfig;
    bool check_only = false;
    bool preflight = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--version") {
            std::printf("outbox-relay %s (git %s)\n", outbox::kVersion, outbox::kGitCommit);
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (arg == "--check-config") {
            check_only = true;
        } else if (arg == "--preflight") {
            preflight = true;
        } else if (arg == "--config") {
            if (i + 1 >= argc || argv[i + 1][0] == '\0' ||
                std::string_view(argv[i + 1]).substr(0, 2) == "--") {
                std::fprintf(
                    stderr,
                    "outbox-relay: --config needs a path: --config /etc/outbox-relay/outbox-relay.yaml\n");
                return 64;  // EX_USAGE
            }
            config_path = argv[++i];
        } else if (arg.substr(0, 9) == "--config=") {
            config_path = std::string(arg.substr(9));
        } else {
            std::fprintf(stderr, "outbox-relay: unknown option '%s'\n\n%s", argv[i], kUsage);
            return 64;  // EX_USAGE
        }
    }

    outbox::config::Config config;
    try {
        config = outbox::config::load_config_file(config_path);
        if (check_only) {
            (void)outbox::config::read_password(config.postgres);  // the file must be readable too
            // kafka.properties as librdkafka itself takes them, offline (no broker contacted).
            outbox::kafka::check_properties(outbox::app::publisher_options(config));
            std::printf("%s\nconfiguration OK: %s\n", outbox::config::describe(config).c_str(),
                        config_path.c_str());
            return 0;
        }
        if (preflight) {
            outbox::app::setup_logging({outbox::config::LogLevel::Warn, config.log.format});
            return outbox::app::run_preflight(config, config_path, stdout);
        }
    } catch (const outbox::Error& e) {
        std::fprintf(stderr, "outbox-relay: %s\n", e.what());
        return outbox::exit_code(e.kind());
    }

    outbox::app::setup_logging(config.log);
    const int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) {
        spdlog::critical("signalfd failed: {}", std::strerror(errno));
        return 70;
    }
    // A closed consumer of our stderr must not kill us mid-delivery.
    signal(SIGPIPE, SIG_IGN);

    spdlog::info("outbox-relay {} starting: config {}, PostgreSQL {}", outbox::kVersion, config_path,
                 outbox::config::mask_dsn(config.postgres.dsn));
    try {
        outbox::app::Supervisor supervisor(std::move(config), config_path, signal_fd);
        return supervisor.run();
    } catch (const outbox::Error& e) {
        spdlog::critical("{} error: {}", outbox::to_string(e.kind()), e.what());
        return outbox::exit_code(e.kind());
    } catch (const std::exception& e) {
        spdlog::critical("internal error: {}", e.what());
        return 70;
    }
}

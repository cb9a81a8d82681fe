#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/version.h"

namespace {

constexpr const char* kUsage =
    "Usage: outbox-relay [OPTIONS]\n"
    "\n"
    "Relays transactional outbox events from PostgreSQL (logical replication, pgoutput)\n"
    "to Kafka with at-least-once delivery.\n"
    "\n"
    "Options:\n"
    "  --config PATH     configuration file (default /etc/outbox-relay/outbox-relay.yaml)\n"
    "  --check-config    validate the configuration and exit\n"
    "  --version         print the version and exit\n"
    "  --help            print this help and exit\n";

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--version") {
            std::printf("outbox-relay %s\n", outbox::kVersion);
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        std::fprintf(stderr, "outbox-relay: unknown option '%s'\n\n%s", argv[i], kUsage);
        return 64;  // EX_USAGE
    }
    std::fputs("outbox-relay: the relay is not implemented yet; see --help\n", stderr);
    return 64;
}

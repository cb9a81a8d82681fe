#pragma once

#include <cstdio>
#include <string>

#include "config/config.h"

namespace outbox::app {

// outbox-relay --preflight: every check the relay makes before it streams, and the ones it can
// only make by asking (role attributes, capacity, Kafka metadata), run against the real
// PostgreSQL and Kafka without creating or changing anything. Prints one line per check to
// `out` ("ok", "warn" or "FAIL", its name, what it found or the fix) and returns the exit code:
// 0 when nothing failed, 78 otherwise.
int run_preflight(const config::Config& config, const std::string& config_path, std::FILE* out);

}  // namespace outbox::app

#pragma once

// metrics.listen: the address of the HTTP server for /metrics and the health endpoints.

#include <string>
#include <string_view>

#include "config/config.h"

namespace outbox::config {

// "host:port", "[ipv6]:port", or "" to disable the server. Returns an error message, or ""
// after setting `metrics`.
std::string parse_listen(std::string_view text, MetricsConfig& metrics);

// The address as written in the file ("[::1]:9187"), or `"" (disabled)`.
std::string format_listen(const MetricsConfig& metrics);

}  // namespace outbox::config

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

struct ListenAddress {
    using Value = MetricsConfig;
    static std::string_view expected() { return "a string"; }
    static std::string parse(const std::string& text, Value& out);
    static std::string show(const Value& value) { return format_listen(value); }
};

}  // namespace outbox::config

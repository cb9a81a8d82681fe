#include "config/listen_address.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/text.h"

namespace outbox::config {

std::string parse_listen(std::string_view text, MetricsConfig& metrics) {
    if (text.empty()) {
        metrics.enabled = false;
        metrics.host.clear();
        metrics.port = 0;
        return {};
    }
    const auto bad = [&](std::string_view why) {
        return fmt::format("expected host:port (or \"\" to disable), got {}: {}", quote(text), why);
    };
    std::string host;
    std::string_view port_text;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        host = std::string(text.substr(1, close - 1));
        if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :port");
        port_text = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("missing :port");
        host = std::string(text.substr(0, colon));
        if (host.find(':') != std::string::npos)
            return bad("write IPv6 addresses in brackets, e.g. [::1]:9187");
        port_text = text.substr(colon + 1);
    }
    if (host.empty()) return bad("the host is missing (use 0.0.0.0 to listen on all interfaces)");
    if (std::any_of(host.begin(), host.end(), is_space)) return bad("the host contains whitespace");
    const auto port = parse_uint(port_text);
    if (!port || *port > 65535) return bad("the port must be a number from 0 to 65535");
    metrics.enabled = true;
    metrics.host = std::move(host);
    metrics.port = static_cast<std::uint16_t>(*port);
    return {};
}

std::string format_listen(const MetricsConfig& metrics) {
    if (!metrics.enabled) return "\"\" (disabled)";
    if (metrics.host.find(':') != std::string::npos)
        return fmt::format("[{}]:{}", metrics.host, metrics.port);
    return fmt::format("{}:{}", metrics.host, metrics.port);
}

std::string ListenAddress::parse(const std::string& text, Value& out) {
    MetricsConfig parsed;
    if (auto err = parse_listen(text, parsed); !err.empty()) return err;
    out = std::move(parsed);
    return {};
}

}  // namespace outbox::config

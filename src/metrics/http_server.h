#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "metrics/http_request.h"
#include "metrics/relay_metrics.h"

namespace outbox::metrics {

// What one client can cost the server (docs/metrics.md, "HTTP server"). The defaults are what the
// relay runs with; tests shorten them.
struct HttpLimits {
    std::size_t max_request_head = kMaxRequestHead;     // request line + headers; beyond: 414 / 431
    std::chrono::milliseconds request_timeout{5000};    // from accept to a complete head; then 408
    std::chrono::milliseconds response_timeout{10000};  // to send the answer to a slow reader
    std::size_t max_connections = 64;  // beyond: the oldest connection still without a request goes
};

// The only thread besides the event loop: serves /metrics (Prometheus text format), /healthz
// (200 while the event loop turns) and /readyz (200 while streaming and Kafka is reachable).
// One poll() loop over the listening socket and every connection, all non-blocking; one request
// per connection, answered with `Connection: close`.
class HttpServer {
public:
    // `port` 0 lets the OS choose (see port()). Throws Error(Config) when it cannot listen.
    HttpServer(const std::string& host, std::uint16_t port, RelayMetrics& metrics, const HealthState& health,
               HttpLimits limits = {});
    // Stops the thread at once (an eventfd wakes its poll()) and closes every connection.
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    [[nodiscard]] int port() const noexcept { return port_; }

private:
    class Loop;
    std::unique_ptr<Loop> loop_;
    std::thread thread_;
    int port_ = 0;
};

}  // namespace outbox::metrics

#pragma once

#include <memory>
#include <string>

#include "metrics/relay_metrics.h"

class CivetServer;

namespace outbox::metrics {

// The only thread besides the event loop: serves /metrics (Prometheus text format), /healthz
// (200 while the event loop turns) and /readyz (200 while streaming and Kafka is reachable).
class HttpServer {
public:
    // `port` 0 lets the OS choose (see port()). Throws Error(Config) when it cannot listen.
    HttpServer(const std::string& host, std::uint16_t port, RelayMetrics& metrics, const HealthState& health);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    [[nodiscard]] int port() const noexcept { return port_; }

private:
    struct Handlers;
    std::unique_ptr<Handlers> handlers_;
    std::unique_ptr<CivetServer> server_;
    int port_ = 0;
};

}  // namespace outbox::metrics

#include "metrics/http_server.h"

#include <CivetServer.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <cstring>

#include "common/error.h"

namespace outbox::metrics {
namespace {

// The event loop wakes at least once a second; a minute without a turn means it is stuck.
constexpr std::int64_t kStuckAfterMs = 60'000;

void respond(mg_connection* conn, int status, const char* content_type, const std::string& body) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
              "Connection: close\r\n\r\n",
              status, status == 200 ? "OK" : "Service Unavailable", content_type, body.size());
    mg_write(conn, body.data(), body.size());
}

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

struct HttpServer::Handlers {
    struct Metrics final : CivetHandler {
        RelayMetrics* metrics = nullptr;
        bool handleGet(CivetServer*, mg_connection* conn) override {
            const std::string body = prometheus::TextSerializer().Serialize(metrics->registry().Collect());
            respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body);
            return true;
        }
    };
    struct Healthz final : CivetHandler {
        const HealthState* health = nullptr;
        bool handleGet(CivetServer*, mg_connection* conn) override {
            const std::int64_t idle = steady_ms() - health->last_turn_ms.load();
            if (idle < kStuckAfterMs) {
                respond(conn, 200, "text/plain", "ok\n");
            } else {
                respond(conn, 503, "text/plain",
                        "event loop has not turned for " + std::to_string(idle / 1000) + " s\n");
            }
            return true;
        }
    };
    struct Readyz final : CivetHandler {
        const HealthState* health = nullptr;
        bool handleGet(CivetServer*, mg_connection* conn) override {
            const bool streaming = health->streaming.load();
            const bool kafka = health->kafka_reachable.load();
            if (streaming && kafka) {
                respond(conn, 200, "text/plain", "ready\n");
            } else {
                std::string why;
                if (!streaming) why += "not streaming from PostgreSQL\n";
                if (!kafka) why += "Kafka not reachable\n";
                respond(conn, 503, "text/plain", why);
            }
            return true;
        }
    };
    Metrics metrics;
    Healthz healthz;
    Readyz readyz;
};

HttpServer::HttpServer(const std::string& host, std::uint16_t port, RelayMetrics& metrics,
                       const HealthState& health)
    : handlers_(std::make_unique<Handlers>()) {
    handlers_->metrics.metrics = &metrics;
    handlers_->healthz.health = &health;
    handlers_->readyz.health = &health;
    const bool v6 = host.find(':') != std::string::npos;
    const std::string listen = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    try {
        server_ = std::make_unique<CivetServer>(std::vector<std::string>{
            "listening_ports", listen, "num_threads", "2", "enable_keep_alive", "no"});
    } catch (const CivetException& e) {
        throw Error(ErrorKind::Config, "metrics.listen: cannot listen on " + listen + ": " + e.what());
    }
    const auto ports = server_->getListeningPorts();
    port_ = ports.empty() ? 0 : ports.front();
    server_->addHandler("/metrics", &handlers_->metrics);
    server_->addHandler("/healthz", &handlers_->healthz);
    server_->addHandler("/readyz", &handlers_->readyz);
}

HttpServer::~HttpServer() {
    if (server_) server_->close();
}

}  // namespace outbox::metrics

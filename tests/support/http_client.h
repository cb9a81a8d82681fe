#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace outbox::test {

struct HttpResponse {
    int status = 0;  // 0: no connection / no valid response
    std::string body;
};

// A plain HTTP/1.1 GET to 127.0.0.1:port (tests only; no TLS, no redirects).
HttpResponse http_get(int port, const std::string& path,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

// From a Prometheus text exposition: the value of the unlabelled sample `name`, or of the first
// sample of `name` whose labels contain `labels`; nullopt when there is none.
std::optional<double> metric_sample(const std::string& exposition, const std::string& name,
                                    const std::string& labels = "");

}  // namespace outbox::test

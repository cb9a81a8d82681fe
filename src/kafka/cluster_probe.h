#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "kafka/publisher.h"

namespace outbox::kafka {

// What a metadata request to the cluster says (for --preflight): no message is produced.
struct ClusterProbe {
    std::optional<std::string> error;  // the cluster did not answer (brokers unreachable, auth)
    int brokers = 0;
    // Every topic the metadata lists, with "" or librdkafka's error for it (e.g. not authorized).
    std::map<std::string, std::string> topics;
};

// Asks the brokers in options.bootstrap_servers, with the relay's producer configuration, for the
// cluster's metadata within `timeout`.
ClusterProbe probe_cluster(const PublisherOptions& options, std::chrono::milliseconds timeout);

}  // namespace outbox::kafka

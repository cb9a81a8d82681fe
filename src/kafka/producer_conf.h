#pragma once

// The librdkafka configuration of the relay's producer (private to src/kafka/).

#include <librdkafka/rdkafka.h>

#include <memory>

#include "kafka/publisher.h"

namespace outbox::kafka {

struct ConfDeleter {
    void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
};
using ConfHandle = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// The relay's own settings (idempotence, acks=all, ...), then the user's kafka.properties.
// Throws Error(Config) naming the property librdkafka refuses. Creates no producer.
ConfHandle make_conf(const PublisherOptions& options);

}  // namespace outbox::kafka

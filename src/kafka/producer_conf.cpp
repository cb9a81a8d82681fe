#include "kafka/producer_conf.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "common/error.h"

namespace outbox::kafka {
namespace {

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value, std::string_view where) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        throw Error(ErrorKind::Config, std::string(where) + key + ": " + errstr);
    }
}

bool has_property(const PublisherOptions& options, std::string_view key) {
    return std::any_of(options.properties.begin(), options.properties.end(),
                       [&](const auto& p) { return p.first == key; });
}

}  // namespace

ConfHandle make_conf(const PublisherOptions& options) {
    ConfHandle conf(rd_kafka_conf_new());
    // Correctness settings first; the config loader rejects user properties that weaken them.
    set(conf.get(), "bootstrap.servers", options.bootstrap_servers, "kafka.bootstrap_servers: ");
    set(conf.get(), "enable.idempotence", "true", "");
    set(conf.get(), "acks", "all", "");
    // Never give up on an event by default: while the brokers are away the relay stops reading
    // (backpressure) and the slot holds. A finite timeout (kafka.properties) makes the relay
    // restart its session instead; librdkafka then skips the timed-out messages and may deliver
    // later ones of the same partition first, which drop_unsent() keeps to a minimum.
    set(conf.get(), "message.timeout.ms", "0", "");
    set(conf.get(), "partitioner", "murmur2_random", "");  // same key -> same partition as Java clients
    set(conf.get(), "client.id", options.client_id, "");
    // Defaults that suit a relay; the user's properties below may override them.
    set(conf.get(), "linger.ms", "5", "");
    set(conf.get(), "compression.type", "lz4", "");
    set(conf.get(), "queue.buffering.max.messages",
        std::to_string(std::min<std::uint64_t>(options.max_inflight_events + 10000, 2147483647)), "");
    for (const auto& [key, value] : options.properties) set(conf.get(), key, value, "kafka.properties.");
    if (!has_property(options, "log_level")) set(conf.get(), "log_level", "6", "");

    return conf;
}

}  // namespace outbox::kafka

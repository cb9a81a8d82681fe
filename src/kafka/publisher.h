#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outbox/record.h"
#include "relay/sink.h"

namespace outbox::kafka {

struct PublisherOptions {
    std::string bootstrap_servers;
    // kafka.properties from the config, applied after the relay's own settings.
    std::vector<std::pair<std::string, std::string>> properties;
    std::string client_id = "outbox-relay";
    // Room librdkafka's local queue must have: the relay's own in-flight bound plus headroom.
    std::uint64_t max_inflight_events = 100000;
};

// Checks every property as librdkafka would take it (names, values, enums) without creating a
// producer or connecting: throws Error(Config) naming the property, e.g.
//   kafka.properties.linger.ms: Invalid value "abc" for configuration property "linger.ms"
void check_properties(const PublisherOptions& options);

// An idempotent librdkafka producer (enable.idempotence=true, acks=all, murmur2_random): the
// pipeline's Sink. Delivery reports are served on the caller's thread: poll wakeup_fd() for
// POLLIN, then call serve(). Reports say what became of each record in the pipeline's terms
// (relay::Delivery); no librdkafka type leaves src/kafka/. Destroying the publisher purges what
// is still queued (those events are not confirmed, so they are read again from the slot:
// duplicates, never loss).
class Publisher final : public relay::Sink {
public:
    explicit Publisher(const PublisherOptions& options);  // throws Error(Config) naming the property
    ~Publisher() override;
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    [[nodiscard]] int wakeup_fd() const noexcept;

    relay::SendResult send(const Record& record, std::uint64_t cookie) override;
    // Drops every message not yet sent (their reports say Failed: purged).
    void drop_unsent() noexcept override;

    // Serves waiting delivery reports and errors; `on_delivery` runs for each report. A Refused
    // report carries the record rebuilt from librdkafka's copy, valid during the call only.
    void serve(const std::function<void(const relay::Delivery&)>& on_delivery);

    // Set once librdkafka raised a fatal error (the producer must be rebuilt).
    [[nodiscard]] const std::optional<std::string>& fatal_error() const noexcept;
    // A non-fatal error reported by librdkafka since the last call (e.g. all brokers down).
    std::optional<std::string> take_last_error();
    [[nodiscard]] bool all_brokers_down() const noexcept;

    // Messages librdkafka still holds (queued or in flight).
    [[nodiscard]] int outstanding() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace outbox::kafka

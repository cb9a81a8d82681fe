#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "outbox/router.h"

namespace outbox::kafka {

struct PublisherOptions {
    std::string bootstrap_servers;
    // kafka.properties from the config, applied after the relay's own settings.
    std::vector<std::pair<std::string, std::string>> properties;
    std::string client_id = "outbox-relay";
    // Room librdkafka's local queue must have: the relay's own in-flight bound plus headroom.
    std::uint64_t max_inflight_events = 100000;
};

enum class ProduceStatus {
    Queued,     // librdkafka owns it; a delivery report will follow
    QueueFull,  // local queue full: serve delivery reports, then retry
    Permanent,  // this record can never be produced as it is (too large, invalid topic)
    Failed,     // the producer cannot take it now (fatal error, unknown topic...): fail closed
};

struct ProduceResult {
    ProduceStatus status = ProduceStatus::Queued;
    rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::string message;
};

enum class DeliveryOutcome {
    Delivered,  // acknowledged by the brokers (acks=all)
    Permanent,  // refused for good for this record: dead-letter policy
    Failed,     // not known to be persisted (timed out, purged, fatal): fail closed
};

struct Delivery {
    std::uint64_t cookie = 0;
    DeliveryOutcome outcome = DeliveryOutcome::Delivered;
    rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::string_view error_text;
    // The delivered message, valid only inside the callback (to rebuild a dead-letter record).
    const rd_kafka_message_t* message = nullptr;
};

// Classifies a per-message error: permanent errors are the record's fault, retrying the same
// record can never succeed; everything else is the cluster's state and must fail closed.
DeliveryOutcome classify_delivery_error(rd_kafka_resp_err_t error) noexcept;

// An idempotent librdkafka producer (enable.idempotence=true, acks=all, murmur2_random) whose
// delivery reports are served on the caller's thread: poll wakeup_fd() for POLLIN, then call
// serve(). Owns the rd_kafka_t; destroying it purges what is still queued (those events are
// not confirmed, so they are read again from the slot: duplicates, never loss).
class Publisher {
public:
    explicit Publisher(const PublisherOptions& options);  // throws Error(Config) naming the property
    ~Publisher();
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    [[nodiscard]] int wakeup_fd() const noexcept { return pipe_read_; }

    ProduceResult produce(const Record& record, std::uint64_t cookie);

    // Serves waiting delivery reports and errors; `on_delivery` runs for each report.
    void serve(const std::function<void(const Delivery&)>& on_delivery);

    // Set once librdkafka raised a fatal error (the producer must be rebuilt).
    [[nodiscard]] const std::optional<std::string>& fatal_error() const noexcept { return fatal_; }
    // A non-fatal error reported by librdkafka since the last call (e.g. all brokers down).
    std::optional<std::string> take_last_error();
    [[nodiscard]] bool all_brokers_down() const noexcept { return all_brokers_down_; }

    // Drops every message not yet sent (their reports say purged). Called at the first failed
    // delivery: nothing queued behind a failed event may reach the broker before its replay.
    void purge_queued() noexcept;

    // Messages librdkafka still holds (queued or in flight).
    [[nodiscard]] int outstanding() const noexcept;

private:
    static void on_delivery_report(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
    static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
    static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message);

    // The handle of `name`, created on first use. Producing by handle spares librdkafka a
    // search of its topic list under a lock for every event. nullptr (and `error`) when refused.
    rd_kafka_topic_t* topic_handle(const std::string& name, rd_kafka_resp_err_t& error);

    rd_kafka_t* rk_ = nullptr;
    rd_kafka_queue_t* main_queue_ = nullptr;
    std::unordered_map<std::string, rd_kafka_topic_t*> topics_;  // destroyed before rk_
    const std::pair<const std::string, rd_kafka_topic_t*>* last_topic_ = nullptr;
    int pipe_read_ = -1;
    int pipe_write_ = -1;
    const std::function<void(const Delivery&)>* current_sink_ = nullptr;
    std::optional<std::string> fatal_;
    std::optional<std::string> last_error_;
    bool all_brokers_down_ = false;
};

}  // namespace outbox::kafka

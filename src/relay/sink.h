#pragma once

// The border between the pipeline and whatever carries its records away (the Kafka producer in
// src/kafka/, a fake in unit tests). Records go out through send(); what became of each comes
// back as a Delivery with the cookie it was sent with. No producer type crosses this border.

#include <cstdint>
#include <string>
#include <string_view>

#include "outbox/record.h"

namespace outbox::relay {

enum class SendStatus {
    Queued,   // the sink owns a copy; exactly one Delivery with this cookie will follow
    NoRoom,   // the sink's queue is full: serve deliveries, then send the same record again
    Refused,  // this record can never be sent as it is (too large, invalid topic): policy applies
    Failed,   // the sink cannot take records now (fatal producer error...): fail closed
};

struct SendResult {
    SendStatus status = SendStatus::Queued;
    std::string_view code;  // Refused: a Rejection code in static storage (too_large, rejected_by_kafka)
    std::string detail;     // not Queued: the sink's words
};

enum class DeliveryStatus {
    Acknowledged,  // persisted (Kafka: acks=all)
    Refused,       // refused for good for this record: policy applies
    Failed,        // not known to be persisted (timed out, purged...): fail closed
};

struct Delivery {
    std::uint64_t cookie = 0;
    DeliveryStatus status = DeliveryStatus::Acknowledged;
    std::string_view topic;          // where it went
    std::string_view code;           // Refused: a Rejection code in static storage (too_large, ...)
    std::string_view detail;         // not Acknowledged: the sink's words
    const Record* record = nullptr;  // Refused: the record as the sink holds it, valid during the call
};

class Sink {
public:
    virtual ~Sink() = default;
    virtual SendResult send(const Record& record, std::uint64_t cookie) = 0;
    // Drops every record not yet on its way (their deliveries say Failed). Called at the first
    // failed delivery: nothing queued behind a failed event may reach the broker before its replay.
    virtual void drop_unsent() noexcept = 0;
};

}  // namespace outbox::relay

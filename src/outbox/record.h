#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lsn.h"

namespace outbox {

// What the router needs to know about the transaction a row belongs to.
struct CommitInfo {
    Lsn commit_lsn;  // Begin.final_lsn: the commit record of the transaction
    Xid xid;
    std::int64_t commit_time_unix_us = 0;

    bool operator==(const CommitInfo&) const = default;
};

struct RecordHeader {
    std::string_view name;
    std::optional<std::string_view> value;  // nullopt: a header with a null value
};

// A Kafka record ready to produce. Views point into the decoded frame, the router's
// configuration or the record's own storage, so a Record is valid until the next route()
// into it, until the frame is released and while the router that filled it lives. Reused
// between events to avoid allocations.
struct Record {
    std::string topic;
    std::optional<std::string_view> key;
    std::optional<std::string_view> value;  // nullopt: tombstone
    std::vector<RecordHeader> headers;
    std::int64_t timestamp_ms = 0;  // the record's timestamp; 0: the producer's (when it is sent)
    bool topic_complete = false;    // route() got as far as a valid topic

    // Storage for values the router computes.
    std::string value_storage;
    std::string lsn_text;
    std::string xid_text;
    std::string time_text;
    std::optional<CommitInfo> texts_for;  // the commit the three texts above describe
    std::string error_text;
    std::string size_text;
    std::string original_topic;
    std::string valid_topic;  // the last topic that passed is_valid_topic_name(): not checked again

    // Approximate bytes this record holds in the producer (for in-flight limits).
    [[nodiscard]] std::size_t size_bytes() const noexcept;
};

// Why an outbox row cannot be published as it is. `code` is one of a small fixed set (it is
// used as a metric label); `detail` says what exactly, for the log and the dead-letter header.
struct Rejection {
    std::string_view code;  // missing_column, null_value, empty_value, unchanged_toast,
                            // invalid_topic, invalid_payload, invalid_utf8, invalid_timestamp, too_large,
                            // rejected_by_kafka, unexpected_update, unexpected_delete, invalid_message,
                            // non_transactional_message
    std::string detail;
};

}  // namespace outbox

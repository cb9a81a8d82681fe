#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "support/kcat.h"  // KafkaRecord, KafkaHeader

// An in-process Kafka consumer (librdkafka) for tests: reads every topic that matches a pattern,
// from the beginning, in a background thread, while the load runs. The librdkafka 2.0.2 mock
// broker keeps only ~5 MiB per partition, so big tests must consume while producing.

struct rd_kafka_s;

namespace outbox::test {

struct TopicConsumerOptions {
    std::string bootstrap;  // "host:port,..."
    // Topics to read: those whose name matches `topic_regex` (ECMAScript regex_search, so anchor
    // it with ^ and $; empty: none), plus the explicit `topics` (read once they exist). Internal
    // topics ("__...") never match. New topics are picked up within ~metadata_refresh.
    std::string topic_regex = "^outbox\\..*";
    std::vector<std::string> topics;

    // How it reads: no consumer group rebalancing. Every metadata_refresh the consumer lists the
    // cluster's topics and assigns each new partition of a matching topic from its beginning
    // (rd_kafka_incremental_assign), so nothing is read twice and nothing waits for a group
    // coordinator. (A regex subscription, rd_kafka_subscribe("^outbox\\..*"), was tried first:
    // against the 2.0.2 mock broker the group kept rejoining on every metadata refresh and often
    // never got an assignment, so it is not offered.)
    std::string group_id;  // empty: "outbox-test-<pid>-<n>", unique per consumer (no offsets are committed)
    std::chrono::milliseconds metadata_refresh{500};
    // false: store values as "" to save memory in big runs (then pass check_values = false to
    // check_invariants, or every record reads as having a wrong value).
    bool keep_values = true;
    // Extra librdkafka properties, applied last.
    std::vector<std::pair<std::string, std::string>> properties;
};

// The value of the first header named `name`; nullopt when missing or null.
std::optional<std::string> header_value(const KafkaRecord& record, std::string_view name);
// All headers as a map (the first value wins for repeated names; null values as nullopt).
std::map<std::string, std::optional<std::string>> header_map(const KafkaRecord& record);

class TopicConsumer {
public:
    // Creates the consumer and starts its thread; throws std::runtime_error on a bad configuration.
    explicit TopicConsumer(TopicConsumerOptions options);
    ~TopicConsumer();  // stop()
    TopicConsumer(const TopicConsumer&) = delete;
    TopicConsumer& operator=(const TopicConsumer&) = delete;

    // Stops the thread and closes the consumer. Idempotent; records stay readable.
    void stop();

    // Everything received so far, in arrival order (per partition: offset order). A record is
    // stored once per (topic, partition, offset), however often the consumer is handed it.
    [[nodiscard]] std::vector<KafkaRecord> records() const;
    [[nodiscard]] std::size_t size() const;
    // Distinct values of the `id` header seen so far.
    [[nodiscard]] std::size_t distinct_ids() const;
    [[nodiscard]] bool has_id(const std::string& id) const;
    [[nodiscard]] std::size_t count_ids(const std::vector<std::string>& ids) const;

    // Polls (with a deadline) until at least `count` records arrived.
    bool wait_for_count(std::size_t count, std::chrono::milliseconds timeout) const;
    // Until every id in `ids` was seen in an `id` header.
    bool wait_for_ids(const std::vector<std::string>& ids, std::chrono::milliseconds timeout) const;
    // Until `predicate(*this)` holds; the predicate may call the accessors above.
    bool wait_until(const std::function<bool(const TopicConsumer&)>& predicate,
                    std::chrono::milliseconds timeout) const;

    // Whether every partition of every matching topic has been read up to its current high
    // watermark (asks the brokers; false when they cannot be asked).
    [[nodiscard]] bool caught_up(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
    bool wait_caught_up(std::chrono::milliseconds timeout) const;

    // Topics currently being read.
    [[nodiscard]] std::vector<std::string> topics() const;
    // Consumer errors and warnings (connection refused while a broker is down, offset resets...).
    [[nodiscard]] std::vector<std::string> errors() const;
    // Times a partition's next record was not the one after the previous (or the first record
    // read was not offset 0): the broker dropped data before we read it, so the records are
    // incomplete and any verdict on them is not trustworthy. `skipped_offsets` counts the gap.
    // (The mock writes no transaction markers; a real Kafka with transactions leaves offset gaps
    // for its control records, so there gaps() is not a sign of loss.)
    [[nodiscard]] std::size_t gaps() const;
    [[nodiscard]] std::int64_t skipped_offsets() const;

    // For librdkafka's callbacks; not for tests.
    void note_error(std::string text);

private:
    void run();
    void refresh_assignment();
    [[nodiscard]] bool matches(const std::string& topic) const;

    TopicConsumerOptions options_;
    std::regex regex_;
    rd_kafka_s* rk_ = nullptr;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    bool stopped_ = false;
    std::mutex stop_mutex_;

    mutable std::mutex mutex_;
    std::vector<KafkaRecord> records_;
    std::unordered_set<std::string> ids_;
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> last_offset_;  // per partition
    std::map<std::string, int> assigned_;  // topic -> partitions assigned
    std::vector<std::string> errors_;
    std::size_t gaps_ = 0;
    std::int64_t skipped_ = 0;
};

}  // namespace outbox::test

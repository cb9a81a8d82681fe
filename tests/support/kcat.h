#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// Helpers around the `kcat` CLI (kcat 1.7.1 on Debian 12) for producing, consuming and inspecting
// topics from tests. They run kcat as a child process (run_command), never in-process.

namespace outbox::test {

struct KafkaHeader {
    std::string name;
    std::optional<std::string> value;  // nullopt: a header with a null value
    bool operator==(const KafkaHeader&) const = default;
};

struct KafkaRecord {
    std::string topic;
    std::int32_t partition = -1;
    std::int64_t offset = -1;
    std::int64_t timestamp_ms = -1;
    std::optional<std::string> key;    // nullopt: null key
    std::optional<std::string> value;  // nullopt: null value (tombstone)
    std::vector<KafkaHeader> headers;
};

struct KcatResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
    [[nodiscard]] bool ok() const noexcept { return exit_code == 0; }
};

using KcatArgs = std::vector<std::string>;  // extra kcat arguments, e.g. {"-X", "acks=all"}

constexpr std::chrono::milliseconds kKcatTimeout = std::chrono::seconds(30);

// Produces one record: the value byte for byte (newlines included), the key as given (nullopt:
// no key). `headers` as name/value pairs. Returns kcat's exit code and output; never throws on
// a delivery failure (kcat exits 1 and prints "% Delivery failed for message: ...").
KcatResult kcat_try_produce(const std::string& bootstrap, const std::string& topic,
                            const std::optional<std::string>& key, const std::string& value,
                            const KcatArgs& extra_args = {},
                            const std::vector<std::pair<std::string, std::string>>& headers = {},
                            std::chrono::milliseconds timeout = kKcatTimeout);

// As kcat_try_produce, but throws std::runtime_error (with kcat's output) unless it succeeded.
void kcat_produce(const std::string& bootstrap, const std::string& topic,
                  const std::optional<std::string>& key, const std::string& value,
                  const KcatArgs& extra_args = {},
                  const std::vector<std::pair<std::string, std::string>>& headers = {},
                  std::chrono::milliseconds timeout = kKcatTimeout);

// Produces many keyed records in one kcat run (order preserved per partition). Keys and values
// must not contain the bytes 0x1e / 0x1f (used as delimiters; throws std::invalid_argument).
// Empty values are skipped by kcat, so they are rejected too. Throws unless kcat succeeded.
void kcat_produce_many(const std::string& bootstrap, const std::string& topic,
                       const std::vector<std::pair<std::string, std::string>>& records,
                       const KcatArgs& extra_args = {}, std::chrono::milliseconds timeout = kKcatTimeout);

// Every record of `topic` from the beginning to the current end of each partition
// (`kcat -C -o beginning -e -J`), sorted by (partition, offset). A topic that does not exist yet is
// auto-created by the mock and reads as empty. Throws on kcat failure or timeout.
std::vector<KafkaRecord> kcat_consume_all(const std::string& bootstrap, const std::string& topic,
                                          std::chrono::milliseconds timeout = kKcatTimeout,
                                          const KcatArgs& extra_args = {});

// `kcat -L -J`: the cluster metadata as one JSON document (brokers, topics, partitions, leaders).
std::string kcat_metadata(const std::string& bootstrap, std::chrono::milliseconds timeout = kKcatTimeout);

// Parses kcat's `-J` consumer output: one JSON envelope per line; lines that are not JSON objects
// (e.g. "% Reached end of topic ...") are skipped. Throws std::runtime_error on malformed JSON.
std::vector<KafkaRecord> parse_kcat_json(const std::string& output);

}  // namespace outbox::test

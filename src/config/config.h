#pragma once

// Configuration of outbox-relay: plain structs, the YAML loader with strict validation, and
// the functions that keep secrets out of log lines (secrets.h) and spell durations and sizes
// (value_syntax.h). The user-facing reference is docs/configuration.md;
// config/outbox-relay.example.yaml shows every key. Each key is declared once, in keys.cpp.
//
// Every loader error is an outbox::Error(ErrorKind::Config, ...) whose message names the
// origin (file), the 1-based line and the dotted key path, e.g.
//   config.yaml:12: outbox.on_invalid: expected one of dead_letter, stop, got "skip"
// All problems found in one pass are reported together, one per line.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/secrets.h"
#include "config/state_path.h"
#include "config/value_syntax.h"
#include "outbox/options.h"

namespace outbox::config {

// ---- source ------------------------------------------------------------------------------

// Where events come from (docs/configuration.md, "Three ways in").
enum class Source {
    Wal,  // logical replication: the outbox tables' inserts (and logical messages) from the WAL
    Poll  // a polling publisher: rows locked, published, then deleted or marked in one transaction
};

// ---- postgres ----------------------------------------------------------------------------

// postgres.slot_failover: whether the slot is a failover slot (PostgreSQL 17+).
enum class SlotFailover {
    Auto,     // create it as one where the server supports it; leave an existing slot as it is
    Enabled,  // create it as one, turn it on for an existing slot; before 17 a configuration error
    Disabled  // never
};

struct PostgresConfig {
    // libpq conninfo ("host=... dbname=...") or URI ("postgresql://..."). May contain a
    // password: log it only through mask_dsn().
    std::string dsn;
    // Path of a file holding the password (read it with read_password()). A relative path
    // is resolved against $CREDENTIALS_DIRECTORY at load time when that variable is set.
    // An empty value in the file means "not set".
    std::optional<std::string> password_file;
    std::string slot = "outbox_relay";         // replication slot; [a-z0-9_], 1..63 bytes
    std::string publication = "outbox_relay";  // publication name (identifier, 1..63 bytes)
    bool create_slot = true;                   // create the slot when it does not exist
    bool create_publication = true;            // create the publication when it does not exist
    std::chrono::milliseconds status_interval{std::chrono::seconds(10)};  // > 0
    SlotFailover slot_failover = SlotFailover::Auto;
    // Where the slots this relay streamed from are remembered (state_path.h). nullopt: not set.
    std::optional<std::string> state_file;
};

// ---- outbox ------------------------------------------------------------------------------

// The outbox section is the router's own option struct (src/outbox/options.h).
using TableName = outbox::TableName;
using ColumnRoles = outbox::ColumnRoles;
using OnInvalid = outbox::OnInvalid;
using TopicSegment = outbox::TopicSegment;
using OutboxConfig = outbox::OutboxOptions;
using OperationPolicy = outbox::OperationPolicy;
using TimestampSource = outbox::TimestampSource;
using HeaderColumn = outbox::HeaderColumn;
using CommitHeaders = outbox::CommitHeaders;

// ---- poll (source: poll only) ------------------------------------------------------------

// What the poller does with a row once Kafka acknowledged its event.
enum class AfterPublish {
    Delete,  // DELETE it
    Mark     // UPDATE it: published_column = now(); only rows where it IS NULL are polled
};

struct PollConfig {
    // Wait after an empty or partial batch before the next poll (a full batch polls at once). > 0
    std::chrono::milliseconds interval{200};
    // Rows per poll (one transaction); at most limits.max_inflight_events.
    std::uint64_t batch_size = 1000;
    // The column whose order is the per-key publishing order (a bigserial, a UUIDv7...).
    std::string order_by = "id";
    AfterPublish after_publish = AfterPublish::Delete;
    // With Mark: a nullable timestamptz column, NULL until the row is published; required then.
    std::string published_column;
};

// ---- kafka -------------------------------------------------------------------------------

struct KafkaConfig {
    std::string bootstrap_servers;
    // Passed verbatim to librdkafka, in file order. Never contains bootstrap.servers,
    // enable.idempotence=false, acks other than all/-1, or the other properties the relay
    // owns (kafka/property_policy.h, docs/configuration.md). May contain secrets: log only
    // through describe() or is_secret_property().
    std::vector<std::pair<std::string, std::string>> properties;
};

// ---- limits, metrics, log ----------------------------------------------------------------

struct Limits {
    std::uint64_t max_inflight_events = 100000;              // > 0
    std::uint64_t max_inflight_bytes = 64ull * 1024 * 1024;  // > 0
};

struct MetricsConfig {
    bool enabled = true;             // false when listen is ""
    std::string host = "127.0.0.1";  // IPv6 without brackets ("::1")
    std::uint16_t port = 9187;       // 0 lets the OS choose a free port
};

enum class LogLevel { Trace, Debug, Info, Warn, Error, Critical, Off };
enum class LogFormat { Text, Json };

struct LogConfig {
    LogLevel level = LogLevel::Info;
    LogFormat format = LogFormat::Text;
};

// ---- the whole configuration -------------------------------------------------------------

struct Config {
    std::string origin;  // where it was loaded from (file path or the name given)
    Source source = Source::Wal;
    PostgresConfig postgres;
    OutboxConfig outbox;
    PollConfig poll;  // only with source: poll
    KafkaConfig kafka;
    Limits limits;
    MetricsConfig metrics;
    LogConfig log;
};

// Reads and validates a YAML configuration file. Throws outbox::Error(ErrorKind::Config):
//   cannot read config file "/x.yaml": No such file or directory
//   /x.yaml:4:7: <yaml-cpp's syntax error message>
//   /x.yaml:12: outbox.on_invalid: expected one of dead_letter, stop, got "skip"
Config load_config_file(const std::string& path);

// Same, from text; origin_name stands for the file in messages.
Config load_config_string(std::string_view yaml, std::string_view origin_name);

// A human-readable, secret-free, multi-line summary (for --check-config and the start-up log).
std::string describe(const Config& config);

// Names of enum values as the file writes them (enum_names.h).
std::string_view to_string(Source value) noexcept;
std::string_view to_string(AfterPublish value) noexcept;
std::string_view to_string(OnInvalid value) noexcept;
std::string_view to_string(SlotFailover value) noexcept;
std::string_view to_string(OperationPolicy value) noexcept;
std::string_view to_string(TimestampSource value) noexcept;
std::string_view to_string(LogLevel value) noexcept;
std::string_view to_string(LogFormat value) noexcept;

}  // namespace outbox::config

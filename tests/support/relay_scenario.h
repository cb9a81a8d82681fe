#pragma once

// What every test of the relay as a process starts from: a throwaway PostgreSQL with the outbox
// table, the mock Kafka broker process, the relay's YAML config (RelayConfig, the one place that
// knows its shape) and relays started on it, owned by the scenario and stopped before the servers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/lsn.h"
#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/pg_cluster.h"
#include "support/relay_process.h"
#include "support/workload.h"

namespace outbox::test {

// The relay's configuration file (docs/configuration.md). The defaults are what the tests run
// with; an unset optional leaves the key out, so the relay's own default applies. An empty dsn or
// bootstrap_servers is filled in by RelayScenario with its own, so a scenario writes only what it
// changes: s.streaming_relay({.max_inflight_events = 200}).
struct RelayConfig {
    enum class OnInvalid { DeadLetter, Stop };

    // source: "wal" or "poll" (unset: the relay's default, wal). With "poll" the WAL-only keys
    // below (status_interval, slot and state file settings) are left out of the file.
    std::optional<std::string> source;
    // postgres
    std::string dsn;
    std::optional<std::string> password_file;
    std::optional<std::chrono::milliseconds> status_interval = std::chrono::seconds(1);
    std::optional<bool> create_publication;
    std::optional<bool> create_slot;
    std::optional<std::string> slot_failover;  // "auto", "true" or "false"
    std::optional<std::string> state_file;     // unset: $STATE_DIRECTORY/<slot>.state (launch_relay sets it)
    // outbox
    std::string table = "public.outbox";
    std::vector<std::string> headers{"type"};  // columns copied into Kafka headers
    std::optional<std::vector<std::string>> relay_headers;  // outbox.relay_headers (unset: all three)
    std::optional<OnInvalid> on_invalid;
    std::optional<std::string> timestamp;         // "commit", "produce" or "column"
    std::optional<std::string> timestamp_column;  // columns.timestamp
    std::optional<std::string> on_update;         // "ignore", "warn" or "stop"
    std::optional<std::string> on_delete;
    std::optional<std::string> messages_prefix;  // messages.prefix
    // poll (written only with source: poll)
    std::optional<std::string> poll_order_by;
    std::optional<std::chrono::milliseconds> poll_interval;
    std::optional<std::uint64_t> poll_batch_size;
    std::optional<std::string> after_publish;     // "delete" or "mark"
    std::optional<std::string> published_column;  // with "mark"
    // kafka
    std::string bootstrap_servers;
    std::vector<std::pair<std::string, std::string>> kafka_properties;  // written as plain scalars
    // limits
    std::optional<std::size_t> max_inflight_events;
    std::optional<std::uint64_t> max_inflight_bytes;
    // metrics: "" serves no HTTP endpoint
    std::string metrics_listen;
    // log
    std::optional<std::string> log_level;   // "debug", "info", ...
    std::optional<std::string> log_format;  // "text" or "json"

    [[nodiscard]] std::string yaml() const;
    [[nodiscard]] bool polling() const { return source == "poll"; }
    // The log line of a started session: kStreamingLine, or kPollingLine with source: poll.
    [[nodiscard]] const char* started_line() const { return polling() ? kPollingLine : kStreamingLine; }
};

// The slot the relay creates by default, and its confirmed_flush_lsn as text (no row: no slot).
inline constexpr const char* kRelaySlot = "outbox_relay";
inline constexpr const char* kSlotConfirmedSql =
    "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'outbox_relay'";

struct RelayScenarioOptions {
    PgClusterOptions pg;
    int brokers = 1;
    // The database the outbox table lives in and the relay reads; anything but "postgres" is
    // created first (from template0, C collation), with `encoding` when that is not empty.
    std::string dbname = "postgres";
    std::string encoding;  // e.g. "LATIN1", "SQL_ASCII"
};

class RelayScenario {
public:
    explicit RelayScenario(RelayScenarioOptions options = {});
    RelayScenario(const RelayScenario&) = delete;
    RelayScenario& operator=(const RelayScenario&) = delete;

    // When the scenario started (the fault report gives the seconds since).
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    PgCluster pg;
    MockKafka kafka;

    [[nodiscard]] const std::string& dbname() const noexcept { return dbname_; }
    // `config` with an empty dsn or bootstrap_servers set to this scenario's database (over TCP)
    // and brokers.
    [[nodiscard]] RelayConfig config(RelayConfig config = {}) const;

    // Starts a relay on config(`config`) (files in `run_dir`, by default the cluster's) and
    // returns it. The scenario owns it: stop_relays() or the destructor ends it. Like systemd's
    // StateDirectory=, STATE_DIRECTORY is the run directory unless `env` says otherwise, so the
    // relay keeps its state file there.
    RelayProcess& launch_relay(const RelayConfig& config = {}, std::map<std::string, std::string> env = {},
                               const std::string& run_dir = {});
    // launch_relay(), then REQUIREs that it streams from its slot (with source: poll, that it
    // polls) within 30 s.
    RelayProcess& streaming_relay(const RelayConfig& config = {});
    // SIGTERM to every relay still running; CHECKs that each exits 0 (a clean stop).
    void stop_relays();
    // launch_relay(), then REQUIREs that it exits within 30 s and CHECKs that the code is 78 (a
    // configuration error: a human must act); returns the relay's log.
    std::string expect_config_exit(const RelayConfig& config, std::map<std::string, std::string> env = {});
    // CHECKs that nothing the relay would create exists in the database: no slot, no publication.
    void check_nothing_created() const;

    // The relay slot's confirmed_flush_lsn; REQUIREs that the slot exists.
    [[nodiscard]] Lsn slot_confirmed() const;
    // pg_current_wal_insert_lsn(): the end of WAL, also of commits not yet flushed.
    [[nodiscard]] Lsn wal_insert_lsn() const;

    // Reads `topic` with kcat until it holds at least `at_least` records or `timeout` passed;
    // returns the last read.
    [[nodiscard]] std::vector<KafkaRecord> wait_for_records(
        const std::string& topic, std::size_t at_least,
        std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

private:
    std::string dbname_;
    std::vector<std::unique_ptr<RelayProcess>> relays_;  // last: the relays go before the servers
};

// A load that runs until stop(): ~2-3k events/s from three sessions, with rollbacks.
WorkloadOptions steady_load(std::uint64_t seed);
// A lighter one beside a scenario's own writes or faults: two sessions, up to 10 rows, 20 ms apart.
WorkloadOptions background_load(std::uint64_t seed);

}  // namespace outbox::test

#include "support/relay_scenario.h"

#include <doctest/doctest.h>

#include "support/outbox_table.h"
#include "support/wait.h"

namespace outbox::test {
namespace {

// A YAML double-quoted scalar.
std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string RelayConfig::yaml() const {
    const bool wal = !polling();
    std::string y = source ? "source: " + *source + "\n" : "";
    y += "postgres:\n  dsn: " + quoted(dsn) + "\n";
    if (password_file) y += "  password_file: " + quoted(*password_file) + "\n";
    if (status_interval && wal)
        y += "  status_interval: " + std::to_string(status_interval->count()) + "ms\n";
    if (create_publication)
        y += std::string("  create_publication: ") + (*create_publication ? "true\n" : "false\n");
    if (create_slot) y += std::string("  create_slot: ") + (*create_slot ? "true\n" : "false\n");
    if (slot_failover) y += "  slot_failover: " + quoted(*slot_failover) + "\n";
    if (state_file) y += "  state_file: " + quoted(*state_file) + "\n";

    y += "outbox:\n  table: " + table + "\n";
    if (!headers.empty()) {
        y += "  headers: [";
        for (std::size_t i = 0; i < headers.size(); ++i) y += (i > 0 ? ", " : "") + quoted(headers[i]);
        y += "]\n";
    }
    if (relay_headers) {
        y += "  relay_headers: [";
        for (std::size_t i = 0; i < relay_headers->size(); ++i)
            y += (i > 0 ? ", " : "") + quoted((*relay_headers)[i]);
        y += "]\n";
    }
    if (on_invalid)
        y += std::string("  on_invalid: ") + (*on_invalid == OnInvalid::Stop ? "stop\n" : "dead_letter\n");
    if (timestamp) y += "  timestamp: " + *timestamp + "\n";
    if (timestamp_column) y += "  columns: {timestamp: " + quoted(*timestamp_column) + "}\n";
    if (on_update) y += "  on_update: " + *on_update + "\n";
    if (on_delete) y += "  on_delete: " + *on_delete + "\n";
    if (messages_prefix) y += "  messages: {prefix: " + quoted(*messages_prefix) + "}\n";

    y += "kafka:\n  bootstrap_servers: " + quoted(bootstrap_servers) + "\n";
    if (!kafka_properties.empty()) {
        y += "  properties:\n";
        for (const auto& [key, value] : kafka_properties)
            y.append("    ").append(key).append(": ").append(value) += '\n';
    }

    if (polling() &&
        (poll_order_by || poll_interval || poll_batch_size || after_publish || published_column)) {
        y += "poll:\n";
        if (poll_order_by) y += "  order_by: " + quoted(*poll_order_by) + "\n";
        if (poll_interval) y += "  interval: " + std::to_string(poll_interval->count()) + "ms\n";
        if (poll_batch_size) y += "  batch_size: " + std::to_string(*poll_batch_size) + "\n";
        if (after_publish) y += "  after_publish: " + *after_publish + "\n";
        if (published_column) y += "  published_column: " + quoted(*published_column) + "\n";
    }

    if (max_inflight_events || max_inflight_bytes) y += "limits:\n";
    if (max_inflight_events) y += "  max_inflight_events: " + std::to_string(*max_inflight_events) + "\n";
    if (max_inflight_bytes) y += "  max_inflight_bytes: " + std::to_string(*max_inflight_bytes) + "\n";

    y += "metrics:\n  listen: " + quoted(metrics_listen) + "\n";

    if (log_level || log_format) y += "log:\n";
    if (log_level) y += "  level: " + *log_level + "\n";
    if (log_format) y += "  format: " + *log_format + "\n";
    return y;
}

RelayScenario::RelayScenario(RelayScenarioOptions options)
    : pg(std::move(options.pg)),
      kafka(pg.run_dir() + "/kafka", options.brokers),
      dbname_(std::move(options.dbname)) {
    if (dbname_ != "postgres") {
        pg.exec("CREATE DATABASE " + dbname_ + " TEMPLATE template0" +
                (options.encoding.empty() ? "" : " ENCODING '" + options.encoding + "'") +
                " LC_COLLATE 'C' LC_CTYPE 'C'");
    }
    pg.exec(outbox_ddl(), dbname_);
}

RelayConfig RelayScenario::config(RelayConfig config) const {
    if (config.dsn.empty()) config.dsn = pg.tcp_dsn(dbname_);
    if (config.bootstrap_servers.empty()) config.bootstrap_servers = kafka.bootstrap();
    return config;
}

RelayProcess& RelayScenario::launch_relay(const RelayConfig& config, std::map<std::string, std::string> env,
                                          const std::string& run_dir) {
    const std::string dir = run_dir.empty() ? pg.run_dir() : run_dir;
    env.try_emplace("STATE_DIRECTORY", dir);
    relays_.push_back(std::make_unique<RelayProcess>(dir, this->config(config).yaml(), std::move(env)));
    return *relays_.back();
}

RelayProcess& RelayScenario::streaming_relay(const RelayConfig& config) {
    RelayProcess& relay = launch_relay(config);
    REQUIRE(relay.wait_for_log(config.started_line(), std::chrono::seconds(30)));
    return relay;
}

void RelayScenario::stop_relays() {
    for (const auto& relay : relays_) {
        if (relay->running()) CHECK(relay->terminate() == 0);
    }
}

std::string RelayScenario::expect_config_exit(const RelayConfig& config,
                                              std::map<std::string, std::string> env) {
    RelayProcess& relay = launch_relay(config, std::move(env));
    const auto rc = relay.wait_exit(std::chrono::seconds(30));
    REQUIRE_MESSAGE(rc.has_value(), "the relay kept running:\n" << relay.log());
    CHECK(*rc == 78);
    return relay.log();
}

void RelayScenario::check_nothing_created() const {
    CHECK(pg.query_value("SELECT count(*) FROM pg_replication_slots", dbname_) ==
          std::optional<std::string>("0"));
    CHECK(pg.query_value("SELECT count(*) FROM pg_publication", dbname_) == std::optional<std::string>("0"));
}

Lsn RelayScenario::slot_confirmed() const {
    const auto text = pg.query_value(kSlotConfirmedSql, dbname_);
    REQUIRE_MESSAGE(text.has_value(), "no replication slot " << kRelaySlot);
    const auto lsn = Lsn::parse(*text);
    REQUIRE_MESSAGE(lsn.has_value(), "confirmed_flush_lsn " << *text);
    return *lsn;
}

Lsn RelayScenario::wal_insert_lsn() const {
    const auto text = pg.query_value("SELECT pg_current_wal_insert_lsn()::text", dbname_);
    REQUIRE(text.has_value());
    const auto lsn = Lsn::parse(*text);
    REQUIRE(lsn.has_value());
    return *lsn;
}

std::vector<KafkaRecord> RelayScenario::wait_for_records(const std::string& topic, std::size_t at_least,
                                                         std::chrono::milliseconds timeout) const {
    std::vector<KafkaRecord> records;
    wait_until(
        [&] {
            records = kcat_consume_all(kafka.bootstrap(), topic, std::chrono::seconds(10));
            return records.size() >= at_least;
        },
        timeout, std::chrono::milliseconds(200));
    return records;
}

WorkloadOptions steady_load(std::uint64_t seed) {
    return WorkloadOptions{.sessions = 3,
                           .target_events = 0,
                           .min_rows = 1,
                           .max_rows = 20,
                           .aggregates = 30,
                           .rollback_ratio = 0.1,
                           .seed = seed,
                           .pause_between_txns = std::chrono::milliseconds(10)};
}

WorkloadOptions background_load(std::uint64_t seed) {
    WorkloadOptions o = steady_load(seed);
    o.sessions = 2;
    o.max_rows = 10;
    o.aggregates = 20;
    o.pause_between_txns = std::chrono::milliseconds(20);
    return o;
}

}  // namespace outbox::test

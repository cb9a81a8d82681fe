#include <fmt/format.h>

#include "config/config.h"
#include "config/listen_address.h"

namespace outbox::config {

std::string describe(const Config& config) {
    std::string out;
    const auto line = [&out](std::string_view text) {
        out += text;
        out += '\n';
    };
    line(fmt::format("configuration from {}", config.origin.empty() ? "(defaults)" : config.origin));

    const PostgresConfig& pg = config.postgres;
    line("postgres:");
    line(fmt::format("  dsn: {}", mask_dsn(pg.dsn)));
    line(fmt::format("  password_file: {}", pg.password_file ? *pg.password_file : "(not set)"));
    line(fmt::format("  slot: {}{}", pg.slot, pg.create_slot ? " (created if missing)" : " (must exist)"));
    line(fmt::format("  publication: {}{}", pg.publication,
                     pg.create_publication ? " (created if missing)" : " (must exist)"));
    line(fmt::format("  status_interval: {}", format_duration(pg.status_interval)));

    const OutboxConfig& ob = config.outbox;
    line("outbox:");
    std::string tables;
    for (const auto& t : ob.tables) {
        if (!tables.empty()) tables += ", ";
        tables += t.qualified();
    }
    line(fmt::format("  tables: {}", tables.empty() ? "(none)" : tables));
    line(fmt::format("  columns: id={}, aggregate_type={}, aggregate_id={}, payload={}", ob.columns.id,
                     ob.columns.aggregate_type, ob.columns.aggregate_id, ob.columns.payload));
    line(fmt::format("  topic: {}{}", ob.topic, ob.topic_is_fixed() ? " (fixed)" : ""));
    std::string headers;
    for (const auto& h : ob.headers) {
        if (!headers.empty()) headers += ", ";
        headers += h;
    }
    line(fmt::format("  headers: {}", headers.empty() ? "(none)" : headers));
    if (ob.on_invalid == OnInvalid::DeadLetter) {
        line(fmt::format("  on_invalid: dead_letter -> {}", ob.dead_letter_topic));
    } else {
        line("  on_invalid: stop");
    }

    line("kafka:");
    line(fmt::format("  bootstrap_servers: {}", config.kafka.bootstrap_servers));
    if (config.kafka.properties.empty()) {
        line("  properties: (none)");
    } else {
        line("  properties:");
        for (const auto& [key, value] : config.kafka.properties) {
            line(fmt::format("    {}: {}", key, is_secret_property(key) ? std::string(kMasked) : value));
        }
    }

    line("limits:");
    line(fmt::format("  max_inflight_events: {}", config.limits.max_inflight_events));
    line(fmt::format("  max_inflight_bytes: {}", format_size(config.limits.max_inflight_bytes)));
    line("metrics:");
    line(fmt::format("  listen: {}", format_listen(config.metrics)));
    line("log:");
    line(fmt::format("  level: {}", to_string(config.log.level)));
    line(fmt::format("  format: {}", to_string(config.log.format)));
    return out;
}

}  // namespace outbox::config

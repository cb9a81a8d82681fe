#include "app/component_options.h"

namespace outbox::app {

pg::ReplicationOptions replication_options(const config::Config& c) {
    pg::ReplicationOptions o;
    o.dsn = c.postgres.dsn;
    o.password = config::read_password(c.postgres);
    o.slot = c.postgres.slot;
    o.publication = c.postgres.publication;
    o.tables = c.outbox.tables;
    const ColumnRoles& roles = c.outbox.columns;
    o.required_columns = {{roles.id, "outbox.columns.id"},
                          {roles.aggregate_type, "outbox.columns.aggregate_type"},
                          {roles.aggregate_id, "outbox.columns.aggregate_id"},
                          {roles.payload, "outbox.columns.payload"}};
    if (c.outbox.timestamp == outbox::TimestampSource::Column) {
        o.required_columns.emplace_back(roles.timestamp, "outbox.columns.timestamp");
    }
    for (const auto& header : c.outbox.headers)
        o.required_columns.emplace_back(header.column, "outbox.headers");
    if (c.source == config::Source::Poll) {
        o.required_columns.emplace_back(c.poll.order_by, "poll.order_by");
        if (c.poll.after_publish == config::AfterPublish::Mark)
            o.required_columns.emplace_back(c.poll.published_column, "poll.published_column");
    }
    o.create_slot = c.postgres.create_slot;
    o.create_publication = c.postgres.create_publication;
    o.publish_updates = c.outbox.on_update != outbox::OperationPolicy::Ignore;
    o.publish_deletes = c.outbox.on_delete != outbox::OperationPolicy::Ignore;
    o.status_interval = c.postgres.status_interval;
    switch (c.postgres.slot_failover) {
        case config::SlotFailover::Auto: o.slot_failover.reset(); break;
        case config::SlotFailover::Enabled: o.slot_failover = true; break;
        case config::SlotFailover::Disabled: o.slot_failover = false; break;
    }
    return o;
}

kafka::PublisherOptions publisher_options(const config::Config& c) {
    kafka::PublisherOptions o;
    o.bootstrap_servers = c.kafka.bootstrap_servers;
    o.properties = c.kafka.properties;
    o.max_inflight_events = c.limits.max_inflight_events;
    return o;
}

relay::PipelineOptions pipeline_options(const config::Config& c) {
    return relay::PipelineOptions{c.outbox, c.limits.max_inflight_events, c.limits.max_inflight_bytes};
}

pg::PollOptions poll_options(const config::Config& c) {
    pg::PollOptions o;
    if (!c.outbox.tables.empty()) o.table = c.outbox.tables.front();
    o.id_column = c.outbox.columns.id;
    const ColumnRoles& roles = c.outbox.columns;
    const auto add = [&o](const std::string& column, const char* key) {
        for (const auto& [known, _] : o.columns) {
            if (known == column) return;
        }
        o.columns.emplace_back(column, key);
    };
    add(roles.id, "outbox.columns.id");
    add(roles.aggregate_type, "outbox.columns.aggregate_type");
    add(roles.aggregate_id, "outbox.columns.aggregate_id");
    add(roles.payload, "outbox.columns.payload");
    if (c.outbox.timestamp == outbox::TimestampSource::Column)
        add(roles.timestamp, "outbox.columns.timestamp");
    for (const auto& header : c.outbox.headers) add(header.column, "outbox.headers");
    o.order_by = c.poll.order_by;
    if (c.poll.after_publish == config::AfterPublish::Mark) o.published_column = c.poll.published_column;
    o.batch_size = c.poll.batch_size;
    return o;
}

}  // namespace outbox::app

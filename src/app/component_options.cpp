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

}  // namespace outbox::app

#pragma once

// The stack the fault tests run the relay against: a throwaway PostgreSQL with the outbox table,
// the mock Kafka broker process (3 brokers), and a consumer reading every outbox topic from the
// beginning while the load runs.

#include <string>
#include <vector>

#include "common/lsn.h"
#include "support/kafka_consumer.h"
#include "support/mock_kafka.h"
#include "support/pg_cluster.h"
#include "support/workload.h"

namespace outbox::test {

struct StackOptions {
    PgClusterOptions pg;
    // false: the consumer stores no values (big runs); pass check_values = false to the checker.
    bool keep_values = true;
};

struct Stack {
    explicit Stack(StackOptions options = {})
        : pg(std::move(options.pg)),
          kafka(pg.run_dir() + "/kafka", 3),
          consumer(TopicConsumerOptions{.bootstrap = kafka.bootstrap(), .keep_values = options.keep_values}) {
        pg.exec(std::string(kOutboxTableDdl));
    }

    PgCluster pg;
    MockKafka kafka;
    TopicConsumer consumer;

    // The relay's YAML. `kafka_properties`: indented "    key: value\n" lines under
    // kafka.properties; `postgres_extra`: "  key: value\n" lines under postgres; `extra`:
    // top-level sections (e.g. "limits:\n  max_inflight_events: 1000\n").
    std::string config(const std::string& kafka_properties = "", const std::string& postgres_extra = "",
                       const std::string& extra = "") const {
        return "postgres:\n  dsn: \"" + pg.tcp_dsn() + "\"\n  status_interval: 1s\n" + postgres_extra +
               "outbox:\n  table: public.outbox\n  headers: [type]\n"
               "kafka:\n  bootstrap_servers: \"" +
               kafka.bootstrap() + "\"\n" +
               (kafka_properties.empty() ? "" : "  properties:\n" + kafka_properties) +
               "metrics:\n  listen: \"\"\n" + extra;
    }

    // The slot's confirmed_flush_lsn (0/0 when the slot does not exist).
    Lsn slot_confirmed() const {
        const auto text = pg.query_value(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'outbox_relay'");
        return text ? Lsn::parse(*text).value_or(Lsn()) : Lsn();
    }

    static std::vector<std::string> ids(const std::vector<CommittedEvent>& events) {
        std::vector<std::string> out;
        out.reserve(events.size());
        for (const auto& e : events) out.push_back(e.id);
        return out;
    }
    static std::vector<std::string> ids(const Workload& workload) { return ids(workload.committed()); }
};

}  // namespace outbox::test

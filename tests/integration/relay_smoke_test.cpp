#include <doctest/doctest.h>

#include <map>
#include <set>

#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/outbox_table.h"
#include "support/pg_cluster.h"
#include "support/relay_process.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

TEST_CASE("relay: events from committed transactions reach Kafka with key, value and headers") {
    PgCluster pg;
    MockKafka kafka(pg.run_dir() + "/kafka", 3);
    pg.exec(outbox_ddl());
    const std::string config =
        "postgres:\n  dsn: \"" + pg.tcp_dsn() +
        "\"\n  status_interval: 1s\noutbox:\n  table: public.outbox\n  headers: [type]\n"
        "kafka:\n  bootstrap_servers: \"" +
        kafka.bootstrap() + "\"\nmetrics:\n  listen: \"\"\nlog:\n  level: debug\n";
    RelayProcess relay(pg.run_dir(), config);
    REQUIRE(relay.wait_for_log("streaming from slot", 30s));
    for (int i = 0; i < 20; ++i) {
        pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('order', 'o-" +
                std::to_string(i % 3) + "', 'Created', '{\"n\": " + std::to_string(i) + "}')");
    }
    std::vector<KafkaRecord> records;
    CHECK(wait_until(
        [&] {
            records = kcat_consume_all(kafka.bootstrap(), "outbox.event.order", 10s);
            return records.size() >= 20;
        },
        30s, 200ms));
    CHECK(records.size() == 20);
    std::set<std::string> payloads;
    for (const auto& r : records) {
        payloads.insert(r.value.value_or(""));
        CHECK(r.key.value_or("").substr(0, 2) == "o-");
    }
    CHECK(payloads.size() == 20);
    const int rc = relay.terminate();
    CHECK(rc == 0);
    INFO(relay.log());
    CHECK(relay.log().find("stopped; confirmed") != std::string::npos);
}

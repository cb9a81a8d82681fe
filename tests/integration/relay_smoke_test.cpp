#include <doctest/doctest.h>

#include <map>
#include <set>

#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/pg_cluster.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

TEST_CASE("relay: events from committed transactions reach Kafka with key, value and headers") {
    RelayScenario s(RelayScenarioOptions{.brokers = 3});
    RelayProcess& relay = s.streaming_relay({.log_level = "debug"});
    for (int i = 0; i < 20; ++i) {
        s.pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('order', 'o-" +
                  std::to_string(i % 3) + "', 'Created', '{\"n\": " + std::to_string(i) + "}')");
    }
    const std::vector<KafkaRecord> records = s.wait_for_records("outbox.event.order", 20);
    CHECK(records.size() >= 20);
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

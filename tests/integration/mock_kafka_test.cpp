// The mock Kafka broker process and its test-side driver (tests/support/mock_kafka.h, kcat.h).
// Run: integration_tests -ts="mock_kafka"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>
#include "support/relay_process.h"
#include "support/run_dir.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/wait.h"

using namespace outbox::test;
using namespace std::chrono_literals;

namespace {

bool process_gone(pid_t pid) {
    return ::kill(pid, 0) != 0 && errno == ESRCH;
}


std::vector<std::pair<std::string, std::string>> key_values(std::vector<KafkaRecord> records) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : records) out.emplace_back(r.key.value_or("<null>"), r.value.value_or("<null>"));
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_SUITE("mock_kafka") {
    TEST_CASE("kcat JSON envelopes are parsed with escapes, nulls and headers") {
        const std::string output =
            "% Reached end of topic t [0] at offset 0\n"
            R"({"topic":"t","partition":2,"offset":7,"tstype":"create","ts":1700000000123,"broker":1,)"
            R"("headers":["h1","v1","h2",null],"key":"k \"q\" \\ \/","payload":"a\nb\u0001\u00e9\ud83d\ude00"})"
            "\n"
            R"({"topic":"t","partition":0,"offset":0,"tstype":"create","ts":1,"broker":1,"key":null,"payload":null})"
            "\n";
        const auto records = parse_kcat_json(output);
        REQUIRE(records.size() == 2);
        CHECK(records[0].topic == "t");
        CHECK(records[0].partition == 2);
        CHECK(records[0].offset == 7);
        CHECK(records[0].timestamp_ms == 1700000000123);
        CHECK(records[0].key == std::optional<std::string>("k \"q\" \\ /"));
        CHECK(records[0].value == std::optional<std::string>("a\nb\x01\xc3\xa9\xf0\x9f\x98\x80"));
        REQUIRE(records[0].headers.size() == 2);
        CHECK(records[0].headers[0] == KafkaHeader{"h1", "v1"});
        CHECK(records[0].headers[1] == KafkaHeader{"h2", std::nullopt});
        CHECK_FALSE(records[1].key.has_value());
        CHECK_FALSE(records[1].value.has_value());
        CHECK_THROWS_AS(parse_kcat_json("{\"topic\":\"t\",\"key\":\"unterminated}\n"), std::runtime_error);
    }

    TEST_CASE("mock broker serves produce and consume over TCP") {
        RunDir dir("outbox-mock-kafka");
        MockKafka kafka(dir.path());
        MESSAGE("mock-kafka start-up took " << kafka.startup_time().count() << " ms");
        CHECK(std::count(kafka.bootstrap().begin(), kafka.bootstrap().end(), ',') == 2);
        CHECK(kafka.bootstrap().rfind("127.0.0.1:", 0) == 0);
        CHECK(kafka.command("bootstrap") == kafka.bootstrap());

        const std::string metadata = kcat_metadata(kafka.bootstrap());
        CHECK(contains(metadata, R"("id":1)"));
        CHECK(contains(metadata, R"("id":3)"));

        // An unknown topic is auto-created on first produce.
        const std::string tricky = "multi\nline \"quoted\" \\ tab\t é";
        kcat_produce(kafka.bootstrap(), "orders", std::string("k1"), "v1");
        kcat_produce(kafka.bootstrap(), "orders", std::string("k2"), tricky, {},
                     {{"trace", "abc"}, {"empty", ""}});
        kcat_produce(kafka.bootstrap(), "orders", std::string("k3"), "v3");

        const auto records = kcat_consume_all(kafka.bootstrap(), "orders");
        REQUIRE(records.size() == 3);
        CHECK(key_values(records) ==
              std::vector<std::pair<std::string, std::string>>{{"k1", "v1"}, {"k2", tricky}, {"k3", "v3"}});
        for (const auto& r : records) {
            CHECK(r.topic == "orders");
            CHECK(r.partition >= 0);
            CHECK(r.partition < 4);  // auto-created topics have 4 partitions
            CHECK(r.offset >= 0);
            if (r.key == std::optional<std::string>("k2")) {
                CHECK(r.headers == std::vector<KafkaHeader>{{"trace", "abc"}, {"empty", ""}});
            } else {
                CHECK(r.headers.empty());
            }
        }

        // Many records in one run; one key means one partition, so offsets give the order.
        kcat_produce_many(kafka.bootstrap(), "events", {{"a", "1"}, {"a", "2\nwith newline"}, {"a", "3"}});
        const auto events = kcat_consume_all(kafka.bootstrap(), "events");
        REQUIRE(events.size() == 3);
        CHECK(events[0].value == std::optional<std::string>("1"));
        CHECK(events[1].value == std::optional<std::string>("2\nwith newline"));
        CHECK(events[2].value == std::optional<std::string>("3"));
        CHECK(events[0].partition == events[2].partition);
        CHECK(events[0].offset + 2 == events[2].offset);

        CHECK(kcat_consume_all(kafka.bootstrap(), "nothing-here").empty());
    }

    TEST_CASE("control channel takes a broker down and up and the effect is visible") {
        RunDir dir("outbox-mock-kafka");
        MockKafka kafka(dir.path(), 1);
        const auto& bootstrap = kafka.bootstrap();

        // A single broker down: kcat sees every broker down and gives up at once.
        kafka.broker_down(1);
        const auto refused = kcat_try_produce(bootstrap, "t", std::string("k"), "lost-1",
                                              {"-X", "message.timeout.ms=1500"}, {}, 20s);
        CHECK_FALSE(refused.ok());
        CHECK_MESSAGE(contains(refused.output, "1/1 brokers are down"), refused.output);
        CHECK_MESSAGE(contains(refused.output, "Connection refused"), refused.output);

        kafka.broker_up(1);
        kcat_produce(bootstrap, "t", std::string("k"), "after-broker-up", {"-X", "message.timeout.ms=10000"});

        // All down with -E (keep going on broker errors, as the relay does): the delivery times out.
        kafka.all_down();
        const auto start = std::chrono::steady_clock::now();
        const auto timed_out = kcat_try_produce(bootstrap, "t", std::string("k"), "lost-2",
                                                {"-E", "-X", "message.timeout.ms=1500"}, {}, 20s);
        const auto elapsed = std::chrono::steady_clock::now() - start;
        CHECK_FALSE(timed_out.ok());
        CHECK(timed_out.exit_code == 1);
        CHECK_MESSAGE(contains(timed_out.output, "Delivery failed for message: Local: Message timed out"),
                      timed_out.output);
        CHECK(elapsed >= 1400ms);

        kafka.all_up();
        kcat_produce(bootstrap, "t", std::string("k"), "after-all-up", {"-X", "message.timeout.ms=10000"});

        const auto records = kcat_consume_all(bootstrap, "t");
        REQUIRE(records.size() == 2);
        CHECK(records[0].value == std::optional<std::string>("after-broker-up"));
        CHECK(records[1].value == std::optional<std::string>("after-all-up"));
    }

    TEST_CASE("push-errors is accepted and unknown commands are rejected") {
        RunDir dir("outbox-mock-kafka");
        MockKafka kafka(dir.path());

        CHECK(kafka.command("ping") == "pong");
        CHECK(kafka.raw_command("ping") == "OK pong");
        CHECK(kafka.command("brokers") == "3");

        // Unknown commands and bad arguments: ERR naming the problem; command() throws.
        const std::string reply = kafka.raw_command("frobnicate 1 2");
        CHECK(reply.rfind("ERR ", 0) == 0);
        CHECK_MESSAGE(contains(reply, "frobnicate"), reply);
        CHECK_THROWS_AS(kafka.command("frobnicate"), MockKafkaError);
        CHECK_THROWS_WITH_AS(kafka.command("broker-down 99"), doctest::Contains("BROKER_NOT_AVAILABLE"),
                             MockKafkaError);
        CHECK(kafka.raw_command("broker-down x").rfind("ERR invalid broker id", 0) == 0);
        CHECK(kafka.raw_command("push-errors 0").rfind("ERR usage", 0) == 0);
        CHECK(kafka.raw_command("push-errors 0 NO_SUCH_ERROR").rfind("ERR invalid error code", 0) == 0);
        CHECK(kafka.raw_command("").rfind("ERR", 0) == 0);
        CHECK_THROWS_AS(kafka.command("ping\nping"), std::invalid_argument);

        // Fault injection commands are accepted (numeric codes and names).
        CHECK_NOTHROW(kafka.set_rtt(2, 5));
        CHECK_NOTHROW(kafka.set_rtt(2, 0));
        CHECK_NOTHROW(kafka.broker_error_rtt(1, 0, 0, 1));
        CHECK_NOTHROW(kafka.create_topic("made", 2, 1));
        CHECK_THROWS_WITH_AS(kafka.create_topic("made", 2, 1), doctest::Contains("TOPIC_ALREADY_EXISTS"),
                             MockKafkaError);
        CHECK_NOTHROW(kafka.topic_error("made", 0));
        CHECK_NOTHROW(kafka.partition_leader("made", 1, 3));
        CHECK_NOTHROW(kafka.command("push-errors 3 0"));
        CHECK_NOTHROW(kafka.clear_errors(3));
        CHECK(contains(kcat_metadata(kafka.bootstrap()), R"("topic":"made")"));

        // Retriable Produce errors (NOT_LEADER_FOR_PARTITION 6, NOT_ENOUGH_REPLICAS 19,
        // REQUEST_TIMED_OUT 7) are retried by the idempotent producer: delivered once.
        kafka.push_errors(0, {6, 19, 7});
        kafka.command("push-errors 0 NOT_LEADER_FOR_PARTITION");
        kcat_produce(kafka.bootstrap(), "retried", std::string("k"), "once",
                     {"-X", "enable.idempotence=true", "-X", "retry.backoff.ms=10"});
        const auto records = kcat_consume_all(kafka.bootstrap(), "retried");
        REQUIRE(records.size() == 1);
        CHECK(records[0].value == std::optional<std::string>("once"));
    }

    TEST_CASE("broker exits on SIGTERM and leaves nothing behind") {
        RunDir dir("outbox-mock-kafka");
        MockKafka kafka(dir.path());
        const pid_t pid = kafka.pid();
        const std::string control = kafka.control_path();
        REQUIRE(std::filesystem::exists(control));
        // Give it connected clients and data, as in a real test.
        kcat_produce(kafka.bootstrap(), "t", std::string("k"), "v");
        REQUIRE(kcat_consume_all(kafka.bootstrap(), "t").size() == 1);

        const auto start = std::chrono::steady_clock::now();
        CHECK(kafka.stop() == 0);
        const auto took =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        MESSAGE("mock-kafka stopped in " << took.count() << " ms");
        CHECK_FALSE(kafka.running());
        CHECK(process_gone(pid));
        CHECK_FALSE(std::filesystem::exists(control));
        CHECK_FALSE(std::filesystem::exists(dir.path() + "/mock-kafka.bootstrap"));
        CHECK_MESSAGE(contains(kafka.log_tail(), "stopped in"), kafka.log_tail());
        CHECK(kafka.stop() == 0);  // idempotent
        CHECK_THROWS(kafka.command("ping"));
    }

    TEST_CASE("mock broker start-up failure is reported with its log") {
        RunDir dir("outbox-mock-kafka");
        CHECK_THROWS_WITH_AS(MockKafka(dir.path(), 3, {"--no-such-option"}),
                             doctest::Contains("unknown option"), std::runtime_error);
    }

}  // TEST_SUITE

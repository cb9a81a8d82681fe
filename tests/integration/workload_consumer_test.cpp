// The test-side workload generator and Kafka consumer (tests/support/workload.h, kafka_consumer.h)
// against real servers. The invariant checker's own tests need none: tests/checker/.
// Run: integration_tests -ts="workload_consumer"

#include <doctest/doctest.h>

#include <unistd.h>
#include "support/run_dir.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "support/invariant_checker.h"
#include "support/kafka_consumer.h"
#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/outbox_table.h"
#include "support/perfect_relay.h"
#include "support/pg_cluster.h"
#include "support/wait.h"
#include "support/workload.h"

using namespace outbox;
using namespace outbox::test;
using namespace std::chrono_literals;

TEST_SUITE("workload_consumer") {
    TEST_CASE("workload: committed and rolled-back events are recorded exactly") {
        PgCluster pg;
        auto conn = pg.connect();
        conn.exec(outbox_ddl());
        // A test_decoding slot shows the commit order the WAL really has.
        conn.exec("SELECT pg_create_logical_replication_slot('workload_check', 'test_decoding')");

        WorkloadOptions opts{.sessions = 4,
                             .target_events = 2000,
                             .min_rows = 1,
                             .max_rows = 50,
                             .aggregates = 16,
                             .rollback_ratio = 0.1,
                             .savepoint_ratio = 0.1,
                             .seed = 42};
        Workload workload(pg, opts);
        workload.run_to_completion();
        const auto stats = workload.stats();
        const auto committed = workload.committed();
        const auto rolled_back = workload.rolled_back_ids();
        MESSAGE("workload: " << stats.committed_events << " events in " << stats.committed_txns
                             << " txns committed, " << stats.rolled_back_events << " events rolled back ("
                             << stats.rolled_back_txns << " txns, " << stats.savepoint_rollbacks
                             << " savepoints) in " << stats.elapsed.count() << " ms = "
                             << (stats.elapsed.count() > 0
                                     ? stats.committed_events * 1000 / stats.elapsed.count()
                                     : 0)
                             << " events/s");

        CHECK(committed.size() == 2000);
        CHECK(workload.committed_count() == 2000);
        CHECK(stats.rolled_back_txns > 0);
        CHECK(stats.savepoint_rollbacks > 0);
        CHECK(stats.rolled_back_events == rolled_back.size());
        CHECK(conn.query_value("SELECT count(*) FROM outbox") == std::to_string(committed.size()));
        std::string id_array = "{";
        for (const auto& id : rolled_back) id_array += (id_array.size() > 1 ? "," : "") + id;
        id_array += "}";
        CHECK(conn.query_value("SELECT count(*) FROM outbox WHERE id = ANY($1::uuid[])", {id_array}) == "0");
        const TableCheck table = workload.verify_table();
        CHECK(table.ok());
        CHECK(table.rows == 2000);

        // Recorded list: commit_seq unique and increasing; per key strictly increasing.
        std::map<std::string, std::uint64_t> last_seq;
        std::set<std::string> ids;
        std::size_t repeated_ids = 0;
        std::size_t unordered = 0;
        std::size_t no_xid = 0;
        for (const auto& e : committed) {
            repeated_ids += ids.insert(e.id).second ? 0 : 1;
            unordered += e.commit_seq > last_seq[e.aggregate_id] ? 0 : 1;
            last_seq[e.aggregate_id] = e.commit_seq;
            no_xid += e.xid == 0 ? 1 : 0;
        }
        CHECK(repeated_ids == 0);
        CHECK(unordered == 0);
        CHECK(no_xid == 0);
        CHECK(std::none_of(rolled_back.begin(), rolled_back.end(),
                           [&](const std::string& id) { return ids.contains(id); }));

        // The WAL agrees: decoded in commit order, each key's events come in commit_seq order, every
        // transaction's xid is the recorded one, the payload text is what we recorded, and nothing
        // rolled back (also inside a savepoint) was decoded.
        std::unordered_map<std::string, const CommittedEvent*> by_id;
        for (const auto& e : committed) by_id[e.id] = &e;
        const auto changes = conn.query(
            "SELECT lsn::text, xid::text, data FROM pg_logical_slot_get_changes("
            "'workload_check', NULL, NULL)");
        std::map<std::string, std::uint64_t> wal_last_seq;
        std::vector<std::pair<const CommittedEvent*, std::string>> wal_order;  // event, xid
        std::vector<CommittedEvent> in_txn;
        PerfectRelay relay;
        std::vector<KafkaRecord> records;
        std::size_t decoded = 0;
        std::size_t order_errors = 0;
        std::size_t payload_errors = 0;
        std::size_t xid_errors = 0;
        std::size_t unknown = 0;
        for (const auto& row : changes) {
            const std::string& data = row.at(2).value();
            if (data.rfind("COMMIT", 0) == 0) {
                // All rows of the transaction get the commit's position, as the relay's header does.
                const auto lsn = Lsn::parse(row.at(0).value());
                REQUIRE(lsn.has_value());
                for (const auto& e : in_txn) records.push_back(relay.record_for(e, lsn));
                in_txn.clear();
                continue;
            }
            if (data.find("INSERT:") == std::string::npos) continue;
            const std::string marker = "id[uuid]:'";
            const auto at = data.find(marker);
            REQUIRE(at != std::string::npos);
            const std::string id = data.substr(at + marker.size(), 36);
            ++decoded;
            const auto it = by_id.find(id);
            if (it == by_id.end()) {
                ++unknown;
                continue;
            }
            const CommittedEvent& e = *it->second;
            if (e.commit_seq <= wal_last_seq[e.aggregate_id]) ++order_errors;
            wal_last_seq[e.aggregate_id] = e.commit_seq;
            if (row.at(1).value() != std::to_string(e.xid)) ++xid_errors;
            const std::string pmarker = "payload[jsonb]:'";
            const auto p = data.find(pmarker);
            const auto p_end = p == std::string::npos ? p : data.find('\'', p + pmarker.size());
            if (p_end == std::string::npos ||
                data.substr(p + pmarker.size(), p_end - p - pmarker.size()) != e.payload) {
                if (payload_errors++ == 0) MESSAGE("payload mismatch: " << data << " vs " << e.payload);
            }
            in_txn.push_back(e);
        }
        CHECK(decoded == committed.size());
        CHECK(unknown == 0);
        CHECK(order_errors == 0);
        CHECK(xid_errors == 0);
        CHECK(payload_errors == 0);

        // And a relay that published exactly the WAL passes the checker.
        const Verdict v = check_invariants(committed, rolled_back, records);
        INFO(v.describe());
        CHECK(v.ok());
        CHECK(v.delivered_unique == 2000);
        MESSAGE(Verdict::summary_header() << "\n" << v.summary());
    }

    TEST_CASE("workload: bad rows and a stop flag") {
        PgCluster pg;
        Workload workload(pg, WorkloadOptions{.sessions = 2, .target_events = 0, .seed = 7});
        workload.start();
        REQUIRE(wait_until([&] { return workload.committed_count() >= 100; }, 30s));
        const std::string null_type = workload.insert_bad_row(BadRowKind::NullAggregateType);
        const std::string big = workload.insert_bad_row(BadRowKind::OversizedPayload, 100000);
        const std::string no_key = workload.insert_bad_row(BadRowKind::NullAggregateId);
        workload.stop();
        workload.join();
        CHECK_FALSE(workload.running());
        const auto committed = workload.committed();
        CHECK(committed.size() == workload.committed_count());
        CHECK(std::count_if(committed.begin(), committed.end(),
                            [](const CommittedEvent& e) { return e.expect_dead_letter; }) == 3);
        auto conn = pg.connect();
        CHECK(conn.query_value("SELECT aggregatetype IS NULL FROM outbox WHERE id = $1", {null_type}) == "t");
        CHECK(conn.query_value("SELECT aggregateid IS NULL FROM outbox WHERE id = $1", {no_key}) == "t");
        CHECK(std::stoul(*conn.query_value("SELECT length(payload::text) FROM outbox WHERE id = $1",
                                           {big})) == 100000);
        CHECK(workload.verify_table().ok());
    }

    TEST_CASE("workload: a server restart mid-run loses no recorded commit") {
        PgCluster pg;
        Workload workload(
            pg, WorkloadOptions{
                    .sessions = 4, .target_events = 0, .max_rows = 20, .rollback_ratio = 0.1, .seed = 9});
        workload.start();
        REQUIRE(wait_until([&] { return workload.committed_count() >= 500; }, 30s));
        pg.restart(PgCluster::StopMode::Fast);
        const std::size_t after_restart = workload.committed_count();
        const bool resumed = wait_until(
            [&] { return !workload.running() || workload.committed_count() >= after_restart + 500; }, 60s);
        workload.stop();
        workload.join();  // rethrows a session's error
        REQUIRE(resumed);
        const auto stats = workload.stats();
        MESSAGE("restart: " << stats.reconnects << " reconnects, " << stats.in_doubt_txns
                            << " in-doubt commits (" << stats.in_doubt_commits << " had committed), "
                            << stats.committed_events << " committed");
        CHECK(stats.reconnects >= 1);
        const TableCheck table = workload.verify_table();
        CHECK(table.committed_missing.empty());
        CHECK(table.rolled_back_present.empty());
        CHECK(table.unknown_present.empty());
        CHECK(table.rows == stats.committed_events);
    }

    TEST_CASE("consumer: reads all records of matching topics while they are produced") {
        {
            RunDir dir("outbox-checker");
            MockKafka kafka(dir.path());
            const auto started = std::chrono::steady_clock::now();
            TopicConsumer consumer(TopicConsumerOptions{.bootstrap = kafka.bootstrap()});

            // The topics do not exist yet when the consumer starts: it must discover them.
            std::vector<std::pair<std::string, std::string>> a;
            std::vector<std::pair<std::string, std::string>> b;
            for (int i = 0; i < 600; ++i)
                a.emplace_back("key-" + std::to_string(i % 7), "a-" + std::to_string(i));
            for (int i = 0; i < 400; ++i)
                b.emplace_back("key-" + std::to_string(i % 5), "b-" + std::to_string(i));
            kcat_produce_many(kafka.bootstrap(), "outbox.event.a", a);
            kcat_produce_many(kafka.bootstrap(), "outbox.event.b", b);
            kcat_produce(kafka.bootstrap(), "not-outbox", std::string("k"), "ignored");
            kcat_produce(kafka.bootstrap(), "outbox.event.a", std::string("key-h"), "with headers", {},
                         {{"id", "evt-1"}, {"outbox-lsn", "0/16B3748"}});

            REQUIRE_MESSAGE(consumer.wait_for_count(1001, 30s), consumer.size() << " records");
            REQUIRE(consumer.wait_for_ids({"evt-1"}, 5s));
            // A topic created later is picked up too.
            kcat_produce_many(kafka.bootstrap(), "outbox.dead_letter", {{"k", "late-1"}, {"k", "late-2"}});
            REQUIRE_MESSAGE(consumer.wait_for_count(1003, 30s), consumer.size() << " records");
            CHECK(consumer.wait_caught_up(10s));
            const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
            MESSAGE("1003 records consumed in " << elapsed.count() << " ms");

            const auto records = consumer.records();
            CHECK(records.size() == 1003);  // nothing twice, nothing from "not-outbox"
            CHECK(consumer.gaps() == 0);
            CHECK(consumer.distinct_ids() == 1);
            std::map<std::string, std::map<std::string, std::vector<std::string>>>
                per_key;  // topic -> key -> values
            for (const auto& r : records)
                per_key[r.topic][r.key.value_or("")].push_back(r.value.value_or(""));
            CHECK(per_key.size() == 3);
            // Per key, the production order survives.
            std::size_t a_count = 0;
            std::size_t out_of_order = 0;
            for (const auto& [key, values] : per_key["outbox.event.a"]) {
                a_count += values.size();
                if (key == "key-h") continue;
                for (std::size_t i = 1; i < values.size(); ++i) {
                    out_of_order +=
                        std::stoi(values[i].substr(2)) > std::stoi(values[i - 1].substr(2)) ? 0 : 1;
                }
            }
            CHECK(a_count == 601);
            CHECK(out_of_order == 0);
            std::size_t b_count = 0;
            for (const auto& [key, values] : per_key["outbox.event.b"]) b_count += values.size();
            CHECK(b_count == 400);
            CHECK(per_key["outbox.dead_letter"]["k"] == std::vector<std::string>{"late-1", "late-2"});
            const auto with_headers = std::find_if(records.begin(), records.end(), [](const KafkaRecord& r) {
                return r.key == std::optional<std::string>("key-h");
            });
            REQUIRE(with_headers != records.end());
            CHECK(header_value(*with_headers, "id") == std::optional<std::string>("evt-1"));
            CHECK(header_map(*with_headers).at("outbox-lsn") == std::optional<std::string>("0/16B3748"));
            const auto topics = consumer.topics();
            CHECK(std::find(topics.begin(), topics.end(), "not-outbox") == topics.end());

            // All brokers down for a while: the consumer carries on afterwards, from where it was.
            kafka.all_down();
            std::this_thread::sleep_for(1500ms);  // the fault's duration, not a wait for a condition
            kafka.all_up();
            kcat_produce_many(kafka.bootstrap(), "outbox.event.b", {{"key-0", "b-400"}, {"key-0", "b-401"}});
            REQUIRE_MESSAGE(consumer.wait_for_count(1005, 30s), consumer.size() << " records");
            CHECK(consumer.wait_caught_up(10s));
            CHECK(consumer.size() == 1005);
            CHECK(consumer.gaps() == 0);
            const auto errors = consumer.errors();
            MESSAGE(errors.size() << " consumer errors/warnings"
                                  << (errors.empty() ? "" : ", first: " + errors.front()));

            const auto stop_started = std::chrono::steady_clock::now();
            consumer.stop();
            MESSAGE("stop took " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - stop_started)
                                        .count()
                                 << " ms");
            CHECK(consumer.records().size() == 1005);  // still readable after stop
        }
    }

}  // TEST_SUITE

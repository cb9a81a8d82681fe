#pragma once

// The stack the fault tests run the relay against: a throwaway PostgreSQL with the outbox table,
// the mock Kafka broker process (3 brokers), and a consumer reading every outbox topic from the
// beginning while the load runs.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/lsn.h"
#include "support/invariant_checker.h"
#include "support/kafka_consumer.h"
#include "support/mock_kafka.h"
#include "support/outbox_table.h"
#include "support/pg_cluster.h"
#include "support/workload.h"

namespace outbox::test {

struct StackOptions {
    PgClusterOptions pg;
    // false: the consumer stores no values (big runs); pass check_values = false to the checker.
    bool keep_values = true;
};

// The relay slot's confirmed_flush_lsn as text (no row: the slot does not exist).
inline constexpr const char* kSlotConfirmedSql =
    "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'outbox_relay'";

// Reads the slot's confirmed_flush_lsn every 100 ms on its own thread and connection, for the
// checker's checkpoint invariant (the slot never passes an unacknowledged event). Read errors
// (the server restarting, the slot not there yet) are skipped: a missing sample judges nothing.
class SlotSampler {
public:
    explicit SlotSampler(const PgCluster& pg)
        : pg_(pg), thread_([this](const std::stop_token& stop) { run(stop); }) {}
    ~SlotSampler() { stop(); }
    SlotSampler(const SlotSampler&) = delete;
    SlotSampler& operator=(const SlotSampler&) = delete;

    void stop() {
        thread_.request_stop();
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] std::vector<SlotSample> samples() const {
        std::lock_guard lock(mutex_);
        return samples_;
    }

private:
    void run(const std::stop_token& stop) {
        std::optional<pg::Connection> conn;
        std::mutex wait_mutex;
        std::condition_variable_any wakeup;
        while (!stop.stop_requested()) {
            try {
                if (!conn) conn.emplace(pg_.connect());
                const auto text = conn->query_value(kSlotConfirmedSql);
                const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count();
                if (const auto lsn = text ? Lsn::parse(*text) : std::nullopt) {
                    std::lock_guard lock(mutex_);
                    samples_.push_back({*lsn, now_ms});
                }
            } catch (const std::exception&) {
                conn.reset();
            }
            std::unique_lock lock(wait_mutex);
            wakeup.wait_for(lock, stop, std::chrono::milliseconds(100), [] { return false; });
        }
    }

    const PgCluster& pg_;
    mutable std::mutex mutex_;
    std::vector<SlotSample> samples_;
    std::jthread thread_;  // last: starts after the members it uses exist
};

struct Stack {
    explicit Stack(StackOptions options = {})
        : pg(std::move(options.pg)),
          kafka(pg.run_dir() + "/kafka", 3),
          consumer(TopicConsumerOptions{.bootstrap = kafka.bootstrap(), .keep_values = options.keep_values}) {
        pg.exec(outbox_ddl());
    }

    // When the scenario started (its row in the report gives the seconds since).
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    PgCluster pg;
    MockKafka kafka;
    TopicConsumer consumer;
    SlotSampler slot_sampler{pg};

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
        const auto text = pg.query_value(kSlotConfirmedSql);
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

// Appends the scenario's row to <build>/fault-report.tsv (one write(2) with O_APPEND, so rows of
// scenarios running in parallel do not interleave). The ctest fixture "faults/report" prints the
// table from it after the last scenario and fails if a row is not OK (tests/ops/print-fault-report).
inline void append_report_row(const std::string& scenario, const Verdict& verdict, double seconds) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", seconds);
    const std::string row = scenario + "\t" + std::to_string(verdict.committed) + "\t" +
                            std::to_string(verdict.lost) + "\t" + std::to_string(verdict.duplicates) + "\t" +
                            (verdict.ok() ? "OK" : "FAIL") + "\t" + secs + "\n";
    const int fd =
        ::open(OUTBOX_BUILD_DIR "/fault-report.tsv", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        MESSAGE("cannot append to " OUTBOX_BUILD_DIR "/fault-report.tsv: " << std::strerror(errno));
        return;
    }
    CHECK(::write(fd, row.data(), row.size()) == static_cast<ssize_t>(row.size()));
    ::close(fd);
}

// What a scenario ended with: the checker's verdict over every committed event.
struct Outcome {
    Verdict verdict;
    std::vector<CommittedEvent> committed;
};

// Ends the load, waits until every committed event (workload's and `extra`) reached Kafka, runs
// the checker and prints the scenario's row.
inline Outcome finish(Stack& s, Workload& workload, const std::string& scenario, CheckOptions options,
                      std::vector<CommittedEvent> extra = {},
                      std::chrono::milliseconds arrival_timeout = std::chrono::seconds(120)) {
    workload.stop();
    workload.join();
    std::vector<CommittedEvent> committed = workload.committed();
    committed.insert(committed.end(), std::make_move_iterator(extra.begin()),
                     std::make_move_iterator(extra.end()));
    CHECK(s.consumer.wait_for_ids(Stack::ids(committed), arrival_timeout));
    CHECK(s.consumer.wait_caught_up(std::chrono::seconds(30)));
    CHECK(s.consumer.gaps() == 0);  // the mock dropped nothing before we read it
    s.slot_sampler.stop();
    options.slot_samples = s.slot_sampler.samples();
    Outcome out{check_invariants(committed, workload.rolled_back_ids(), s.consumer.records(), options),
                std::move(committed)};
    INFO(out.verdict.describe());
    CHECK(out.verdict.ok());
    append_report_row(scenario, out.verdict,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count());
    MESSAGE("| " << scenario << " | " << out.verdict.committed << " | " << out.verdict.lost << " | "
                 << out.verdict.duplicates << " | " << std::string(out.verdict.ok() ? "OK" : "FAIL") << " |\n"
                 << Verdict::summary_header() << "\n"
                 << out.verdict.summary());
    return out;
}

inline Outcome finish(Stack& s, Workload& workload, const std::string& scenario,
                      std::optional<Lsn> confirmed_at_fault, std::vector<CommittedEvent> extra = {}) {
    CheckOptions options;
    options.confirmed_at_fault = confirmed_at_fault;
    return finish(s, workload, scenario, options, std::move(extra));
}

}  // namespace outbox::test

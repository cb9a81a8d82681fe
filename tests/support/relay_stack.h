#pragma once

// The stack the fault scenarios run the relay against: a relay scenario (support/relay_scenario.h)
// with 3 brokers, a consumer reading every outbox topic from the beginning while the load runs, the
// slot's confirmed position sampled throughout, and finish(): the checker's verdict and the report row.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/lsn.h"
#include "support/http_client.h"
#include "support/invariant_checker.h"
#include "support/kafka_consumer.h"
#include "support/mock_kafka.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/relay_scenario.h"
#include "support/workload.h"

namespace outbox::test {

struct StackOptions {
    PgClusterOptions pg;
    // false: the consumer stores no values (big runs); pass check_values = false to the checker.
    bool keep_values = true;
};

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

// A relay scenario with 3 brokers, a consumer reading every outbox topic from the beginning and
// the slot sampler; the load it starts runs until finish().
class Stack : public RelayScenario {
public:
    explicit Stack(StackOptions options = {})
        : RelayScenario(RelayScenarioOptions{.pg = std::move(options.pg), .brokers = 3}),
          consumer(TopicConsumerOptions{.bootstrap = kafka.bootstrap(), .keep_values = options.keep_values}) {
    }

    TopicConsumer consumer;
    SlotSampler slot_sampler{pg};

    // Starts `options` as the stack's workload (stopped before the relays and servers) and
    // REQUIREs that its first `warm_up` events reach Kafka within 60 s.
    Workload& start_load(WorkloadOptions options, std::size_t warm_up) {
        workload_ = std::make_unique<Workload>(pg, std::move(options));
        workload_->start();
        REQUIRE(consumer.wait_for_count(warm_up, std::chrono::seconds(60)));
        return *workload_;
    }

    // Where a second relay of the stack (a standby) runs: a directory of its own beside the
    // first relay's, and a /metrics port whose outbox_relay_standby gauge says whether it waits
    // (1) or streams (0).
    struct StandbyPlace {
        std::string dir;
        int metrics_port = 0;
        [[nodiscard]] std::string metrics_listen() const {
            return "127.0.0.1:" + std::to_string(metrics_port);
        }
        [[nodiscard]] std::optional<double> standby_gauge() const {
            return metric_sample(http_get(metrics_port, "/metrics").body, "outbox_relay_standby");
        }
    };
    StandbyPlace standby_place() {
        StandbyPlace place{pg.run_dir() + "/standby", free_tcp_port()};
        std::filesystem::create_directories(place.dir);
        return place;
    }

    static std::vector<std::string> ids(const std::vector<CommittedEvent>& events) {
        std::vector<std::string> out;
        out.reserve(events.size());
        for (const auto& e : events) out.push_back(e.id);
        return out;
    }
    static std::vector<std::string> ids(const Workload& workload) { return ids(workload.committed()); }

private:
    std::unique_ptr<Workload> workload_;
};

// The start most fault scenarios share: a Stack whose relay (on config(`config`)) streams and whose
// load has its first `warm_up` events in Kafka.
struct LoadedStack : Stack {
    LoadedStack(const RelayConfig& config, WorkloadOptions load, std::size_t warm_up,
                StackOptions options = {})
        : Stack(std::move(options)),
          relay(streaming_relay(config)),
          workload(start_load(std::move(load), warm_up)) {}

    RelayProcess& relay;
    Workload& workload;
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
// the checker, prints the scenario's row, and stops the relays still running (each must exit 0).
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
    // Rows of the version matrix (OUTBOX_PG_BIN set) name their server: "pg17: <scenario>".
    const bool matrix = std::getenv("OUTBOX_PG_BIN") != nullptr;
    const std::string row_name = (matrix ? "pg" + std::to_string(s.pg.server_major()) + ": " : "") + scenario;
    append_report_row(row_name, out.verdict,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count());
    MESSAGE("| " << row_name << " | " << out.verdict.committed << " | " << out.verdict.lost << " | "
                 << out.verdict.duplicates << " | " << std::string(out.verdict.ok() ? "OK" : "FAIL") << " |\n"
                 << Verdict::summary_header() << "\n"
                 << out.verdict.summary());
    s.stop_relays();
    return out;
}

inline Outcome finish(Stack& s, Workload& workload, const std::string& scenario,
                      std::optional<Lsn> confirmed_at_fault, std::vector<CommittedEvent> extra = {}) {
    CheckOptions options;
    options.confirmed_at_fault = confirmed_at_fault;
    return finish(s, workload, scenario, options, std::move(extra));
}

}  // namespace outbox::test

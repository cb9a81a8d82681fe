#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pg/connection.h"

// The test-side workload generator: writes outbox events from several sessions the way a service
// would (business transaction = a few outbox rows), and records exactly what committed, in which
// order per aggregate, and what was rolled back, for the invariant checker
// (support/invariant_checker.h).

namespace outbox::test {

class PgCluster;

struct WorkloadOptions {
    int sessions = 4;                  // threads, one pg::Connection each
    std::size_t target_events = 1000;  // stop once this many events committed; 0: until stop()/deadline
    int min_rows = 1;                  // rows per transaction (committed rows; see savepoint_ratio)
    int max_rows = 10;
    int aggregates = 16;  // aggregate ids "agg-0" .. "agg-{aggregates-1}"
    // Each transaction touches 1..max_aggregates_per_txn distinct aggregates (fewer means more
    // concurrency between sessions: see the per-aggregate locks in workload.cpp).
    int max_aggregates_per_txn = 3;
    // Aggregate i has type aggregate_types[i % size] (fixed per aggregate, so one key = one topic).
    std::vector<std::string> aggregate_types{"order", "user"};
    double rollback_ratio = 0.0;  // probability that a transaction ends with ROLLBACK
    // Probability that a committed transaction also inserts rows inside a savepoint that is
    // rolled back (ROLLBACK TO SAVEPOINT): those rows must never appear either.
    double savepoint_ratio = 0.0;
    std::uint64_t seed = 1;
    std::chrono::milliseconds max_duration{0};        // 0: no deadline
    std::size_t payload_padding = 0;                  // extra characters in the payload ("pad" member)
    std::chrono::microseconds pause_between_txns{0};  // per session, to throttle the load
    std::string table = "outbox";
    std::string dbname = "postgres";
    bool create_table = true;  // CREATE TABLE IF NOT EXISTS (outbox_ddl) in the constructor
    // After a lost connection (server restart in a fault test), sessions reconnect for this long
    // before giving up (a session error, rethrown by join()); a COMMIT whose outcome is unknown
    // is resolved by looking at the table. stop() ends the waiting unless a COMMIT is in doubt.
    std::chrono::milliseconds reconnect_timeout = std::chrono::seconds(60);
};

struct CommittedEvent {
    std::string id;              // uuid text, lower case
    std::string aggregate_type;  // "" when inserted as NULL (bad rows)
    std::string aggregate_id;    // "" when inserted as NULL (bad rows)
    std::string type;
    // The payload exactly as PostgreSQL prints the jsonb (and so as the relay publishes it);
    // empty when the test should not compare values (e.g. oversized bad rows).
    std::string payload;
    // Global commit order of events: for two events of the same aggregate, the one with the
    // smaller commit_seq committed first (or earlier in the same transaction). Across different
    // aggregates it says nothing. See workload.cpp for why this is exact.
    std::uint64_t commit_seq = 0;
    std::uint64_t txn_seq = 0;        // which committed transaction (same value = same transaction)
    std::uint32_t xid = 0;            // top-level transaction id (as in the outbox-xid header); 0 unknown
    bool expect_dead_letter = false;  // inserted by insert_bad_row: expected on the dead-letter topic
};

enum class BadRowKind {
    NullAggregateType,   // aggregatetype NULL          -> null_value
    EmptyAggregateType,  // aggregatetype ''            -> empty_value
    InvalidTopicName,    // aggregatetype "bad type!"   -> invalid_topic
    NullAggregateId,     // aggregateid NULL (no key)   -> null_value
    EmptyAggregateId,    // aggregateid ''              -> empty_value
    OversizedPayload,    // payload of `payload_bytes`  -> too_large (if Kafka's limit is lower)
};

struct WorkloadStats {
    std::size_t committed_events = 0;
    std::size_t rolled_back_events = 0;  // whole-transaction and savepoint rollbacks
    std::size_t committed_txns = 0;
    std::size_t rolled_back_txns = 0;  // explicit ROLLBACKs and transactions lost with a connection
    std::size_t savepoint_rollbacks = 0;
    std::size_t in_doubt_txns = 0;     // COMMIT sent, then the connection broke: looked up in the table
    std::size_t in_doubt_commits = 0;  // ... and found committed
    std::size_t reconnects = 0;
    std::chrono::milliseconds elapsed{0};  // start() until the last session finished (or now)
};

// What the table holds compared with what the workload recorded (verify_table()).
struct TableCheck {
    std::size_t rows = 0;
    std::vector<std::string> committed_missing;    // recorded as committed, not in the table
    std::vector<std::string> rolled_back_present;  // recorded as rolled back, in the table
    std::vector<std::string> unknown_present;      // in the table, never generated by this workload
    [[nodiscard]] bool ok() const {
        return committed_missing.empty() && rolled_back_present.empty() && unknown_present.empty();
    }
};

// Generates outbox events from `sessions` threads until `target_events` events committed (or
// stop() / max_duration). Thread-safe accessors may be called while it runs.
//
// Event ids are deterministic UUIDs "NNNNNNNN-SSSS-4000-8000-CCCCCCCCCCCC": N from the seed and
// the number of Workloads this process created before (so two workloads on one table never
// collide), S the session (ffff: insert_bad_row), C a per-session counter. Each session's
// sequence of transactions (sizes, aggregates, rollbacks) is a pure function of the seed; how
// sessions interleave, and so which session commits how much of target_events, is not.
class Workload {
public:
    Workload(const PgCluster& cluster, WorkloadOptions options);
    Workload(std::string dsn, WorkloadOptions options);  // any libpq conninfo
    ~Workload();                                         // stop() and join(), errors swallowed
    Workload(const Workload&) = delete;
    Workload& operator=(const Workload&) = delete;

    void start();                                 // spawns the sessions and returns
    void stop() noexcept;                         // sessions finish their current transaction and exit
    void join();                                  // waits for the sessions; rethrows the first session error
    void run_to_completion();                     // start() + join()
    [[nodiscard]] bool running() const noexcept;  // started and some session still runs

    // Inserts one row the relay must reject (dead-letter tests) in its own committed
    // transaction; recorded in committed() with expect_dead_letter = true. Returns its id.
    // Aggregate id "bad-<n>" unless the kind makes it NULL or empty. Thread-safe.
    std::string insert_bad_row(BadRowKind kind, std::size_t payload_bytes = 2 * 1024 * 1024);

    // Snapshots, sorted by commit_seq / generation order.
    [[nodiscard]] std::vector<CommittedEvent> committed() const;
    [[nodiscard]] std::vector<std::string> rolled_back_ids() const;
    [[nodiscard]] std::size_t committed_count() const noexcept { return committed_events_.load(); }
    [[nodiscard]] WorkloadStats stats() const;
    [[nodiscard]] const WorkloadOptions& options() const noexcept { return options_; }
    [[nodiscard]] const std::string& dsn() const noexcept { return dsn_; }

    // Compares the table with the record (reads every row id): after a crash of the server,
    // a COMMIT that returned could still be lost if synchronous_commit was off.
    [[nodiscard]] TableCheck verify_table() const;

    // The id the generator gives to event `counter` of session `session` (0xffff: bad rows).
    [[nodiscard]] std::string make_id(std::uint32_t session, std::uint64_t counter) const;

private:
    struct Session;
    void run_session(int index);
    [[nodiscard]] pg::Connection connect_with_retry(std::chrono::steady_clock::time_point deadline,
                                                    bool give_up_on_stop);
    std::size_t reserve_events(std::size_t wanted);
    void unreserve_events(std::size_t count);
    [[nodiscard]] bool should_stop() const;
    void record_failure(std::exception_ptr error);

    WorkloadOptions options_;
    std::string dsn_;
    std::uint32_t id_namespace_ = 0;

    std::vector<std::mutex> aggregate_locks_;
    mutable std::mutex mutex_;  // guards everything below that is not atomic
    std::vector<CommittedEvent> committed_;
    std::vector<std::string> rolled_back_;
    std::uint64_t next_commit_seq_ = 1;
    std::uint64_t next_txn_seq_ = 1;
    std::size_t remaining_ = 0;  // events still to reserve when target_events > 0
    WorkloadStats stats_;
    std::exception_ptr first_error_;

    std::mutex bad_row_mutex_;
    std::uint64_t bad_row_counter_ = 0;

    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> committed_events_{0};
    std::atomic<int> active_sessions_{0};
    std::chrono::steady_clock::time_point started_at_{};
    std::chrono::steady_clock::time_point finished_at_{};
    std::optional<std::chrono::steady_clock::time_point> deadline_;
    std::vector<std::thread> threads_;
    bool started_ = false;
};

}  // namespace outbox::test

#include "support/workload.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "support/outbox_table.h"
#include "support/pg_cluster.h"

// How the commit order per aggregate is known exactly
// ----------------------------------------------------
// PostgreSQL decodes (and the relay publishes) transactions in commit order, but neither a
// sequence nor the wall clock tells the commit order of concurrent sessions. So the generator
// makes the order observable instead of guessing it: every aggregate has a mutex here, and a
// session holds the mutexes of all aggregates its transaction touches (taken in ascending
// order, so sessions cannot deadlock) from before its first INSERT until after it recorded the
// outcome. Two transactions that share an aggregate therefore never overlap: the second one
// starts only after the first one's COMMIT returned, so its commit record is later in the WAL.
// The commit_seq handed out while the locks are still held is thus the true commit order for
// every aggregate (within a transaction, rows keep their insertion order). Transactions on
// disjoint aggregates still run and commit concurrently, which is what the relay must cope
// with; their relative order is not recorded because no invariant depends on it.
//
// A COMMIT whose connection broke before the reply (server restart in a fault test) is "in
// doubt": the session reconnects, waits until the old backend is gone, and looks its rows up,
// still holding the aggregate locks, so the recorded order stays exact in that case too.

namespace outbox::test {
namespace {

std::atomic<std::uint64_t> g_workload_instances{0};

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// A small PRNG with its own distributions, so a seed means the same thing with every
// standard library.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() { return splitmix64(state_); }
    // Uniform in [lo, hi] (inclusive); the modulo bias is irrelevant for test data.
    int uniform(int lo, int hi) {
        if (hi <= lo) return lo;
        return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1));
    }
    bool chance(double p) {
        if (p <= 0.0) return false;
        if (p >= 1.0) return true;
        return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
    }

private:
    std::uint64_t state_;
};

struct PlannedRow {
    std::string id;
    int aggregate = 0;
    std::string aggregate_type;
    std::string aggregate_id;
    std::string type;
    std::string payload;
};

// The payload exactly as PostgreSQL prints jsonb: members sorted by key length, then bytes;
// ": " and ", " separators. So the text we record equals what the relay will publish.
std::string make_payload(std::uint64_t seq, std::uint32_t session, std::size_t padding) {
    if (padding == 0) return fmt::format(R"({{"seq": {}, "session": {}}})", seq, session);
    return fmt::format(R"({{"pad": "{}", "seq": {}, "session": {}}})", std::string(padding, 'x'), seq,
                       session);
}

bool is_connection_loss(const std::exception& error, PGconn* conn) {
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) return true;
    if (const auto* server = dynamic_cast<const pg::ServerError*>(&error)) {
        const std::string& state = server->sqlstate();
        if (state.empty()) return true;  // no SQLSTATE: the error came from libpq, not the server
        return state.rfind("08", 0) == 0 || state.rfind("57", 0) == 0;
    }
    return dynamic_cast<const Error*>(&error) != nullptr;  // e.g. "cannot connect"
}

std::string uuid_array_literal(const std::vector<std::string>& ids) {
    std::string out = "{";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i != 0) out += ',';
        out += ids[i];
    }
    out += '}';
    return out;
}

std::uint32_t xid_from_text(const std::optional<std::string>& text) {
    if (!text || text->empty()) return 0;
    // pg_current_xact_id() is an xid8 (epoch << 32 | xid); pgoutput sends the 32-bit xid.
    return static_cast<std::uint32_t>(std::stoull(*text) & 0xFFFFFFFFull);
}

void ignore_notice(void* /*arg*/, const char* /*message*/) {}

pg::Connection connect_quietly(const std::string& dsn) {
    auto conn = pg::Connection::connect(dsn, pg::ReplicationMode::None, std::nullopt, "outbox-workload");
    PQsetNoticeProcessor(conn.get(), ignore_notice, nullptr);
    return conn;
}

// Sends a multi-statement simple query and reads every result. Returns the first value of the
// first result with rows; throws pg::ServerError for the first failing statement (the server
// skips the rest of the string after an error).
std::optional<std::string> run_script(pg::Connection& conn, const std::string& sql) {
    PGconn* c = conn.get();
    if (PQsendQuery(c, sql.c_str()) == 0) {
        throw pg::ServerError(ErrorKind::Transient, "cannot send the transaction: " + conn.error_message(),
                              "");
    }
    std::optional<std::string> value;
    std::exception_ptr error;
    while (PGresult* raw = PQgetResult(c)) {
        const pg::ResultHandle res(raw);
        const ExecStatusType status = PQresultStatus(raw);
        if (status == PGRES_TUPLES_OK) {
            if (!value && PQntuples(raw) > 0 && PQnfields(raw) > 0 && PQgetisnull(raw, 0, 0) == 0) {
                value = std::string(PQgetvalue(raw, 0, 0));
            }
        } else if (status != PGRES_COMMAND_OK && !error) {
            const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
            std::string message = PQresultErrorMessage(raw);
            while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
            const std::string sqlstate = state != nullptr ? state : "";
            error = std::make_exception_ptr(pg::ServerError(
                sqlstate.empty() ? ErrorKind::Transient : pg::classify_sqlstate(sqlstate),
                "workload transaction: " + (message.empty() ? conn.error_message() : message), sqlstate));
        }
    }
    if (error) std::rethrow_exception(error);
    return value;
}

}  // namespace

struct Workload::Session {
    int index = 0;
    Rng rng{0};
    std::uint64_t counter = 0;
    std::optional<pg::Connection> conn;
    int backend_pid = 0;
    std::string postmaster_start;
    std::vector<int> permutation;  // for picking distinct aggregates
};

Workload::Workload(const PgCluster& cluster, WorkloadOptions options)
    : Workload(cluster.tcp_dsn(options.dbname), options) {}  // a copy: argument order is unspecified

Workload::Workload(std::string dsn, WorkloadOptions options)
    : options_(std::move(options)),
      dsn_(std::move(dsn)),
      aggregate_locks_(static_cast<std::size_t>(std::max(options_.aggregates, 1))) {
    if (options_.sessions < 1) throw std::invalid_argument("Workload: sessions must be >= 1");
    if (options_.min_rows < 1 || options_.max_rows < options_.min_rows) {
        throw std::invalid_argument("Workload: need 1 <= min_rows <= max_rows");
    }
    if (options_.aggregates < 1) throw std::invalid_argument("Workload: aggregates must be >= 1");
    if (options_.aggregate_types.empty()) throw std::invalid_argument("Workload: aggregate_types is empty");
    if (options_.max_aggregates_per_txn < 1) options_.max_aggregates_per_txn = 1;
    std::uint64_t state = options_.seed ^ (g_workload_instances.fetch_add(1) * 0xD1B54A32D192ED03ull);
    id_namespace_ = static_cast<std::uint32_t>(splitmix64(state) >> 32);
    remaining_ = options_.target_events;
    if (options_.create_table) {
        auto conn = connect_quietly(dsn_);
        if (!conn.query_value("SELECT to_regclass($1)::text", {options_.table})) {
            conn.exec(outbox_ddl(OutboxTable{.name = options_.table, .if_not_exists = true}),
                      "create the outbox table");
        }
    }
}

Workload::~Workload() {
    stop();
    try {
        join();
    } catch (...) {
        // A destructor must not throw; join() is where tests see session errors.
    }
}

std::string Workload::make_id(std::uint32_t session, std::uint64_t counter) const {
    return fmt::format("{:08x}-{:04x}-4000-8000-{:012x}", id_namespace_, session & 0xFFFFu,
                       counter & 0xFFFFFFFFFFFFull);
}

void Workload::start() {
    if (started_) throw std::logic_error("Workload::start called twice");
    started_ = true;
    started_at_ = std::chrono::steady_clock::now();
    if (options_.max_duration.count() > 0) deadline_ = started_at_ + options_.max_duration;
    active_sessions_ = options_.sessions;
    threads_.reserve(static_cast<std::size_t>(options_.sessions));
    for (int i = 0; i < options_.sessions; ++i) threads_.emplace_back([this, i] { run_session(i); });
}

void Workload::stop() noexcept {
    stop_ = true;
}

void Workload::join() {
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    std::lock_guard lock(mutex_);
    if (first_error_) {
        auto error = first_error_;
        first_error_ = nullptr;  // rethrown once
        std::rethrow_exception(error);
    }
}

void Workload::run_to_completion() {
    start();
    join();
}

bool Workload::running() const noexcept {
    return started_ && active_sessions_.load() > 0;
}

bool Workload::should_stop() const {
    return stop_.load() || (deadline_ && std::chrono::steady_clock::now() >= *deadline_);
}

void Workload::record_failure(std::exception_ptr error) {
    {
        std::lock_guard lock(mutex_);
        if (!first_error_) first_error_ = std::move(error);
    }
    stop_ = true;  // fail fast: the other sessions end too
}

std::size_t Workload::reserve_events(std::size_t wanted) {
    if (options_.target_events == 0) return wanted;
    std::lock_guard lock(mutex_);
    const std::size_t granted = std::min(wanted, remaining_);
    remaining_ -= granted;
    return granted;
}

void Workload::unreserve_events(std::size_t count) {
    if (options_.target_events == 0 || count == 0) return;
    std::lock_guard lock(mutex_);
    remaining_ += count;
}

namespace {
// stop() while a session waits for the server to come back, with nothing left to resolve.
struct StopRequested {};
}  // namespace

pg::Connection Workload::connect_with_retry(std::chrono::steady_clock::time_point deadline,
                                            bool give_up_on_stop) {
    while (true) {
        try {
            return connect_quietly(dsn_);
        } catch (const Error&) {
            if (std::chrono::steady_clock::now() >= deadline) throw;
        }
        if (give_up_on_stop && stop_.load()) throw StopRequested{};
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

void Workload::run_session(int index) {
    Session s;
    s.index = index;
    std::uint64_t seed_state = options_.seed;
    for (int i = 0; i <= index; ++i) splitmix64(seed_state);
    s.rng = Rng(splitmix64(seed_state));
    s.permutation.resize(static_cast<std::size_t>(options_.aggregates));
    for (int i = 0; i < options_.aggregates; ++i) s.permutation[static_cast<std::size_t>(i)] = i;

    const auto reconnect_deadline = [&] {
        return std::chrono::steady_clock::now() + options_.reconnect_timeout;
    };
    // Retries what a restarting server can throw at a fresh connection, up to the deadline.
    const auto retry = [&](const std::function<void()>& step) {
        const auto deadline = reconnect_deadline();
        while (true) {
            try {
                step();
                return;
            } catch (const std::exception& error) {
                if (!is_connection_loss(error, s.conn ? s.conn->get() : nullptr) ||
                    std::chrono::steady_clock::now() >= deadline) {
                    throw;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    };
    // With nothing in doubt a session may give up waiting for the server when stop() is called;
    // with a COMMIT in doubt it must find out (or fail) first.
    bool nothing_in_doubt = true;
    const auto open = [&] {
        s.conn.reset();
        s.conn = connect_with_retry(reconnect_deadline(), nothing_in_doubt);
        const auto rows = s.conn->query("SELECT pg_backend_pid()::text, pg_postmaster_start_time()::text");
        s.backend_pid = std::stoi(rows.at(0).at(0).value_or("0"));
        s.postmaster_start = rows.at(0).at(1).value_or("");
    };

    try {
        retry(open);
        const std::string table = options_.table;
        const int k = options_.aggregates;
        while (!should_stop()) {
            // ---- plan the transaction (a pure function of the session's seed) ----
            int size = s.rng.uniform(options_.min_rows, options_.max_rows);
            const bool rollback = s.rng.chance(options_.rollback_ratio);
            const bool savepoint = !rollback && s.rng.chance(options_.savepoint_ratio);
            const int savepoint_rows = savepoint ? s.rng.uniform(1, std::max(1, size / 2)) : 0;
            const int savepoint_at = savepoint ? s.rng.uniform(0, size) : 0;
            const int m = s.rng.uniform(1, std::min(options_.max_aggregates_per_txn, k));
            for (int i = 0; i < m; ++i) {  // partial Fisher-Yates: m distinct aggregates
                const int j = s.rng.uniform(i, k - 1);
                std::swap(s.permutation[static_cast<std::size_t>(i)],
                          s.permutation[static_cast<std::size_t>(j)]);
            }
            std::vector<int> aggs(s.permutation.begin(), s.permutation.begin() + m);
            std::sort(aggs.begin(), aggs.end());

            std::size_t reserved = 0;
            if (rollback) {
                if (options_.target_events != 0) {
                    std::lock_guard lock(mutex_);
                    if (remaining_ == 0) break;
                }
            } else {
                reserved = reserve_events(static_cast<std::size_t>(size));
                if (reserved == 0) break;
                size = static_cast<int>(reserved);
            }

            const auto make_row = [&] {
                PlannedRow row;
                row.aggregate = aggs[static_cast<std::size_t>(s.rng.uniform(0, m - 1))];
                row.id = make_id(static_cast<std::uint32_t>(index), s.counter);
                row.aggregate_type = options_.aggregate_types[static_cast<std::size_t>(row.aggregate) %
                                                              options_.aggregate_types.size()];
                row.aggregate_id = "agg-" + std::to_string(row.aggregate);
                row.type = row.aggregate_type + ".changed";
                row.payload =
                    make_payload(s.counter, static_cast<std::uint32_t>(index), options_.payload_padding);
                ++s.counter;
                return row;
            };
            std::vector<PlannedRow> kept;     // rows that commit unless the whole txn rolls back
            std::vector<PlannedRow> sp_rows;  // rows rolled back to the savepoint
            std::vector<PlannedRow> before, after;
            for (int i = 0; i < size; ++i) (i < savepoint_at ? before : after).push_back(make_row());
            for (int i = 0; i < savepoint_rows; ++i) sp_rows.push_back(make_row());
            kept.insert(kept.end(), before.begin(), before.end());
            kept.insert(kept.end(), after.begin(), after.end());

            // The whole transaction goes to the server as one simple-query string (one round
            // trip): BEGIN; INSERT ...; [SAVEPOINT; INSERT ...; ROLLBACK TO;] INSERT ...;
            // SELECT xid; COMMIT|ROLLBACK. All values are generated here and quoted as literals.
            std::string sql = "BEGIN; SELECT pg_current_xact_id()::text;";
            const auto insert = [&](const std::vector<PlannedRow>& rows) {
                if (rows.empty()) return;
                sql += " INSERT INTO " + table + " (id, aggregatetype, aggregateid, type, payload) VALUES ";
                for (std::size_t i = 0; i < rows.size(); ++i) {
                    if (i != 0) sql += ", ";
                    sql += "('" + rows[i].id + "'::uuid, " + pg::quote_literal(rows[i].aggregate_type) +
                           ", " + pg::quote_literal(rows[i].aggregate_id) + ", " +
                           pg::quote_literal(rows[i].type) + ", " + pg::quote_literal(rows[i].payload) +
                           "::jsonb)";
                }
                sql += ';';
            };
            insert(before);
            if (savepoint) {
                sql += " SAVEPOINT workload_sp;";
                insert(sp_rows);
                sql += " ROLLBACK TO SAVEPOINT workload_sp;";
            }
            insert(after);
            sql += rollback ? " ROLLBACK" : " COMMIT";

            // ---- run it, holding the aggregates' locks (see the comment at the top) ----
            std::vector<std::unique_lock<std::mutex>> locks;
            locks.reserve(aggs.size());
            for (int a : aggs) locks.emplace_back(aggregate_locks_[static_cast<std::size_t>(a)]);

            enum class Outcome { Committed, RolledBack };
            Outcome outcome = Outcome::RolledBack;
            std::uint32_t xid = 0;
            const bool commit_sent = !rollback;  // from the moment the string is sent
            bool in_doubt = false;
            try {
                xid = xid_from_text(run_script(*s.conn, sql));
                if (!rollback) outcome = Outcome::Committed;
            } catch (const std::exception& error) {
                if (!is_connection_loss(error, s.conn ? s.conn->get() : nullptr)) {
                    try {
                        s.conn->exec("ROLLBACK");
                    } catch (...) {
                    }
                    throw;
                }
                // The connection is gone: without COMMIT sent the server rolled back; with it,
                // look the rows up once the old backend is certainly gone.
                const int old_pid = s.backend_pid;
                const std::string old_start = s.postmaster_start;
                {
                    std::lock_guard lock(mutex_);
                    ++stats_.reconnects;
                    if (commit_sent) ++stats_.in_doubt_txns;
                }
                nothing_in_doubt = !commit_sent;
                retry([&] {
                    open();
                    if (!commit_sent) return;
                    in_doubt = true;
                    const auto deadline = reconnect_deadline();
                    if (s.postmaster_start == old_start) {
                        while (s.conn->query_value("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                                                   {std::to_string(old_pid)}) != "0") {
                            if (std::chrono::steady_clock::now() >= deadline) {
                                throw std::runtime_error("Workload: backend " + std::to_string(old_pid) +
                                                         " of a broken connection does not go away");
                            }
                            std::this_thread::sleep_for(std::chrono::milliseconds(20));
                        }
                    }
                    std::vector<std::string> ids;
                    for (const auto& r : kept) ids.push_back(r.id);
                    const auto found = std::stoull(
                        s.conn
                            ->query_value("SELECT count(*) FROM " + table + " WHERE id = ANY($1::uuid[])",
                                          {uuid_array_literal(ids)})
                            .value_or("0"));
                    if (found == ids.size()) {
                        outcome = Outcome::Committed;
                    } else if (found != 0) {
                        throw std::runtime_error(
                            fmt::format("Workload: in-doubt transaction is half there ({} of {} rows)", found,
                                        ids.size()));
                    }
                });
                nothing_in_doubt = true;
            }

            {
                std::lock_guard lock(mutex_);
                if (outcome == Outcome::Committed) {
                    const std::uint64_t txn = next_txn_seq_++;
                    for (auto& r : kept) {
                        CommittedEvent e;
                        e.id = std::move(r.id);
                        e.aggregate_type = std::move(r.aggregate_type);
                        e.aggregate_id = std::move(r.aggregate_id);
                        e.type = std::move(r.type);
                        e.payload = std::move(r.payload);
                        e.commit_seq = next_commit_seq_++;
                        e.txn_seq = txn;
                        e.xid = xid;
                        committed_.push_back(std::move(e));
                    }
                    stats_.committed_events += kept.size();
                    ++stats_.committed_txns;
                    if (in_doubt) ++stats_.in_doubt_commits;
                } else {
                    for (const auto& r : kept) rolled_back_.push_back(r.id);
                    stats_.rolled_back_events += kept.size();
                    ++stats_.rolled_back_txns;
                }
                for (const auto& r : sp_rows) rolled_back_.push_back(r.id);
                stats_.rolled_back_events += sp_rows.size();
                if (savepoint) ++stats_.savepoint_rollbacks;
            }
            if (outcome == Outcome::Committed) {
                committed_events_ += kept.size();
            } else {
                unreserve_events(reserved);
            }
            locks.clear();
            if (options_.pause_between_txns.count() > 0)
                std::this_thread::sleep_for(options_.pause_between_txns);
        }
    } catch (const StopRequested&) {
        // stop() while the server was away: nothing was left unrecorded.
    } catch (...) {
        record_failure(std::current_exception());
    }
    if (--active_sessions_ == 0) {
        std::lock_guard lock(mutex_);
        finished_at_ = std::chrono::steady_clock::now();
    }
}

std::string Workload::insert_bad_row(BadRowKind kind, std::size_t payload_bytes) {
    std::lock_guard bad_lock(bad_row_mutex_);
    auto conn = connect_quietly(dsn_);  // fresh: survives server restarts between calls
    const std::uint64_t n = bad_row_counter_++;
    CommittedEvent e;
    e.id = make_id(0xFFFFu, n);
    e.aggregate_type = options_.aggregate_types.front();
    e.aggregate_id = "bad-" + std::to_string(n);
    e.type = "bad.row";
    e.payload = make_payload(n, 0xFFFFu, 0);
    e.expect_dead_letter = true;
    std::optional<std::string> type = e.aggregate_type;
    std::optional<std::string> agg_id = e.aggregate_id;
    switch (kind) {
        case BadRowKind::NullAggregateType:
            type.reset();
            e.aggregate_type.clear();
            break;
        case BadRowKind::EmptyAggregateType:
            type = "";
            e.aggregate_type.clear();
            break;
        case BadRowKind::InvalidTopicName:
            type = "bad type!";
            e.aggregate_type = *type;
            break;
        case BadRowKind::NullAggregateId:
            agg_id.reset();
            e.aggregate_id.clear();
            break;
        case BadRowKind::EmptyAggregateId:
            agg_id = "";
            e.aggregate_id.clear();
            break;
        case BadRowKind::OversizedPayload: {
            const std::size_t overhead = std::string(R"({"pad": ""})").size();
            e.payload = R"({"pad": ")" +
                        std::string(payload_bytes > overhead ? payload_bytes - overhead : 0, 'x') + "\"}";
            break;
        }
    }
    const auto xid_text = conn.query_value(
        "INSERT INTO " + options_.table +
            " (id, aggregatetype, aggregateid, type, payload) VALUES ($1::uuid, $2, $3, $4, $5::jsonb) "
            "RETURNING pg_current_xact_id()::text",
        {e.id, type, agg_id, e.type, e.payload});
    e.xid = xid_from_text(xid_text);
    if (kind == BadRowKind::OversizedPayload) e.payload.clear();  // Kafka never carries it
    std::string id = e.id;
    std::lock_guard lock(mutex_);
    e.txn_seq = next_txn_seq_++;
    e.commit_seq = next_commit_seq_++;
    committed_.push_back(std::move(e));
    ++stats_.committed_events;
    ++stats_.committed_txns;
    ++committed_events_;
    return id;
}

std::vector<CommittedEvent> Workload::committed() const {
    std::lock_guard lock(mutex_);
    auto out = committed_;
    std::sort(out.begin(), out.end(),
              [](const CommittedEvent& a, const CommittedEvent& b) { return a.commit_seq < b.commit_seq; });
    return out;
}

std::vector<std::string> Workload::rolled_back_ids() const {
    std::lock_guard lock(mutex_);
    return rolled_back_;
}

WorkloadStats Workload::stats() const {
    std::lock_guard lock(mutex_);
    WorkloadStats s = stats_;
    if (started_) {
        const auto end =
            active_sessions_.load() > 0 || finished_at_ == std::chrono::steady_clock::time_point{}
                ? std::chrono::steady_clock::now()
                : finished_at_;
        s.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(end - started_at_);
    }
    return s;
}

TableCheck Workload::verify_table() const {
    auto conn = connect_quietly(dsn_);
    const auto rows = conn.query("SELECT id::text FROM " + options_.table);
    std::unordered_set<std::string> present;
    present.reserve(rows.size());
    for (const auto& r : rows) present.insert(r.at(0).value_or(""));
    TableCheck check;
    check.rows = rows.size();
    std::unordered_set<std::string> known;
    {
        std::lock_guard lock(mutex_);
        known.reserve(committed_.size() + rolled_back_.size());
        for (const auto& e : committed_) {
            known.insert(e.id);
            if (!present.contains(e.id)) check.committed_missing.push_back(e.id);
        }
        for (const auto& id : rolled_back_) {
            known.insert(id);
            if (present.contains(id)) check.rolled_back_present.push_back(id);
        }
    }
    for (const auto& id : present) {
        if (!known.contains(id)) check.unknown_present.push_back(id);
    }
    std::sort(check.unknown_present.begin(), check.unknown_present.end());
    return check;
}

}  // namespace outbox::test

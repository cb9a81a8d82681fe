#include "app/poll_session.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "app/component_options.h"
#include "app/logging.h"
#include "pg/setup.h"

namespace outbox::app {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a shutdown waits for Kafka to acknowledge the batch in flight (as the WAL session).
constexpr auto kShutdownDrainTimeout = 30s;
// A statement that has not finished by then is taken for a lost connection (a network partition
// shows no error): the session ends and the batch is rolled back by the server.
constexpr auto kStatementTimeout = 60s;
// How often the backlog is counted for outbox_relay_lag_rows (one bounded count per poll).
constexpr auto kBacklogCountInterval = 5s;
// Not feeding (backpressure, a held record): serve librdkafka's timers and retry soon.
constexpr auto kBusyWait = 100ms;

template <class T>
T parse_number(const char* text, int length, std::string_view what) {
    T value{};
    const auto [end, ec] = std::from_chars(text, text + length, value);
    if (ec != std::errc{} || end != text + length) {
        throw Error(ErrorKind::Protocol,
                    fmt::format("PostgreSQL sent \"{}\" as {}",
                                std::string_view(text, static_cast<std::size_t>(length)), what));
    }
    return value;
}

}  // namespace

PollSession::PollSession(SessionContext context)
    : ctx_(context), reporter_(context.config, context.metrics, context.stats) {}

void PollSession::start() {
    const config::Config& config = ctx_.config;
    ++ctx_.stats.sessions;
    ctx_.stats.polling = true;
    // The table and column checks of a WAL session (without the publication's), then the poller's.
    const pg::ReplicationOptions checks = replication_options(config);
    options_ = poll_options(config);
    pg::Connection conn = pg::Connection::connect(checks.dsn, pg::ReplicationMode::None, checks.password,
                                                  "outbox-relay", pg::TargetServer::Primary);
    pg::ServerIdentity identity;
    identity.address = conn.server_address();
    identity.server_version = conn.server_version();
    pg::refuse_standby(conn, identity);
    pg::require_tables(conn, checks.tables);
    pg::require_columns(conn, checks);
    pg::require_poll_columns(conn, options_);
    pg::require_poll_privileges(conn, options_);
    table_ = pg::inspect_poll_table(conn, options_);
    if (!pg::try_poll_lock(conn, table_.oid)) {
        const auto holder = pg::poll_lock_holder(conn, table_.oid);
        // 55006 (object in use), as for an active slot: the Supervisor waits as a standby.
        throw pg::ServerError(
            ErrorKind::Transient,
            fmt::format("another instance polls outbox table {} (it holds the advisory lock "
                        "({}, {}){})",
                        options_.table.qualified(), pg::kPollLockClass, table_.oid,
                        holder ? ", backend pid " + *holder : ""),
            "55006");
    }
    for (const std::string& warning : table_.warnings) spdlog::warn("{}", warning);
    if (!table_.commit_timestamps) {
        spdlog::info(
            "track_commit_timestamp is off: outbox-commit-time, the commit-to-ack latency and the lag in "
            "seconds count from the poll that found a row, not from its commit");
    }
    publisher_.emplace(publisher_options(config));
    pipeline_.emplace(pipeline_options(config), Lsn(0), *publisher_, reporter_);
    channel_.emplace(std::move(conn));
    if (ctx_.metrics.standby.Value() != 0)
        spdlog::info("standby: the table's lock was released; this instance takes over");
    ctx_.metrics.standby.Set(0);
    ctx_.metrics.postgres_connected.Set(1);
    ctx_.health.streaming = true;
    polling_ = true;
    ctx_.notifier.ready();
    const LogFields fields{{"server", identity.address}};
    spdlog::info("polling table {} on {} (PostgreSQL {}): up to {} rows by {} every {} ms, then {}; Kafka {}",
                 options_.table.qualified(), identity.address, pg::version_text(identity.server_version),
                 options_.batch_size, options_.order_by, config.poll.interval.count(),
                 options_.published_column.empty() ? "delete them" : "set " + options_.published_column,
                 config.kafka.bootstrap_servers);
}

Session::End PollSession::run() {
    start();
    return loop();
}

Session::End PollSession::loop() {
    const auto deliver = [this](const relay::Delivery& d) { on_delivery(d); };
    while (true) {
        ctx_.signals.check();
        publisher_->serve(deliver);
        if (publisher_->fatal_error())
            throw KafkaFailure("Kafka producer fatal error: " + *publisher_->fatal_error());
        throw_if_failed();
        if (auto err = publisher_->take_last_error()) spdlog::warn("kafka: {}", *err);
        pipeline_->resume();
        for (const std::string& notice : channel_->take_notices()) spdlog::warn("PostgreSQL: {}", notice);

        const auto now = Clock::now();
        if (const auto end = step(now)) return *end;
        throw_if_failed();
        account();
        update_gauges(now);
        ctx_.progress.maybe_log(ctx_.stats, false);
        if (phase_ == Phase::Feeding && pipeline_->wants_input()) continue;  // room again: feed on

        pollfd fds[3] = {
            {channel_->socket(), channel_->events(), 0},
            {publisher_->wakeup_fd(), POLLIN, 0},
            {ctx_.signals.fd(), POLLIN, 0},
        };
        if (::poll(fds, 3, poll_timeout_ms(now)) < 0 && errno != EINTR) {
            throw Error(ErrorKind::Fatal, std::string("poll failed: ") + std::strerror(errno));
        }
        if (fds[0].revents != 0) channel_->on_ready();
        if (channel_->busy() && Clock::now() - channel_->sent_at() > kStatementTimeout) {
            throw pg::ServerError(ErrorKind::Transient,
                                  fmt::format("PostgreSQL did not answer within {} s",
                                              std::chrono::seconds(kStatementTimeout).count()),
                                  "");
        }
    }
}

std::optional<Session::End> PollSession::step(Clock::time_point now) {
    const bool stopping = ctx_.signals.stopping();
    if (pipeline_->stop_reason()) return finish(Session::End::Stopped);
    // Stopping finishes the open batch, within the drain timeout (Kafka may be away).
    if (stopping && phase_ != Phase::Idle) {
        if (!drain_deadline_) drain_deadline_ = now + kShutdownDrainTimeout;
        if (now >= *drain_deadline_) {
            spdlog::warn(
                "{} events still unacknowledged after {} s; the batch is rolled back and its rows are "
                "published again on the next start",
                pipeline_->unacknowledged(), kShutdownDrainTimeout.count());
            return finish(Session::End::Unacknowledged);
        }
    }
    switch (phase_) {
        case Phase::Idle:
            if (stopping) return finish(Session::End::Shutdown);
            if (now >= next_poll_) send_poll(now);
            return std::nullopt;
        case Phase::Selecting:
            if (!channel_->finished()) return std::nullopt;
            begin_batch();
            [[fallthrough]];
        case Phase::Feeding:
            feed();
            if (phase_ != Phase::Acking) return std::nullopt;
            [[fallthrough]];
        case Phase::Acking:
            if (pipeline_->confirmable() >= position_) send_after_publish();
            return std::nullopt;
        case Phase::Finishing:
            if (!channel_->finished()) return std::nullopt;
            end_batch(now);
            if (stopping) return finish(Session::End::Shutdown);
            return std::nullopt;
    }
    return std::nullopt;
}

void PollSession::send_poll(Clock::time_point now) {
    const bool count_backlog =
        last_backlog_count_ == Clock::time_point{} || now - last_backlog_count_ >= kBacklogCountInterval;
    channel_->send(pg::poll_sql(options_, table_, count_backlog), "polling " + options_.table.qualified());
    if (count_backlog) last_backlog_count_ = now;
    poll_sent_at_ = now;
    phase_ = Phase::Selecting;
}

void PollSession::begin_batch() {
    std::vector<pg::ResultHandle> results = channel_->take_results();
    // BEGIN, [the backlog count,] the rows.
    for (const pg::ResultHandle& r : results) {
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || &r == &results.back()) continue;
        if (PQntuples(r.get()) == 1 && PQnfields(r.get()) == 1) {
            const std::uint64_t backlog = parse_number<std::uint64_t>(
                PQgetvalue(r.get(), 0, 0), PQgetlength(r.get(), 0, 0), "a row count");
            ctx_.stats.backlog_rows = backlog;
            ctx_.metrics.lag_rows.Set(static_cast<double>(backlog));
        }
    }
    if (results.empty() || PQresultStatus(results.back().get()) != PGRES_TUPLES_OK) {
        throw Error(ErrorKind::Protocol, "PostgreSQL answered the poll without rows");
    }
    rows_ = std::move(results.back());
    PGresult* res = rows_.get();
    row_count_ = PQntuples(res);
    next_row_ = 0;
    // Columns: the configured ones, then xmin and the commit time (pg/poll_source.h).
    const int columns = PQnfields(res) - 2;
    if (columns < 1) throw Error(ErrorKind::Protocol, "PostgreSQL answered the poll with too few columns");
    relation_.id = RelationId(table_.oid);
    relation_.namespace_name = options_.table.schema;
    relation_.name = options_.table.name;
    relation_.columns.clear();
    for (int c = 0; c < columns; ++c) {
        relation_.columns.push_back(
            {PQfname(res, c), static_cast<std::uint32_t>(PQftype(res, c)), PQfmod(res, c), false});
    }
    tuple_.columns.resize(static_cast<std::size_t>(columns));
    newest_commit_us_ = 0;
    for (int r = 0; r < row_count_; ++r) {
        const auto t = parse_number<std::int64_t>(PQgetvalue(res, r, columns + 1),
                                                  PQgetlength(res, r, columns + 1), "a commit time");
        newest_commit_us_ = std::max(newest_commit_us_, t);
    }
    ctx_.metrics.poll_rows.Set(static_cast<double>(row_count_));
    pipeline_->begin_batch();
    phase_ = Phase::Feeding;
}

void PollSession::feed() {
    PGresult* res = rows_.get();
    const int columns = static_cast<int>(relation_.columns.size());
    while (next_row_ < row_count_ && pipeline_->wants_input()) {
        const int r = next_row_++;
        for (int c = 0; c < columns; ++c) {
            pgoutput::ColumnValue& value = tuple_.columns[static_cast<std::size_t>(c)];
            if (PQgetisnull(res, r, c) != 0) {
                value = {pgoutput::ColumnKind::Null, {}};
            } else {
                value = {pgoutput::ColumnKind::Text,
                         std::string_view(PQgetvalue(res, r, c),
                                          static_cast<std::size_t>(PQgetlength(res, r, c)))};
            }
        }
        const auto xid = parse_number<std::uint32_t>(PQgetvalue(res, r, columns),
                                                     PQgetlength(res, r, columns), "a transaction id");
        const auto time = parse_number<std::int64_t>(PQgetvalue(res, r, columns + 1),
                                                     PQgetlength(res, r, columns + 1), "a commit time");
        // No WAL position: outbox-lsn is 0/0 (InvalidXLogRecPtr) for polled rows.
        pipeline_->on_row(relation_, tuple_, CommitInfo{Lsn(0), Xid(xid), time});
    }
    if (next_row_ < row_count_) return;  // backpressure (or on_invalid: stop): go on later
    position_ = Lsn(position_.value() + 1);
    pipeline_->end_batch(position_);
    phase_ = Phase::Acking;
}

void PollSession::send_after_publish() {
    if (row_count_ == 0) {
        channel_->send("COMMIT", "ending an empty poll");
        phase_ = Phase::Finishing;
        return;
    }
    const auto id_column = relation_.column_index(options_.id_column);
    if (!id_column)
        throw Error(ErrorKind::Config, "the poll's result has no id column " + options_.id_column);
    std::vector<std::string_view> ids;
    ids.reserve(static_cast<std::size_t>(row_count_));
    const int c = static_cast<int>(*id_column);
    for (int r = 0; r < row_count_; ++r) {
        ids.emplace_back(PQgetvalue(rows_.get(), r, c),
                         static_cast<std::size_t>(PQgetlength(rows_.get(), r, c)));
    }
    const std::string array = pg::array_text(ids);
    char* quoted = PQescapeLiteral(channel_->get(), array.c_str(), array.size());
    if (quoted == nullptr) {
        throw pg::ServerError(ErrorKind::Transient,
                              "cannot quote the batch's ids: " + std::string(PQerrorMessage(channel_->get())),
                              "");
    }
    const std::string literal(quoted);
    PQfreemem(quoted);
    channel_->send(pg::after_publish_sql(options_, table_, literal),
                   options_.published_column.empty() ? "deleting published rows" : "marking published rows");
    phase_ = Phase::Finishing;
}

void PollSession::end_batch(Clock::time_point now) {
    channel_->take_results();
    if (row_count_ != 0) {
        ++ctx_.stats.batches;
        ctx_.metrics.confirmed_commit_timestamp_seconds.Set(static_cast<double>(newest_commit_us_) / 1e6);
    }
    const bool full = static_cast<std::uint64_t>(row_count_) >= options_.batch_size;
    rows_.reset();
    row_count_ = 0;
    next_row_ = 0;
    drain_deadline_.reset();
    // A full batch polls again at once; a partial or empty one waits the interval after its poll.
    next_poll_ = full ? now : poll_sent_at_ + ctx_.config.poll.interval;
    phase_ = Phase::Idle;
}

Session::End PollSession::finish(Session::End end) {
    account();
    update_gauges(Clock::now());
    ctx_.progress.maybe_log(ctx_.stats, true);
    const std::optional<std::string> stop_reason = pipeline_->stop_reason();
    const bool open_batch = phase_ != Phase::Idle;
    // Closing the connection rolls back what the open batch locked: nothing of it is deleted.
    channel_.reset();
    pipeline_.reset();
    publisher_.reset();
    rows_.reset();
    if (end == Session::End::Stopped) {
        spdlog::critical(
            "stopped by on_invalid: stop: {}; its batch was rolled back: the rows before it are published "
            "again "
            "on the next start, nothing from it on was deleted",
            stop_reason.value_or("?"));
    } else if (open_batch) {
        spdlog::info("stopping: the open batch was rolled back");
    }
    return end;
}

void PollSession::throw_if_failed() {
    const auto& failure = pipeline_->failure();
    if (!failure) return;
    if (failure->kind == ErrorKind::Transient) throw KafkaFailure(failure->what);
    throw Error(failure->kind, failure->what);
}

void PollSession::on_delivery(const relay::Delivery& d) {
    reporter_.settled(d, pipeline_->on_delivery(d));
}

void PollSession::account() {
    if (pipeline_) reporter_.account(pipeline_->counters());
}

bool PollSession::made_progress() const noexcept {
    return (pipeline_ ? pipeline_->counters() : reporter_.counted()).acknowledged != 0;
}

void PollSession::update_gauges(Clock::time_point now) {
    metrics::RelayMetrics& m = ctx_.metrics;
    ctx_.health.last_turn_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    ctx_.notifier.watchdog(now);
    const bool kafka_reachable = publisher_ && !publisher_->all_brokers_down();
    ctx_.health.kafka_reachable = kafka_reachable;
    m.kafka_up.Set(kafka_reachable ? 1 : 0);
    if (!pipeline_) return;
    // In flight, and the lag in seconds: the age of the oldest row of the batch in flight (its
    // commit, or the poll that found it without track_commit_timestamp). Rows are polled oldest
    // first, so no unpublished row committed earlier; between batches nothing is pending (0).
    reporter_.update_gauges(*pipeline_);
}

int PollSession::poll_timeout_ms(Clock::time_point now) const {
    auto timeout = std::chrono::milliseconds(1000);
    if (phase_ == Phase::Idle) {
        timeout =
            std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(next_poll_ - now) + 1ms);
    }
    if (pipeline_->holding() || (phase_ == Phase::Feeding && !pipeline_->wants_input()) || drain_deadline_) {
        timeout = std::min<std::chrono::milliseconds>(timeout, kBusyWait);
    }
    if (const auto wd = ctx_.notifier.next_watchdog()) {
        timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*wd - now));
    }
    return static_cast<int>(
        std::clamp(timeout, std::chrono::milliseconds(0), std::chrono::milliseconds(1000)).count());
}

}  // namespace outbox::app

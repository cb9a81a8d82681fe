#include "app/session.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <variant>

#include "app/component_options.h"
#include "app/logging.h"
#include "app/slot_monitor.h"

namespace outbox::app {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a shutdown waits for Kafka to acknowledge what is in flight.
constexpr auto kShutdownDrainTimeout = 30s;
// How long a session that PostgreSQL ended for good waits for Kafka before the relay stops.
constexpr auto kFailureDrainTimeout = 10s;
// While not reading, keepalives asking for a reply go unseen: answer on this timer instead.
constexpr auto kNotReadingStatusInterval = 1s;
// Frames read per loop turn before the producer is served again.
constexpr int kFramesPerTurn = 4096;
// While the stream is busy, a read that brought fewer bytes than `few_bytes` waits `pause`
// before the next: the walsender sends each message on its own, and a relay that wakes for every
// one spends more CPU in poll() and recv() than on the events (and takes it from the walsender
// on a small host). Bytes, not frames: libpq reads at most its buffer's free space per recv()
// (16 KiB until a large message grows it), so a read that brought a good part of that probably
// left data in the socket, whatever the events' size. (A threshold of 64 frames paused after
// every full buffer of ~360-byte events: catch-up stalled at ~50k events/s,
// bench/results/2026-12-01.md.)
// The pause must end before the walsender's socket fills, or the walsender waits for the relay
// (wait event WalSenderWriteData). TCP buffers grow to megabytes, so half a millisecond is safe
// there. A Unix socket holds only a few hundred messages (the sender's buffer, 208 KiB by
// default, counts each message's kernel overhead too), which the walsender writes in about a
// millisecond: there the pause is shorter, and so is the read that counts as few. Measured on
// copies of one slot (bench/results/2026-12-01-unix-pacing.md): over the Unix socket, 4 KiB /
// 200 µs took the 1000-row catch-up from 5.6 s to 4.2 s (pg_recvlogical 4.2 s) and the 1-row
// one from 10.2 s to 8.6 s at less CPU; over TCP the 1-row catch-up needs the longer pause
// (5.5 µs of CPU per event, 7.0 with the short one). No pause at all costs 7.1 µs per event at
// 1 row (4.6).
// Busy: the frames just read came less than `pause` after the relay had emptied the socket, or
// after a pause. Then a pause collects more than one message per read, and delays an event by at
// most `pause`. (Pausing only while catching up, as before, left a live 50k events/s stream
// read a few messages per wake-up: 9.2-9.8 µs of CPU per event and p99 233-441 ms commit to
// ack, against 4.2-4.4 µs and 19-20 ms with this rule; same file.) A sparse stream (1k events/s)
// is not busy: pausing there would only add a wake-up per event.
struct ReadPacing {
    std::size_t few_bytes;
    std::chrono::microseconds pause;
};
constexpr ReadPacing kTcpPacing{8 * 1024, 500us};
constexpr ReadPacing kUnixPacing{4 * 1024, 200us};
// Least time between two writes of the state file's confirmed position (the stream coalesces
// its status updates the same way).
constexpr auto kStateWriteInterval = 200ms;

}  // namespace

Session::Session(SessionContext context)
    : ctx_(context), reporter_(context.config, context.metrics, context.stats) {}

void Session::start() {
    const config::Config& config = ctx_.config;
    RelayStats& stats = ctx_.stats;
    ++stats.sessions;
    pg::ReplicationOptions options = replication_options(config);
    options.before_creating_slot = [this](const pg::ServerIdentity& identity) { refuse_lost_slot(identity); };
    stream_.emplace(std::move(options));
    stream_->start();
    const pg::ServerIdentity& identity = stream_->identity();
    if (ctx_.state != nullptr) {
        known_ = ctx_.state->find(identity.system_id, identity.database, config.postgres.slot);
        if (known_ && known_->timeline != identity.timeline) {
            spdlog::info(
                "timeline {} on {} (this relay last streamed on timeline {}): the server was promoted; "
                "slot \"{}\" is here at {} (it last confirmed {}), so nothing is skipped",
                identity.timeline, identity.address, known_->timeline, config.postgres.slot,
                stream_->slot().confirmed_flush.to_string(), known_->confirmed.to_string());
        }
    }
    publisher_.emplace(publisher_options(config));
    relay::PipelineOptions pipeline = pipeline_options(config);
    pipeline.rows_are_valid_utf8 = stream_->text_is_valid_utf8();
    pipeline_.emplace(std::move(pipeline), stream_->slot().confirmed_flush, *publisher_, reporter_);
    // stats.confirmed still holds what an earlier session of this process confirmed (0/0 if none
    // streamed). Only this relay moves the slot, so a later start position means the slot was
    // advanced, or dropped and recreated, behind our back: events in between were never published
    // by us. Say so loudly rather than continue silently from the new position.
    const Lsn previously_confirmed = stats.confirmed;
    if (previously_confirmed != Lsn() &&
        (stream_->slot().created || stream_->slot().confirmed_flush > previously_confirmed)) {
        spdlog::error(
            "replication slot \"{}\" {} at {}, ahead of what this relay confirmed ({}): it was dropped and "
            "recreated or advanced by someone else; events committed in between were NOT published",
            config.postgres.slot, stream_->slot().created ? "was recreated by this relay" : "now starts",
            stream_->slot().confirmed_flush.to_string(), previously_confirmed.to_string());
    } else if (previously_confirmed == Lsn() && known_ &&
               stream_->slot().confirmed_flush > known_->confirmed) {
        // A new process: the state file says where this relay left off. Another instance (a
        // standby relay that took over) moves the slot too, so this may be harmless.
        spdlog::warn(
            "replication slot \"{}\" starts at {}, ahead of where this relay last confirmed ({}, state "
            "file {}): unless another instance streamed from it since, it was dropped and recreated or "
            "advanced by someone else, and events committed in between were not published",
            config.postgres.slot, stream_->slot().confirmed_flush.to_string(), known_->confirmed.to_string(),
            ctx_.state->path());
    }
    stats.confirmed = stream_->slot().confirmed_flush;
    write_state(stream_->slot().confirmed_flush, StateFile::Durability::Synced);
    report_failover_readiness();
    if (ctx_.metrics.standby.Value() != 0)
        spdlog::info("standby: the slot was released; this instance takes over");
    ctx_.metrics.standby.Set(0);
    ctx_.metrics.postgres_connected.Set(1);
    ctx_.health.streaming = true;
    streamed_ = true;
    ctx_.notifier.ready();
    const LogFields fields{{"lsn", stream_->slot().confirmed_flush.to_string()},
                           {"server", identity.address},
                           {"timeline", std::to_string(identity.timeline)}};
    spdlog::info(
        "streaming from slot \"{}\" at {}{} on {} (PostgreSQL {}, timeline {}; publication \"{}\", Kafka {})",
        config.postgres.slot, stream_->slot().confirmed_flush.to_string(),
        stream_->slot().created ? " (slot created)" : "", identity.address, identity.server_version,
        identity.timeline, config.postgres.publication, config.kafka.bootstrap_servers);
}

Session::End Session::run() {
    start();
    const SlotMonitor monitor(ctx_.config.postgres.dsn, config::read_password(ctx_.config.postgres),
                              ctx_.config.postgres.slot, ctx_.metrics);
    try {
        return stream();
    } catch (const KafkaFailure&) {
        throw;
    } catch (const Error& e) {
        // PostgreSQL ended the session for good (exit 78/76: a dropped publication, a protocol
        // error): let Kafka acknowledge what is already on its way first, so the events before the
        // failure are in Kafka when the relay stops. Nothing more can be confirmed (the stream is
        // gone): the next start sends them again.
        if (e.kind() != ErrorKind::Transient && pipeline_ && pipeline_->unacknowledged() != 0) drain_kafka();
        throw;
    }
}

void Session::drain_kafka() {
    const auto deadline = Clock::now() + kFailureDrainTimeout;
    const auto deliver = [this](const relay::Delivery& d) { on_delivery(d); };
    spdlog::info("waiting up to {} s for Kafka to acknowledge the {} events in flight before stopping",
                 std::chrono::seconds(kFailureDrainTimeout).count(), pipeline_->unacknowledged());
    while (pipeline_->unacknowledged() != 0 && !pipeline_->failure() && Clock::now() < deadline) {
        pollfd fd{publisher_->wakeup_fd(), POLLIN, 0};
        ::poll(&fd, 1, 100);
        publisher_->serve(deliver);
    }
}

Session::End Session::stream() {
    const auto deliver = [this](const relay::Delivery& d) { on_delivery(d); };
    std::optional<Clock::time_point> drain_deadline;
    // What the last poll() reported ready; at the first turn, everything.
    bool signal_ready = true;
    bool kafka_ready = true;
    bool socket_ready = true;
    const ReadPacing pacing = stream_->over_unix_socket() ? kUnixPacing : kTcpPacing;
    // When the relay last found the socket empty, and whether the last wait was a pause.
    Clock::time_point drained = Clock::now();
    bool paused = false;
    while (true) {
        if (signal_ready) ctx_.signals.check();
        if (kafka_ready) publisher_->serve(deliver);
        if (publisher_->fatal_error())
            throw KafkaFailure("Kafka producer fatal error: " + *publisher_->fatal_error());
        throw_if_failed();
        if (auto err = publisher_->take_last_error()) spdlog::warn("kafka: {}", *err);
        pipeline_->resume();

        // Read while the pipeline has room; when stopping, only to the end of the open
        // transaction, so that everything received is confirmable and a restart repeats nothing.
        // One recv() per readiness, then every complete frame libpq holds: a burst costs one
        // poll() and one recv(), not a recv() per frame.
        if (socket_ready && wants_to_read()) stream_->consume_input();
        int frames = 0;
        std::size_t bytes = 0;
        for (; frames < kFramesPerTurn && wants_to_read(); ++frames) {
            auto frame = stream_->read_buffered_frame();
            if (!frame) break;
            if (const auto* data = std::get_if<pgoutput::XLogData>(&*frame)) {
                bytes += data->payload.size();
                pipeline_->on_message(decoder_.decode(data->payload));
            } else {
                pipeline_->on_keepalive(std::get<pgoutput::PrimaryKeepalive>(*frame).wal_end);
            }
        }
        throw_if_failed();
        const auto now = Clock::now();
        bool pause_reading = false;
        if (socket_ready && frames > 0) {
            const bool busy = paused || now - drained < pacing.pause;
            pause_reading = busy && bytes < pacing.few_bytes;
            drained = now;
        }
        for (const std::string& notice : stream_->take_notices()) spdlog::warn("PostgreSQL: {}", notice);

        confirm(now, false);
        account();
        const auto next_status = stream_->service(now);
        update_gauges(now);
        ctx_.progress.maybe_log(ctx_.stats, false);

        // A stop by policy does not finish the open transaction: it can never be confirmed.
        if (pipeline_->stop_reason() || (ctx_.signals.stopping() && !pipeline_->in_transaction())) {
            if (!drain_deadline) drain_deadline = now + kShutdownDrainTimeout;
            const std::uint64_t unacknowledged = pipeline_->unacknowledged();
            if (unacknowledged == 0 || now >= *drain_deadline) {
                if (unacknowledged != 0) {
                    spdlog::warn(
                        "{} events still unacknowledged after {} s; they are not confirmed and will be "
                        "sent again on the next start",
                        unacknowledged, kShutdownDrainTimeout.count());
                }
                return finish(unacknowledged != 0);
            }
        }

        const bool want_read = wants_to_read();
        if (!want_read) stream_->keep_alive(now, kNotReadingStatusInterval);
        pollfd fds[3] = {
            {stream_->socket(),
             static_cast<short>((want_read ? POLLIN : 0) | (stream_->wants_write() ? POLLOUT : 0)), 0},
            {publisher_->wakeup_fd(), POLLIN, 0},
            {ctx_.signals.fd(), POLLIN, 0},
        };
        auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(next_status - now);
        if (const auto wd = ctx_.notifier.next_watchdog()) {
            timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*wd - now));
        }
        timeout = std::clamp(timeout, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
        // Not reading: serve librdkafka's timers and retry a held record soon.
        if (!want_read) timeout = std::min(timeout, std::chrono::milliseconds(100));
        // Frames already in libpq's buffer make the socket no more readable: read them first.
        if (want_read && stream_->may_have_buffered_frames()) timeout = std::chrono::milliseconds(0);
        std::chrono::microseconds wait = timeout;
        if (want_read && pause_reading) {
            fds[0].events = static_cast<short>(fds[0].events & ~POLLIN);
            wait = std::min(wait, pacing.pause);
        }
        const timespec wait_ts{static_cast<time_t>(wait.count() / 1'000'000),
                               static_cast<long>(wait.count() % 1'000'000) * 1000};
        const int ready = ::ppoll(fds, 3, &wait_ts, nullptr);
        if (ready < 0 && errno != EINTR) {
            throw Error(ErrorKind::Fatal, std::string("poll failed: ") + std::strerror(errno));
        }
        socket_ready = (ready > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) || pause_reading;
        paused = pause_reading;
        kafka_ready = ready > 0 && fds[1].revents != 0;
        signal_ready = ready > 0 && fds[2].revents != 0;
    }
}

bool Session::wants_to_read() const noexcept {
    return pipeline_->wants_input() && (!ctx_.signals.stopping() || pipeline_->in_transaction());
}

void Session::throw_if_failed() {
    const auto& failure = pipeline_->failure();
    if (!failure) return;
    if (failure->kind == ErrorKind::Transient) throw KafkaFailure(failure->what);
    throw Error(failure->kind, failure->what);
}

Session::End Session::finish(bool unacknowledged) {
    confirm(Clock::now(), true);
    account();
    stream_->finish();
    update_gauges(Clock::now());
    ctx_.progress.maybe_log(ctx_.stats, true);
    const std::optional<std::string> stop_reason = pipeline_->stop_reason();
    pipeline_.reset();
    stream_.reset();
    publisher_.reset();
    if (stop_reason) {
        spdlog::critical("stopped by on_invalid: stop: {}; confirmed {} (nothing past the bad row)",
                         *stop_reason, ctx_.stats.confirmed.to_string());
        return End::Stopped;
    }
    return unacknowledged ? End::Unacknowledged : End::Shutdown;
}

void Session::refuse_lost_slot(const pg::ServerIdentity& identity) const {
    const std::string& slot = ctx_.config.postgres.slot;
    if (ctx_.state == nullptr) return;
    const auto known = ctx_.state->find(identity.system_id, identity.database, slot);
    if (!known) return;
    throw Error(
        ErrorKind::Config,
        fmt::format(
            "replication slot \"{}\" does not exist on {} (system {}, database \"{}\", timeline {}), but "
            "this "
            "relay streamed from it before (timeline {}) and last confirmed {}. Creating it anew would start "
            "at the current WAL position and skip every event committed after {} that was not published "
            "yet. This happens after a failover to a standby without the slot (PostgreSQL 16 and older, or "
            "a slot that is not a failover slot) or when someone dropped the slot. Nothing was created; see "
            "docs/operations.md, \"The slot is missing\" (state file {})",
            slot, identity.address, identity.system_id, identity.database, identity.timeline, known->timeline,
            known->confirmed.to_string(), known->confirmed.to_string(), ctx_.state->path()));
}

void Session::report_failover_readiness() {
    const pg::SlotState& slot = stream_->slot();
    const pg::ServerIdentity& identity = stream_->identity();
    ctx_.metrics.slot_failover.Set(slot.failover ? 1 : 0);
    ctx_.metrics.synchronized_standby_slots.Set(slot.synchronized_standby_slots.empty() ? 0 : 1);
    if (identity.server_version < 170000) return;
    const config::PostgresConfig& postgres = ctx_.config.postgres;
    if (!slot.failover) {
        if (postgres.slot_failover != config::SlotFailover::Disabled) {
            spdlog::warn(
                "replication slot \"{}\" is not a failover slot: a promoted standby will not have it, and "
                "the "
                "relay will stop there (exit 78). Set postgres.slot_failover: true to turn it on (see "
                "docs/operations.md, \"Failover\")",
                postgres.slot);
        }
        return;
    }
    if (slot.synchronized_standby_slots.empty()) {
        spdlog::warn(
            "replication slot \"{}\" is a failover slot, but synchronized_standby_slots is not set on {}: "
            "the relay "
            "may publish events a promoted standby never received (they would exist in Kafka only). Set it "
            "to the "
            "standby's physical slot (see docs/operations.md, \"Failover\")",
            postgres.slot, identity.address);
    }
}

void Session::confirm(Clock::time_point now, bool force) {
    const Lsn confirmable = pipeline_->confirmable();
    if (ctx_.state == nullptr) {
        persisted_ = confirmable;
    } else if (confirmable > persisted_ && (force || now - last_state_write_ >= kStateWriteInterval)) {
        // The state file first: it is never behind the slot, so a new process that finds the slot
        // ahead of it knows someone else moved the slot.
        write_state(confirmable, StateFile::Durability::Unsynced);
        last_state_write_ = now;
    }
    stream_->confirm(persisted_);
}

void Session::write_state(Lsn confirmed, StateFile::Durability durability) {
    if (ctx_.state != nullptr) {
        const pg::ServerIdentity& identity = stream_->identity();
        const KnownSlot known{identity.system_id, identity.database, ctx_.config.postgres.slot,
                              identity.timeline, confirmed};
        if (durability == StateFile::Durability::Synced) {
            ctx_.state->remember(known,
                                 durability);  // at session start: without it a lost slot goes unnoticed
        } else {
            try {
                ctx_.state->remember(known, durability);
            } catch (const Error& e) {
                // The slot's line is there from the session start; only its position is older.
                spdlog::warn("{}", e.what());
            }
        }
    }
    persisted_ = confirmed;
}

void Session::on_delivery(const relay::Delivery& d) {
    reporter_.settled(d, pipeline_->on_delivery(d));
}

void Session::account() {
    RelayStats& stats = ctx_.stats;
    reporter_.account(pipeline_->counters());
    stats.confirmed = stream_->confirmed();
    stats.received = stream_->received();
    stats.server_wal_end = stream_->server_wal_end();
}

bool Session::made_progress() const noexcept {
    return (pipeline_ ? pipeline_->counters() : reporter_.counted()).acknowledged != 0;
}

void Session::update_gauges(Clock::time_point now) {
    metrics::RelayMetrics& m = ctx_.metrics;
    ctx_.health.last_turn_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    ctx_.notifier.watchdog(now);
    const bool kafka_reachable = publisher_ && !publisher_->all_brokers_down();
    ctx_.health.kafka_reachable = kafka_reachable;
    m.kafka_up.Set(kafka_reachable ? 1 : 0);
    if (!stream_ || !pipeline_) return;
    const RelayStats& stats = ctx_.stats;
    reporter_.update_gauges(*pipeline_);
    m.received_lsn.Set(static_cast<double>(stats.received.value()));
    m.confirmed_lsn.Set(static_cast<double>(stats.confirmed.value()));
    m.server_wal_end_lsn.Set(static_cast<double>(stats.server_wal_end.value()));
    m.lag_bytes.Set(static_cast<double>(bytes_between(stats.confirmed, stats.server_wal_end)));
    const std::uint64_t wal_bytes = stream_->bytes_received();
    m.wal_received_bytes.Increment(static_cast<double>(wal_bytes - wal_bytes_counted_));
    wal_bytes_counted_ = wal_bytes;
}

}  // namespace outbox::app

#include "app/relay.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "app/logging.h"
#include "common/version.h"
#include "pgoutput/decoder.h"

namespace outbox::app {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a shutdown waits for Kafka to acknowledge what is in flight.
constexpr auto kShutdownDrainTimeout = 30s;
constexpr auto kProgressInterval = 10s;
constexpr auto kBackoffInitial = 500ms;
constexpr auto kBackoffMax = 30s;
// A standby retries the slot quickly so it takes over within seconds of the holder's death.
constexpr auto kStandbyRetry = 1s;
constexpr auto kSlotPollInterval = 5s;
constexpr auto kNotReadingStatusInterval = 1s;
constexpr const char* kSlotActiveSqlstate = "55006";

std::int64_t unix_now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Thrown to end a session that must not confirm anything more; the next one replays.
class SessionFailure : public Error {
public:
    explicit SessionFailure(const std::string& what) : Error(ErrorKind::Transient, what) {}
};

// A SessionFailure caused by Kafka (delivery failed, producer fatal) rather than PostgreSQL.
class KafkaFailure : public SessionFailure {
public:
    using SessionFailure::SessionFailure;
};

pg::ReplicationOptions replication_options(const config::Config& c) {
    pg::ReplicationOptions o;
    o.dsn = c.postgres.dsn;
    o.password = config::read_password(c.postgres);
    o.slot = c.postgres.slot;
    o.publication = c.postgres.publication;
    o.tables = c.outbox.tables;
    o.create_slot = c.postgres.create_slot;
    o.create_publication = c.postgres.create_publication;
    o.status_interval = c.postgres.status_interval;
    return o;
}

kafka::PublisherOptions publisher_options(const config::Config& c) {
    kafka::PublisherOptions o;
    o.bootstrap_servers = c.kafka.bootstrap_servers;
    o.properties = c.kafka.properties;
    o.max_inflight_events = c.limits.max_inflight_events;
    return o;
}

// Copies a message librdkafka refused back into a Record (views into the message, valid
// during the delivery callback only).
void record_from_message(const rd_kafka_message_t* m, Record& out) {
    out = Record{};
    out.topic = rd_kafka_topic_name(m->rkt);
    if (m->key != nullptr) out.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr) out.value = std::string_view(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
        const char* name = nullptr;
        const void* value = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0;
             rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
            std::optional<std::string_view> v;
            if (value != nullptr) v = std::string_view(static_cast<const char*>(value), size);
            out.headers.push_back({std::string_view(name), v});
        }
    }
}

}  // namespace

std::uint64_t InflightSlots::acquire(const Slot& slot) {
    if (free_.empty()) {
        slots_.push_back(slot);
        return slots_.size();
    }
    const std::uint32_t index = free_.back();
    free_.pop_back();
    slots_[index] = slot;
    return static_cast<std::uint64_t>(index) + 1;
}

InflightSlots::Slot& InflightSlots::at(std::uint64_t cookie) {
    if (cookie == 0 || cookie > slots_.size())
        throw Error(ErrorKind::Fatal, "delivery report for an unknown message");
    return slots_[cookie - 1];
}

void InflightSlots::release(std::uint64_t cookie) {
    free_.push_back(static_cast<std::uint32_t>(cookie - 1));
}

Relay::Relay(config::Config config, std::string config_path, int signal_fd)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      signal_fd_(signal_fd),
      metrics_(kVersion),
      router_(config_.outbox) {
    if (config_.metrics.enabled) {
        http_ = std::make_unique<metrics::HttpServer>(config_.metrics.host, config_.metrics.port, metrics_,
                                                      health_);
        spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz)", config_.metrics.host,
                     http_->port());
    }
    health_.last_turn_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

void Relay::reload() {
    notifier_.reloading();
    try {
        config::Config fresh = config::load_config_file(config_path_);
        const config::LogConfig old_log = config_.log;
        setup_logging(fresh.log);
        config_.log = fresh.log;
        fresh.log = old_log;
        fresh.origin = config_.origin;
        const bool others_changed = config::describe(fresh) != config::describe(config_);
        spdlog::info("SIGHUP: reloaded {}: log level {}, format {}{}", config_path_,
                     config::to_string(config_.log.level), config::to_string(config_.log.format),
                     others_changed ? "; other changed settings take effect after a restart" : "");
    } catch (const Error& e) {
        spdlog::error("SIGHUP: keeping the running configuration: {}", e.what());
    }
    notifier_.ready();
}

prometheus::Counter& Relay::published_counter(const rd_kafka_message_t* message) {
    if (auto it = published_counters_.find(message->rkt); it != published_counters_.end()) return *it->second;
    prometheus::Counter& counter = metrics_.published(rd_kafka_topic_name(message->rkt));
    published_counters_.emplace(message->rkt, &counter);
    return counter;
}

void Relay::update_gauges(Clock::time_point now) {
    health_.last_turn_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    notifier_.watchdog(now);
    const bool kafka_reachable = publisher_ && !publisher_->all_brokers_down();
    health_.kafka_reachable = kafka_reachable;
    metrics_.kafka_up.Set(kafka_reachable ? 1 : 0);
    if (!stream_ || !ledger_) return;
    metrics_.inflight_events.Set(static_cast<double>(ledger_->pending_events() - poisoned_events_));
    metrics_.inflight_bytes.Set(static_cast<double>(inflight_bytes_));
    metrics_.received_lsn.Set(static_cast<double>(stats_.received.value()));
    metrics_.confirmed_lsn.Set(static_cast<double>(stats_.confirmed.value()));
    metrics_.server_wal_end_lsn.Set(static_cast<double>(stats_.server_wal_end.value()));
    metrics_.lag_bytes.Set(static_cast<double>(bytes_between(stats_.confirmed, stats_.server_wal_end)));
    const std::uint64_t wal_bytes = stream_->bytes_received();
    metrics_.wal_received_bytes.Increment(static_cast<double>(wal_bytes - wal_bytes_counted_));
    wal_bytes_counted_ = wal_bytes;
}

void Relay::poll_slot_status(Clock::time_point now) {
    if (now < next_slot_poll_) return;
    next_slot_poll_ = now + kSlotPollInterval;
    try {
        if (!monitor_) {
            monitor_.emplace(pg::Connection::connect(config_.postgres.dsn, pg::ReplicationMode::None,
                                                     config::read_password(config_.postgres),
                                                     "outbox-relay-monitor"));
        }
        const auto rows = monitor_->query(
            "SELECT coalesce(wal_status, ''), safe_wal_size FROM pg_replication_slots WHERE slot_name = $1",
            {config_.postgres.slot});
        if (rows.empty()) {
            spdlog::error("replication slot \"{}\" no longer exists", config_.postgres.slot);
            return;
        }
        const std::string status = rows[0][0].value_or("");
        metrics_.set_slot_wal_status(status);
        if (rows[0][1]) metrics_.slot_safe_wal_size_bytes.Set(std::stod(*rows[0][1]));
        if (status == "unreserved" || status == "lost") {
            spdlog::warn(
                "replication slot \"{}\" has wal_status = {}: WAL it needs is about to be or was removed "
                "(see docs/operations.md)",
                config_.postgres.slot, status);
        }
    } catch (const std::exception& e) {
        // Monitoring only: the stream itself is unaffected. Reconnect on the next poll.
        spdlog::warn("cannot read pg_replication_slots: {}", e.what());
        monitor_.reset();
    }
}

bool Relay::backpressured() const noexcept {
    return ledger_->pending_events() >= config_.limits.max_inflight_events ||
           inflight_bytes_ >= config_.limits.max_inflight_bytes;
}

void Relay::check_signals() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGHUP) {
            reload();
            continue;
        }
        if (stopping_) {
            spdlog::warn("second signal ({}): exiting at once without waiting for Kafka",
                         strsignal(static_cast<int>(info.ssi_signo)));
            std::_Exit(130);
        }
        spdlog::info("{}: finishing the current transaction, waiting for Kafka, confirming, then exiting",
                     strsignal(static_cast<int>(info.ssi_signo)));
        stopping_ = true;
        notifier_.stopping();
    }
}

bool Relay::wait_backoff(std::chrono::milliseconds delay) {
    const auto deadline = Clock::now() + delay;
    while (!stopping_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return true;
        pollfd pfd{signal_fd_, POLLIN, 0};
        ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
        check_signals();
        update_gauges(Clock::now());  // keeps /healthz and the systemd watchdog fed while waiting
    }
    return false;
}

int Relay::run() {
    std::mt19937_64 rng(std::random_device{}());
    auto backoff = std::chrono::milliseconds(kBackoffInitial);
    while (true) {
        try {
            const SessionEnd end = run_session();
            if (end == SessionEnd::Stopped) return exit_code(ErrorKind::Config);
            spdlog::info("stopped; confirmed {}", stats_.confirmed.to_string());
            return 0;
        } catch (const Error& e) {
            stream_.reset();
            publisher_.reset();
            monitor_.reset();
            health_.streaming = false;
            metrics_.postgres_connected.Set(0);
            const auto* server_error = dynamic_cast<const pg::ServerError*>(&e);
            if (server_error != nullptr && server_error->sqlstate() == kSlotActiveSqlstate && !stopping_) {
                // Another instance holds the slot: wait as a standby and take over when it is released.
                if (metrics_.standby.Value() == 0) {
                    spdlog::info("standby: {}; retrying every {} s", e.what(),
                                 std::chrono::seconds(kStandbyRetry).count());
                    notifier_.status("standby: replication slot is active in another instance");
                }
                metrics_.standby.Set(1);
                notifier_.ready();  // a standby is a started service: do not hold `systemctl start`
                if (!wait_backoff(kStandbyRetry)) return 0;
                continue;
            }
            metrics_.reconnects(dynamic_cast<const KafkaFailure*>(&e) != nullptr ? "kafka" : "postgres")
                .Increment();
            if (e.kind() != ErrorKind::Transient) {
                spdlog::critical("{} error: {}", to_string(e.kind()), e.what());
                return exit_code(e.kind());
            }
            if (stopping_) {
                spdlog::warn("stopping after error: {}", e.what());
                return 0;
            }
            if (session_made_progress_) backoff = std::chrono::milliseconds(kBackoffInitial);
            // Decorrelated jitter: spread reconnects of many relays, never hammer a sick server.
            std::uniform_int_distribution<long> dist(
                kBackoffInitial.count(), std::max<long>(kBackoffInitial.count(), backoff.count() * 3));
            backoff = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(dist(rng)), kBackoffMax);
            spdlog::error("{}; restarting from the slot's confirmed position in {} ms", e.what(),
                          backoff.count());
            notifier_.status("reconnecting: " + std::string(e.what()));
            if (!wait_backoff(backoff)) return 0;
        }
    }
}

Relay::SessionEnd Relay::run_session() {
    ++stats_.sessions;
    relations_.clear();
    slots_ = InflightSlots{};
    inflight_bytes_ = 0;
    poisoned_events_ = 0;
    session_made_progress_ = false;
    session_failure_.reset();

    stream_.emplace(replication_options(config_));
    stream_->start();
    ledger_.emplace(stream_->slot().confirmed_flush);
    publisher_.emplace(publisher_options(config_));
    // stats_.confirmed still holds what an earlier session of this process confirmed (0/0 if none
    // streamed). Only this relay moves the slot, so a later start position means the slot was
    // advanced, or dropped and recreated, behind our back: events in between were never published
    // by us. Say so loudly rather than continue silently from the new position.
    const Lsn previously_confirmed = stats_.confirmed;
    if (previously_confirmed != Lsn() &&
        (stream_->slot().created || stream_->slot().confirmed_flush > previously_confirmed)) {
        spdlog::error(
            "replication slot \"{}\" {} at {}, ahead of what this relay confirmed ({}): it was dropped and "
            "recreated or advanced by someone else; events committed in between were NOT published",
            config_.postgres.slot, stream_->slot().created ? "was recreated by this relay" : "now starts",
            stream_->slot().confirmed_flush.to_string(), previously_confirmed.to_string());
    }
    stats_.confirmed = stream_->slot().confirmed_flush;
    published_counters_.clear();
    wal_bytes_counted_ = 0;
    next_slot_poll_ = {};
    if (metrics_.standby.Value() != 0)
        spdlog::info("standby: the slot was released; this instance takes over");
    metrics_.standby.Set(0);
    metrics_.postgres_connected.Set(1);
    health_.streaming = true;
    notifier_.ready();
    spdlog::info("streaming from slot \"{}\" at {}{} (publication \"{}\", Kafka {})", config_.postgres.slot,
                 stream_->slot().confirmed_flush.to_string(),
                 stream_->slot().created ? " (slot created)" : "", config_.postgres.publication,
                 config_.kafka.bootstrap_servers);

    const auto deliver = [this](const kafka::Delivery& d) { on_delivery(d); };
    std::optional<Clock::time_point> drain_deadline;
    bool read_something = false;
    while (true) {
        check_signals();  // also under continuous load, when poll() is skipped
        publisher_->serve(deliver);
        if (publisher_->fatal_error())
            throw KafkaFailure("Kafka producer fatal error: " + *publisher_->fatal_error());
        if (session_failure_) throw KafkaFailure(*session_failure_);
        if (auto err = publisher_->take_last_error()) spdlog::warn("kafka: {}", *err);

        // Read while there is room; when stopping, only to the end of the open transaction,
        // so that everything received is confirmable and a restart repeats nothing.
        read_something = false;
        for (int n = 0;
             n < 4096 && !backpressured() && !stop_error_ && (!stopping_ || ledger_->in_transaction()); ++n) {
            auto frame = stream_->read_frame();
            if (!frame) break;
            read_something = true;
            if (const auto* data = std::get_if<pgoutput::XLogData>(&*frame)) {
                handle_message(decoder_.decode(data->payload));
            } else {
                ledger_->keepalive(std::get<pgoutput::PrimaryKeepalive>(*frame).wal_end);
            }
        }

        stream_->confirm(ledger_->confirmable());
        stats_.confirmed = ledger_->confirmable();
        stats_.received = stream_->received();
        stats_.server_wal_end = stream_->server_wal_end();
        const auto now = Clock::now();
        const auto next_status = stream_->service(now);
        update_gauges(now);
        poll_slot_status(now);
        log_progress(false);

        // A stop by policy does not finish the open transaction: it can never be confirmed.
        if (stop_error_ || (stopping_ && !ledger_->in_transaction())) {
            if (!drain_deadline) drain_deadline = now + kShutdownDrainTimeout;
            const std::uint64_t unacknowledged = ledger_->pending_events() - poisoned_events_;
            if (unacknowledged == 0 || now >= *drain_deadline) {
                if (unacknowledged != 0) {
                    spdlog::warn(
                        "{} events still unacknowledged after {} s; they are not confirmed and will be "
                        "sent again on the next start",
                        unacknowledged, kShutdownDrainTimeout.count());
                }
                stream_->confirm(ledger_->confirmable());
                stats_.confirmed = ledger_->confirmable();
                stream_->finish();
                update_gauges(Clock::now());
                log_progress(true);
                stream_.reset();
                publisher_.reset();
                if (stop_error_) {
                    spdlog::critical(
                        "stopped by on_invalid: stop: {}; confirmed {} (nothing past the bad row)",
                        *stop_error_, stats_.confirmed.to_string());
                    return SessionEnd::Stopped;
                }
                return SessionEnd::Shutdown;
            }
        }
        if (read_something) continue;  // more may be buffered in libpq: read it before sleeping

        const bool want_read = !backpressured() && !stop_error_ && (!stopping_ || ledger_->in_transaction());
        // Not reading: keepalives asking for a reply go unseen, so answer on a short timer.
        if (!want_read) stream_->keep_alive(now, kNotReadingStatusInterval);
        pollfd fds[3] = {
            {stream_->socket(),
             static_cast<short>((want_read ? POLLIN : 0) | (stream_->wants_write() ? POLLOUT : 0)), 0},
            {publisher_->wakeup_fd(), POLLIN, 0},
            {signal_fd_, POLLIN, 0},
        };
        auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(next_status - now);
        if (const auto wd = notifier_.next_watchdog()) {
            timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*wd - now));
        }
        timeout = std::clamp(timeout, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
        if (!want_read) timeout = std::min(timeout, std::chrono::milliseconds(100));  // librdkafka timers
        if (::poll(fds, 3, static_cast<int>(timeout.count())) < 0 && errno != EINTR) {
            throw Error(ErrorKind::Fatal, std::string("poll failed: ") + std::strerror(errno));
        }
    }
}

void Relay::handle_message(const pgoutput::Message& message) {
    if (const auto* insert = std::get_if<pgoutput::Insert>(&message)) {
        handle_insert(*insert);
    } else if (const auto* begin = std::get_if<pgoutput::Begin>(&message)) {
        ticket_ = ledger_->begin();
        commit_ = CommitInfo{begin->final_lsn, begin->xid, begin->commit_time.unix_micros()};
    } else if (const auto* commit = std::get_if<pgoutput::Commit>(&message)) {
        ledger_->commit(commit->end_lsn);
        ++stats_.transactions;
        metrics_.transactions.Increment();
    } else if (const auto* relation = std::get_if<pgoutput::Relation>(&message)) {
        relations_.update(*relation);
    } else if (std::holds_alternative<pgoutput::StreamStart>(message) ||
               std::holds_alternative<pgoutput::StreamCommit>(message) ||
               std::holds_alternative<pgoutput::StreamAbort>(message) ||
               std::holds_alternative<pgoutput::StreamStop>(message)) {
        throw Error(ErrorKind::Protocol, "received a streamed transaction, but streaming was not requested");
    }
    // Update, Delete, Truncate, Type, Origin and logical messages carry no outbox events: a
    // publication for inserts only does not send the first three at all.
}

void Relay::handle_insert(const pgoutput::Insert& insert) {
    if (!ledger_->in_transaction()) throw Error(ErrorKind::Protocol, "Insert outside a transaction");
    const pgoutput::RelationInfo& relation = relations_.get(insert.relation);
    relation.check_tuple(insert.new_tuple);
    Rejection rejection;
    switch (router_.route(relation, insert.new_tuple, commit_, record_, rejection)) {
        case RouteOutcome::NotOutbox: return;
        case RouteOutcome::Routed: publish(record_, false); return;
        case RouteOutcome::Rejected: reject(rejection, nullptr, &relation, &insert.new_tuple, 0); return;
    }
}

void Relay::publish(const Record& record, bool dead_letter) {
    const std::uint64_t bytes = record.size_bytes();
    const std::uint64_t cookie = slots_.acquire({ticket_, bytes, commit_.commit_time_unix_us, dead_letter});
    ledger_->add_event();
    inflight_bytes_ += bytes;
    while (true) {
        const kafka::ProduceResult r = publisher_->produce(record, cookie);
        switch (r.status) {
            case kafka::ProduceStatus::Queued: return;
            case kafka::ProduceStatus::QueueFull: {
                // Our in-flight bound is below librdkafka's queue size, so this is rare: serve
                // delivery reports until there is room.
                pollfd pfd{publisher_->wakeup_fd(), POLLIN, 0};
                ::poll(&pfd, 1, 100);
                publisher_->serve([this](const kafka::Delivery& d) { on_delivery(d); });
                if (session_failure_) throw KafkaFailure(*session_failure_);
                continue;
            }
            case kafka::ProduceStatus::Permanent:
                reject(Rejection{r.error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? "too_large"
                                                                                 : "rejected_by_kafka",
                                 "Kafka refused the record for topic \"" + record.topic + "\": " + r.message},
                       &record, nullptr, nullptr, cookie);
                return;
            case kafka::ProduceStatus::Failed: throw KafkaFailure("cannot produce to Kafka: " + r.message);
        }
    }
}

void Relay::reject(const Rejection& rejection, const Record* original_record,
                   const pgoutput::RelationInfo* relation, const pgoutput::Tuple* tuple,
                   std::uint64_t cookie) {
    // `cookie` != 0: the event is already counted in the ledger and the slots; it is either
    // replaced by its dead-letter copy or stays pending forever (stop), so nothing is confirmed past it.
    const std::string where = commit_.commit_lsn.to_string();
    if (config_.outbox.on_invalid == config::OnInvalid::Stop) {
        spdlog::error("outbox event in transaction {} (commit {}) rejected ({}): {}", commit_.xid.value(),
                      where, rejection.code, rejection.detail);
        if (!stop_error_) stop_error_ = std::string(rejection.code) + ": " + rejection.detail;
        // The event stays pending for good: its transaction never becomes confirmable.
        if (cookie == 0) {
            slots_.acquire({ticket_, 0, commit_.commit_time_unix_us, false});
            ledger_->add_event();
        }
        ++poisoned_events_;
        return;
    }
    if (cookie != 0 && slots_.at(cookie).dead_letter) {
        throw Error(ErrorKind::Fatal, "the dead-letter topic refused an event too (" + rejection.detail +
                                          "); stopping rather than losing it");
    }
    spdlog::warn("outbox event in transaction {} (commit {}) sent to dead-letter topic \"{}\" ({}): {}",
                 commit_.xid.value(), where, config_.outbox.dead_letter_topic, rejection.code,
                 rejection.detail);
    ++stats_.events_dead_lettered;
    metrics_.dead_lettered(rejection.code).Increment();
    if (original_record != nullptr) {
        router_.dead_letter_for_record(*original_record, rejection, dead_letter_record_);
    } else {
        router_.dead_letter_for_row(*relation, *tuple, commit_, rejection, record_, dead_letter_record_);
    }
    if (cookie == 0) {
        publish(dead_letter_record_, true);
        return;
    }
    // Same cookie: the ledger's pending count for this event is settled by the copy's report.
    InflightSlots::Slot& slot = slots_.at(cookie);
    slot.dead_letter = true;
    const kafka::ProduceResult r = publisher_->produce(dead_letter_record_, cookie);
    if (r.status != kafka::ProduceStatus::Queued) {
        throw KafkaFailure("cannot produce to the dead-letter topic: " + r.message);
    }
}

void Relay::on_delivery(const kafka::Delivery& d) {
    InflightSlots::Slot& slot = slots_.at(d.cookie);
    switch (d.outcome) {
        case kafka::DeliveryOutcome::Delivered:
            if (!slot.dead_letter) {
                ++stats_.events_published;
                published_counter(d.message).Increment();
                metrics_.commit_to_ack_seconds.Observe(
                    static_cast<double>(std::max<std::int64_t>(0, unix_now_us() - slot.commit_time_us)) /
                    1e6);
            }
            inflight_bytes_ -= std::min(inflight_bytes_, slot.bytes);
            session_made_progress_ = true;
            ledger_->acknowledge(slot.ticket);
            slots_.release(d.cookie);
            return;
        case kafka::DeliveryOutcome::Permanent: {
            Record refused;
            record_from_message(d.message, refused);
            const relay::TxnTicket saved_ticket = ticket_;
            ticket_ = slot.ticket;
            reject(
                Rejection{d.error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? "too_large" : "rejected_by_kafka",
                          "Kafka refused the record for topic \"" + refused.topic +
                              "\": " + std::string(d.error_text)},
                &refused, nullptr, nullptr, d.cookie);
            ticket_ = saved_ticket;
            return;
        }
        case kafka::DeliveryOutcome::Failed:
            // Possibly persisted, possibly not: never confirm past it; replay from the slot.
            if (!session_failure_) {
                session_failure_ = "Kafka delivery failed (" + std::string(d.error_text) + ")";
                // Later events of the same key must not reach the broker before this one's replay.
                publisher_->purge_queued();
            }
            return;
    }
}

void Relay::log_progress(bool force) {
    const auto now = Clock::now();
    if (!force && now - last_progress_ < kProgressInterval) return;
    if (!force && stats_.events_published == last_progress_events_) {
        last_progress_ = now;
        return;
    }
    const double secs = std::chrono::duration<double>(now - last_progress_).count();
    const double rate = last_progress_ == Clock::time_point{} || secs <= 0
                            ? 0.0
                            : static_cast<double>(stats_.events_published - last_progress_events_) / secs;
    spdlog::info(
        "published {} events ({:.0f}/s), {} dead-lettered, {} transactions; confirmed {}, lag {} bytes",
        stats_.events_published, rate, stats_.events_dead_lettered, stats_.transactions,
        stats_.confirmed.to_string(), bytes_between(stats_.confirmed, stats_.server_wal_end));
    notifier_.status(fmt::format("streaming; {} events published ({:.0f}/s); lag {} bytes",
                                 stats_.events_published, rate,
                                 bytes_between(stats_.confirmed, stats_.server_wal_end)));
    last_progress_ = now;
    last_progress_events_ = stats_.events_published;
}

}  // namespace outbox::app

#include "kafka/publisher.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace outbox::kafka {
namespace {

struct ConfDeleter {
    void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
};

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value, std::string_view where) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        throw Error(ErrorKind::Config, std::string(where) + key + ": " + errstr);
    }
}

bool has_property(const PublisherOptions& options, std::string_view key) {
    return std::any_of(options.properties.begin(), options.properties.end(),
                       [&](const auto& p) { return p.first == key; });
}

}  // namespace

DeliveryOutcome classify_delivery_error(rd_kafka_resp_err_t error) noexcept {
    switch (error) {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return DeliveryOutcome::Delivered;
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR__INVALID_ARG: return DeliveryOutcome::Permanent;
        default: return DeliveryOutcome::Failed;
    }
}

Publisher::Publisher(const PublisherOptions& options) {
    std::unique_ptr<rd_kafka_conf_t, ConfDeleter> conf(rd_kafka_conf_new());
    // Correctness settings first; the config loader rejects user properties that weaken them.
    set(conf.get(), "bootstrap.servers", options.bootstrap_servers, "kafka.bootstrap_servers: ");
    set(conf.get(), "enable.idempotence", "true", "");
    set(conf.get(), "acks", "all", "");
    // Never give up on an event by default: while the brokers are away the relay stops reading
    // (backpressure) and the slot holds. A finite timeout (kafka.properties) makes the relay
    // restart its session instead; librdkafka then skips the timed-out messages and may deliver
    // later ones of the same partition first, which purge_queued() keeps to a minimum.
    set(conf.get(), "message.timeout.ms", "0", "");
    set(conf.get(), "partitioner", "murmur2_random", "");  // same key -> same partition as Java clients
    set(conf.get(), "client.id", options.client_id, "");
    // Defaults that suit a relay; the user's properties below may override them.
    set(conf.get(), "linger.ms", "5", "");
    set(conf.get(), "compression.type", "lz4", "");
    set(conf.get(), "queue.buffering.max.messages",
        std::to_string(std::min<std::uint64_t>(options.max_inflight_events + 10000, 2147483647)), "");
    for (const auto& [key, value] : options.properties) set(conf.get(), key, value, "kafka.properties.");
    if (!has_property(options, "log_level")) set(conf.get(), "log_level", "6", "");

    rd_kafka_conf_set_dr_msg_cb(conf.get(), &Publisher::on_delivery_report);
    rd_kafka_conf_set_error_cb(conf.get(), &Publisher::on_error);
    rd_kafka_conf_set_log_cb(conf.get(), &Publisher::on_log);
    rd_kafka_conf_set_opaque(conf.get(), this);

    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        throw Error(ErrorKind::Fatal, std::string("pipe2 failed: ") + std::strerror(errno));
    }
    pipe_read_ = fds[0];
    pipe_write_ = fds[1];

    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
    if (rk_ == nullptr) {
        ::close(pipe_read_);
        ::close(pipe_write_);
        throw Error(ErrorKind::Config, std::string("cannot create the Kafka producer: ") + errstr);
    }
    (void)conf.release();  // rd_kafka_new() took ownership
    main_queue_ = rd_kafka_queue_get_main(rk_);
    // librdkafka writes to the pipe when the queue goes from empty to non-empty.
    rd_kafka_queue_io_event_enable(main_queue_, pipe_write_, "1", 1);
}

Publisher::~Publisher() {
    if (rk_ != nullptr) {
        // Whatever is still queued is not confirmed to PostgreSQL: drop it, it will be replayed.
        rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_queue_io_event_enable(main_queue_, -1, nullptr, 0);
        rd_kafka_queue_destroy(main_queue_);
        for (const auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk_);
    }
    if (pipe_read_ >= 0) ::close(pipe_read_);
    if (pipe_write_ >= 0) ::close(pipe_write_);
}

namespace {

ProduceResult produce_error(rd_kafka_resp_err_t err) {
    ProduceResult result;
    result.error = err;
    result.message = rd_kafka_err2str(err);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        result.status = ProduceStatus::QueueFull;
    } else if (classify_delivery_error(err) == DeliveryOutcome::Permanent) {
        result.status = ProduceStatus::Permanent;
    } else {
        result.status = ProduceStatus::Failed;
    }
    return result;
}

}  // namespace

rd_kafka_topic_t* Publisher::topic_handle(const std::string& name, rd_kafka_resp_err_t& error) {
    // Consecutive events mostly go to the same topic: compare before hashing.
    if (last_topic_ != nullptr && name == last_topic_->first) return last_topic_->second;
    auto it = topics_.find(name);
    if (it == topics_.end()) {
        rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
        if (rkt == nullptr) {
            error = rd_kafka_last_error();
            if (error == RD_KAFKA_RESP_ERR_NO_ERROR) error = RD_KAFKA_RESP_ERR__INVALID_ARG;
            return nullptr;
        }
        it = topics_.emplace(name, rkt).first;
    }
    last_topic_ = &*it;  // elements of an unordered_map stay put when it rehashes
    return it->second;
}

ProduceResult Publisher::produce(const Record& record, std::uint64_t cookie) {
    rd_kafka_resp_err_t topic_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_t* rkt = topic_handle(record.topic, topic_error);
    if (rkt == nullptr) return produce_error(topic_error);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
    for (const auto& h : record.headers) {
        rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()),
                            h.value ? h.value->data() : nullptr,
                            h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
    // The macros cast their arguments: pass plain variables.
    const void* key = record.key ? record.key->data() : nullptr;
    const std::size_t key_len = record.key ? record.key->size() : 0;
    void* value = record.value ? const_cast<char*>(record.value->data()) : nullptr;  // copied (F_COPY)
    const std::size_t value_len = record.value ? record.value->size() : 0;
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, value_len),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(cookie))), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    rd_kafka_headers_destroy(headers);  // not taken over on failure
    return produce_error(err);
}

void Publisher::serve(const std::function<void(const Delivery&)>& on_delivery) {
    char buf[256];
    while (::read(pipe_read_, buf, sizeof buf) > 0) {
    }
    current_sink_ = &on_delivery;
    while (rd_kafka_poll(rk_, 0) > 0) {
    }
    current_sink_ = nullptr;
}

std::optional<std::string> Publisher::take_last_error() {
    auto e = std::move(last_error_);
    last_error_.reset();
    return e;
}

int Publisher::outstanding() const noexcept {
    return rd_kafka_outq_len(rk_);
}

void Publisher::purge_queued() noexcept {
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
}

void Publisher::on_delivery_report(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<Publisher*>(opaque);
    if (self->current_sink_ == nullptr) return;  // purged while shutting down: nothing to do
    Delivery d;
    d.cookie = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(message->_private));
    d.error = message->err;
    d.outcome = classify_delivery_error(message->err);
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) d.error_text = rd_kafka_err2str(message->err);
    d.message = message;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) self->all_brokers_down_ = false;
    (*self->current_sink_)(d);
}

void Publisher::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Publisher*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        const rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        self->fatal_ = std::string(rd_kafka_err2name(orig)) + ": " + buf;
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->all_brokers_down_ = true;
    self->last_error_ = std::string(rd_kafka_err2name(code)) + ": " + (reason != nullptr ? reason : "");
}

void Publisher::on_log(const rd_kafka_t* /*rk*/, int level, const char* facility, const char* message) {
    // librdkafka's syslog levels; its threads call this, spdlog's loggers are thread-safe.
    const auto lvl = level <= 3   ? spdlog::level::err
                     : level <= 4 ? spdlog::level::warn
                     : level <= 6 ? spdlog::level::info
                                  : spdlog::level::debug;
    spdlog::log(lvl, "kafka {}: {}", facility, message);
}

}  // namespace outbox::kafka

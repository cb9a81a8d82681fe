#include "kafka/publisher.h"
#include "kafka/producer_conf.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <unordered_map>

#include "common/error.h"

namespace outbox::kafka {
namespace {

// Per-message errors that are the record's fault: retrying the same record can never succeed.
// Everything else is the cluster's state and must fail closed.
bool is_permanent(rd_kafka_resp_err_t error) noexcept {
    switch (error) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR__INVALID_ARG: return true;
        default: return false;
    }
}

// The dead-letter reason for a permanent error (a metric label and a header value).
std::string_view rejection_code(rd_kafka_resp_err_t error) noexcept {
    return error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? "too_large" : "rejected_by_kafka";
}

relay::SendResult send_error(rd_kafka_resp_err_t err) {
    relay::SendResult result;
    result.detail = rd_kafka_err2str(err);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        result.status = relay::SendStatus::NoRoom;
    } else if (is_permanent(err)) {
        result.status = relay::SendStatus::Refused;
        result.code = rejection_code(err);
    } else {
        result.status = relay::SendStatus::Failed;
    }
    return result;
}

// Rebuilds a refused message as a Record (views into librdkafka's copy, valid during the
// delivery callback only), so the pipeline can make its dead-letter copy.
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

struct Publisher::Impl {
    ~Impl();

    static void on_delivery_report(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
    static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
    static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message);

    // The handle of `name`, created on first use. Producing by handle spares librdkafka a
    // search of its topic list under a lock for every event. nullptr (and `error`) when refused.
    rd_kafka_topic_t* topic_handle(const std::string& name, rd_kafka_resp_err_t& error);

    rd_kafka_t* rk = nullptr;
    rd_kafka_queue_t* main_queue = nullptr;
    std::unordered_map<std::string, rd_kafka_topic_t*> topics;  // destroyed before rk
    const std::pair<const std::string, rd_kafka_topic_t*>* last_topic = nullptr;
    int pipe_read = -1;
    int pipe_write = -1;
    const std::function<void(const relay::Delivery&)>* current_handler = nullptr;
    // An exception from the handler, carried past librdkafka's C frames and rethrown by serve().
    std::exception_ptr handler_error;
    Record refused;  // reused for Refused reports
    std::optional<std::string> fatal;
    std::optional<std::string> last_error;
    bool all_brokers_down = false;
};

Publisher::Impl::~Impl() {
    if (rk != nullptr) {
        // Whatever is still queued is not confirmed to PostgreSQL: drop it, it will be replayed.
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_queue_io_event_enable(main_queue, -1, nullptr, 0);
        rd_kafka_queue_destroy(main_queue);
        for (const auto& [name, rkt] : topics) rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
    }
    if (pipe_read >= 0) ::close(pipe_read);
    if (pipe_write >= 0) ::close(pipe_write);
}

void check_properties(const PublisherOptions& options) {
    (void)make_conf(options);
}

Publisher::Publisher(const PublisherOptions& options) : impl_(std::make_unique<Impl>()) {
    ConfHandle conf = make_conf(options);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::on_delivery_report);
    rd_kafka_conf_set_error_cb(conf.get(), &Impl::on_error);
    rd_kafka_conf_set_log_cb(conf.get(), &Impl::on_log);
    rd_kafka_conf_set_opaque(conf.get(), impl_.get());

    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        throw Error(ErrorKind::Fatal, std::string("pipe2 failed: ") + std::strerror(errno));
    }
    impl_->pipe_read = fds[0];
    impl_->pipe_write = fds[1];

    char errstr[512];
    impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
    if (impl_->rk == nullptr) {
        throw Error(ErrorKind::Config, std::string("cannot create the Kafka producer: ") + errstr);
    }
    (void)conf.release();  // rd_kafka_new() took ownership
    impl_->main_queue = rd_kafka_queue_get_main(impl_->rk);
    // librdkafka writes to the pipe when the queue goes from empty to non-empty.
    rd_kafka_queue_io_event_enable(impl_->main_queue, impl_->pipe_write, "1", 1);
}

Publisher::~Publisher() = default;

int Publisher::wakeup_fd() const noexcept {
    return impl_->pipe_read;
}

rd_kafka_topic_t* Publisher::Impl::topic_handle(const std::string& name, rd_kafka_resp_err_t& error) {
    // Consecutive events mostly go to the same topic: compare before hashing.
    if (last_topic != nullptr && name == last_topic->first) return last_topic->second;
    auto it = topics.find(name);
    if (it == topics.end()) {
        rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, name.c_str(), nullptr);
        if (rkt == nullptr) {
            error = rd_kafka_last_error();
            if (error == RD_KAFKA_RESP_ERR_NO_ERROR) error = RD_KAFKA_RESP_ERR__INVALID_ARG;
            return nullptr;
        }
        it = topics.emplace(name, rkt).first;
    }
    last_topic = &*it;  // elements of an unordered_map stay put when it rehashes
    return it->second;
}

relay::SendResult Publisher::send(const Record& record, std::uint64_t cookie) {
    rd_kafka_resp_err_t topic_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_t* rkt = impl_->topic_handle(record.topic, topic_error);
    if (rkt == nullptr) return send_error(topic_error);
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
    const std::int64_t timestamp_ms = record.timestamp_ms;  // 0: librdkafka takes the current time
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        impl_->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, value_len),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(cookie))), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    rd_kafka_headers_destroy(headers);  // not taken over on failure
    return send_error(err);
}

void Publisher::serve(const std::function<void(const relay::Delivery&)>& on_delivery) {
    // librdkafka writes one byte when its queue stops being empty: a short read emptied the pipe.
    char buf[256];
    while (::read(impl_->pipe_read, buf, sizeof buf) == static_cast<ssize_t>(sizeof buf)) {
    }
    impl_->current_handler = &on_delivery;
    while (!impl_->handler_error && rd_kafka_poll(impl_->rk, 0) > 0) {
    }
    impl_->current_handler = nullptr;
    if (impl_->handler_error) std::rethrow_exception(std::exchange(impl_->handler_error, nullptr));
}

const std::optional<std::string>& Publisher::fatal_error() const noexcept {
    return impl_->fatal;
}

std::optional<std::string> Publisher::take_last_error() {
    return std::exchange(impl_->last_error, std::nullopt);
}

bool Publisher::all_brokers_down() const noexcept {
    return impl_->all_brokers_down;
}

int Publisher::outstanding() const noexcept {
    return rd_kafka_outq_len(impl_->rk);
}

void Publisher::drop_unsent() noexcept {
    rd_kafka_purge(impl_->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
}

void Publisher::Impl::on_delivery_report(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message,
                                         void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    // No handler: purged while shutting down, nothing to do. After a handler's exception the
    // session ends without confirming anything more, so later reports may go unheard too.
    if (self->current_handler == nullptr || self->handler_error) return;
    relay::Delivery d;
    d.cookie = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(message->_private));
    d.topic = rd_kafka_topic_name(message->rkt);
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        self->all_brokers_down = false;
    } else {
        d.detail = rd_kafka_err2str(message->err);
        if (is_permanent(message->err)) {
            d.status = relay::DeliveryStatus::Refused;
            d.code = rejection_code(message->err);
            record_from_message(message, self->refused);
            d.record = &self->refused;
        } else {
            d.status = relay::DeliveryStatus::Failed;
        }
    }
    try {
        (*self->current_handler)(d);
    } catch (...) {
        self->handler_error = std::current_exception();
    }
}

void Publisher::Impl::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        const rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        self->fatal = std::string(rd_kafka_err2name(orig)) + ": " + buf;
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->all_brokers_down = true;
    self->last_error = std::string(rd_kafka_err2name(code)) + ": " + (reason != nullptr ? reason : "");
}

void Publisher::Impl::on_log(const rd_kafka_t* /*rk*/, int level, const char* facility, const char* message) {
    // librdkafka's syslog levels; its threads call this, spdlog's loggers are thread-safe.
    const auto lvl = level <= 3   ? spdlog::level::err
                     : level <= 4 ? spdlog::level::warn
                     : level <= 6 ? spdlog::level::info
                                  : spdlog::level::debug;
    spdlog::log(lvl, "kafka {}: {}", facility, message);
}

}  // namespace outbox::kafka

#include "support/kafka_consumer.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>

#include "support/wait.h"

namespace outbox::test {
namespace {

std::atomic<int> g_consumers{0};
constexpr std::size_t kMaxErrors = 1000;

void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    if (level > 4) return;  // keep emergencies .. warnings only
    if (auto* self = static_cast<TopicConsumer*>(rd_kafka_opaque(rk))) {
        self->note_error(std::string("log ") + fac + ": " + buf);
    }
}

void on_error(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
    if (auto* self = static_cast<TopicConsumer*>(opaque)) {
        self->note_error(std::string("error ") + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) +
                         ": " + reason);
    }
}

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error("TopicConsumer: " + key + "=" + value + ": " + errstr);
    }
}

struct MetadataGuard {
    const rd_kafka_metadata_t* md = nullptr;
    ~MetadataGuard() {
        if (md != nullptr) rd_kafka_metadata_destroy(md);
    }
};

}  // namespace

std::optional<std::string> header_value(const KafkaRecord& record, std::string_view name) {
    for (const auto& h : record.headers) {
        if (h.name == name) return h.value;
    }
    return std::nullopt;
}

std::map<std::string, std::optional<std::string>> header_map(const KafkaRecord& record) {
    std::map<std::string, std::optional<std::string>> out;
    for (const auto& h : record.headers) out.emplace(h.name, h.value);
    return out;
}

TopicConsumer::TopicConsumer(TopicConsumerOptions options) : options_(std::move(options)) {
    if (options_.bootstrap.empty()) throw std::invalid_argument("TopicConsumer: bootstrap is empty");
    if (options_.group_id.empty()) {
        options_.group_id =
            "outbox-test-" + std::to_string(::getpid()) + "-" + std::to_string(g_consumers.fetch_add(1));
    }
    regex_ = std::regex(options_.topic_regex);  // throws std::regex_error on a bad pattern

    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", options_.bootstrap);
    set(conf, "group.id", options_.group_id);
    set(conf, "client.id", "outbox-test-consumer");
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "enable.partition.eof", "false");
    set(conf, "topic.metadata.refresh.interval.ms", std::to_string(options_.metadata_refresh.count()));
    set(conf, "fetch.wait.max.ms", "50");
    set(conf, "reconnect.backoff.max.ms", "1000");
    set(conf, "log.connection.close", "false");
    for (const auto& [key, value] : options_.properties) set(conf, key, value);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);

    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error(std::string("TopicConsumer: rd_kafka_new: ") + errstr);
    }
    rd_kafka_poll_set_consumer(rk_);  // error callbacks are served by rd_kafka_consumer_poll

    thread_ = std::thread([this] { run(); });
}

TopicConsumer::~TopicConsumer() {
    stop();
}

void TopicConsumer::stop() {
    std::lock_guard lock(stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (rk_ != nullptr) {
        rd_kafka_destroy(rk_);
        rk_ = nullptr;
    }
}

void TopicConsumer::note_error(std::string text) {
    std::lock_guard lock(mutex_);
    if (errors_.size() < kMaxErrors) errors_.push_back(std::move(text));
}

bool TopicConsumer::matches(const std::string& topic) const {
    if (topic.rfind("__", 0) == 0) return false;
    for (const auto& t : options_.topics) {
        if (t == topic) return true;
    }
    if (options_.topic_regex.empty()) return false;
    return std::regex_search(topic, regex_);
}

void TopicConsumer::refresh_assignment() {
    MetadataGuard guard;
    if (rd_kafka_metadata(rk_, 1, nullptr, &guard.md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    std::map<std::string, int> current;
    {
        std::lock_guard lock(mutex_);
        current = assigned_;
    }
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
    std::map<std::string, int> grown;
    for (int i = 0; i < guard.md->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& topic = guard.md->topics[i];
        if (topic.err != RD_KAFKA_RESP_ERR_NO_ERROR || topic.partition_cnt <= 0) continue;
        const std::string name = topic.topic;
        if (!matches(name)) continue;
        const auto it = current.find(name);
        const int have = it == current.end() ? 0 : it->second;
        if (topic.partition_cnt <= have) continue;
        for (int p = have; p < topic.partition_cnt; ++p) {
            rd_kafka_topic_partition_list_add(list, name.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        grown[name] = topic.partition_cnt;
    }
    if (list->cnt > 0) {
        if (rd_kafka_error_t* error = rd_kafka_incremental_assign(rk_, list)) {
            note_error(std::string("incremental_assign: ") + rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else {
            std::lock_guard lock(mutex_);
            for (const auto& [name, count] : grown) assigned_[name] = count;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void TopicConsumer::run() {
    auto next_refresh = std::chrono::steady_clock::now();
    while (!stop_.load()) {
        if (std::chrono::steady_clock::now() >= next_refresh) {
            refresh_assignment();
            next_refresh = std::chrono::steady_clock::now() + options_.metadata_refresh;
        }
        rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, 100);
        if (msg == nullptr) continue;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                std::string where = msg->rkt != nullptr ? std::string(rd_kafka_topic_name(msg->rkt)) + " [" +
                                                              std::to_string(msg->partition) + "]: "
                                                        : std::string();
                note_error("consume " + where + rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        KafkaRecord r;
        r.topic = rd_kafka_topic_name(msg->rkt);
        r.partition = msg->partition;
        r.offset = msg->offset;
        rd_kafka_timestamp_type_t ts_type;
        r.timestamp_ms = rd_kafka_message_timestamp(msg, &ts_type);
        if (msg->key != nullptr) r.key = std::string(static_cast<const char*>(msg->key), msg->key_len);
        if (msg->payload != nullptr) {
            r.value = options_.keep_values ? std::string(static_cast<const char*>(msg->payload), msg->len)
                                           : std::string();
        }
        rd_kafka_headers_t* hdrs = nullptr;
        if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
            const char* name = nullptr;
            const void* value = nullptr;
            std::size_t size = 0;
            for (std::size_t i = 0;
                 rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
                KafkaHeader h;
                h.name = name;
                if (value != nullptr) h.value = std::string(static_cast<const char*>(value), size);
                r.headers.push_back(std::move(h));
            }
        }
        rd_kafka_message_destroy(msg);

        std::lock_guard lock(mutex_);
        const auto key = std::make_pair(r.topic, r.partition);
        const auto it = last_offset_.find(key);
        const std::int64_t expected = it == last_offset_.end() ? 0 : it->second + 1;
        if (it != last_offset_.end() && r.offset <= it->second) continue;  // handed to us again
        if (r.offset > expected) {
            ++gaps_;
            skipped_ += r.offset - expected;
        }
        last_offset_[key] = r.offset;
        if (auto id = header_value(r, "id")) ids_.insert(std::move(*id));
        records_.push_back(std::move(r));
    }
    rd_kafka_consumer_close(rk_);
}

std::vector<KafkaRecord> TopicConsumer::records() const {
    std::lock_guard lock(mutex_);
    return records_;
}

std::size_t TopicConsumer::size() const {
    std::lock_guard lock(mutex_);
    return records_.size();
}

std::size_t TopicConsumer::distinct_ids() const {
    std::lock_guard lock(mutex_);
    return ids_.size();
}

bool TopicConsumer::has_id(const std::string& id) const {
    std::lock_guard lock(mutex_);
    return ids_.contains(id);
}

std::size_t TopicConsumer::count_ids(const std::vector<std::string>& ids) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& id : ids) n += ids_.contains(id) ? 1 : 0;
    return n;
}

bool TopicConsumer::wait_for_count(std::size_t count, std::chrono::milliseconds timeout) const {
    return outbox::test::wait_until([&] { return size() >= count; }, timeout);
}

bool TopicConsumer::wait_for_ids(const std::vector<std::string>& ids,
                                 std::chrono::milliseconds timeout) const {
    return outbox::test::wait_until([&] { return count_ids(ids) == ids.size(); }, timeout,
                                    std::chrono::milliseconds(50));
}

bool TopicConsumer::wait_until(const std::function<bool(const TopicConsumer&)>& predicate,
                               std::chrono::milliseconds timeout) const {
    return outbox::test::wait_until([&] { return predicate(*this); }, timeout);
}

bool TopicConsumer::caught_up(std::chrono::milliseconds timeout) const {
    if (stop_.load() || rk_ == nullptr) return false;
    const int ms = static_cast<int>(timeout.count());
    MetadataGuard guard;
    if (rd_kafka_metadata(rk_, 1, nullptr, &guard.md, ms) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    for (int i = 0; i < guard.md->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& topic = guard.md->topics[i];
        if (topic.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
        const std::string name = topic.topic;
        if (!matches(name)) continue;
        for (int p = 0; p < topic.partition_cnt; ++p) {
            std::int64_t low = 0;
            std::int64_t high = 0;
            if (rd_kafka_query_watermark_offsets(rk_, name.c_str(), p, &low, &high, ms) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                return false;
            }
            if (high <= low) continue;  // empty (or everything dropped)
            std::lock_guard lock(mutex_);
            const auto it = last_offset_.find({name, p});
            if (it == last_offset_.end() || it->second + 1 < high) return false;
        }
    }
    return true;
}

bool TopicConsumer::wait_caught_up(std::chrono::milliseconds timeout) const {
    return outbox::test::wait_until([&] { return caught_up(); }, timeout, std::chrono::milliseconds(100));
}

std::vector<std::string> TopicConsumer::topics() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [name, count] : assigned_) out.push_back(name);
    return out;
}

std::vector<std::string> TopicConsumer::errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
}

std::size_t TopicConsumer::gaps() const {
    std::lock_guard lock(mutex_);
    return gaps_;
}

std::int64_t TopicConsumer::skipped_offsets() const {
    std::lock_guard lock(mutex_);
    return skipped_;
}

}  // namespace outbox::test

#include "kafka/cluster_probe.h"

#include <librdkafka/rdkafka.h>

#include "kafka/producer_conf.h"

namespace outbox::kafka {
namespace {

struct ProducerDeleter {
    void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct MetadataDeleter {
    void operator()(const rd_kafka_metadata_t* md) const noexcept { rd_kafka_metadata_destroy(md); }
};

}  // namespace

ClusterProbe probe_cluster(const PublisherOptions& options, std::chrono::milliseconds timeout) {
    ClusterProbe probe;
    ConfHandle conf = make_conf(options);
    // Quiet: the probe's outcome is what preflight prints, not librdkafka's own connection logs.
    char errstr[512];
    rd_kafka_conf_set(conf.get(), "log_level", "0", errstr, sizeof errstr);
    std::unique_ptr<rd_kafka_t, ProducerDeleter> rk(
        rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr));
    if (!rk) {
        probe.error = std::string("cannot create a Kafka client: ") + errstr;
        return probe;
    }
    (void)conf.release();  // rd_kafka_new() took ownership
    const rd_kafka_metadata_t* raw = nullptr;
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk.get(), 1, nullptr, &raw, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        probe.error = rd_kafka_err2str(err);
        return probe;
    }
    const std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> md(raw);
    probe.brokers = md->broker_cnt;
    for (int i = 0; i < md->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& t = md->topics[i];
        probe.topics[t.topic] = t.err == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2str(t.err);
    }
    return probe;
}

}  // namespace outbox::kafka

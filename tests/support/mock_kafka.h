#pragma once

#include <sys/types.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.h"

namespace outbox::test {

// The reply of the mock broker's control channel was "ERR ...".
class MockKafkaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Drives the `mock-kafka` process (tests/support/mock_broker/main.cpp): librdkafka's mock cluster
// in its own process, speaking Kafka protocol on 127.0.0.1, with fault injection over a unix
// control socket. The process gets SIGKILL when the test process dies, so a crashed test never
// leaves a broker behind; the destructor stops it. (PR_SET_PDEATHSIG follows the spawning
// *thread*: construct it on a thread that outlives it, e.g. the test's main thread.)
//
// Limits of the librdkafka 2.0.2 mock: each partition keeps only ~5 MiB (or 100k batches) and
// silently drops older data, so large tests must consume while producing; auto-created topics
// always have 4 partitions; `broker_down` does not move partition leadership; read_committed
// consumers see aborted transactional messages.
class MockKafka {
public:
    // Starts the broker with `brokers` brokers (ids 1..brokers). Files go to `run_dir` (created if
    // missing): mock-kafka.log, mock-kafka.bootstrap, mock-kafka.sock. `extra_args` are passed on
    // (e.g. {"--topic", "orders", "--partitions", "8"}). Waits up to `startup_timeout` for the
    // bootstrap file; throws std::runtime_error with the log tail if the broker does not come up.
    explicit MockKafka(std::string run_dir, int brokers = 3, std::vector<std::string> extra_args = {},
                       std::chrono::milliseconds startup_timeout = std::chrono::seconds(15));
    ~MockKafka();
    MockKafka(const MockKafka&) = delete;
    MockKafka& operator=(const MockKafka&) = delete;
    MockKafka(MockKafka&&) = delete;
    MockKafka& operator=(MockKafka&&) = delete;

    // "127.0.0.1:port,127.0.0.1:port,..." for bootstrap.servers / kcat -b.
    [[nodiscard]] const std::string& bootstrap() const noexcept { return bootstrap_; }
    [[nodiscard]] int brokers() const noexcept { return brokers_; }
    [[nodiscard]] const std::string& run_dir() const noexcept { return run_dir_; }
    [[nodiscard]] const std::string& log_path() const noexcept { return log_path_; }
    [[nodiscard]] const std::string& control_path() const noexcept { return control_path_; }
    [[nodiscard]] pid_t pid() const noexcept { return process_.pid(); }
    [[nodiscard]] bool running() { return process_.running(); }
    // From spawn until the bootstrap file appeared.
    [[nodiscard]] std::chrono::milliseconds startup_time() const noexcept { return startup_time_; }
    // The last `max_bytes` of the broker's log (stdout and stderr), for failure messages.
    [[nodiscard]] std::string log_tail(std::size_t max_bytes = 4000) const;

    // Sends one control line and returns the reply's data ("OK foo" -> "foo", "OK" -> "").
    // Throws MockKafkaError on an "ERR ..." reply, std::runtime_error if the channel fails.
    std::string command(const std::string& line);
    // Sends one control line and returns the whole reply line ("OK ..." or "ERR ..."); throws only
    // if the channel fails (no broker, timeout, line with a newline).
    std::string raw_command(const std::string& line);

    void broker_down(int broker_id) { command("broker-down " + std::to_string(broker_id)); }
    void broker_up(int broker_id) { command("broker-up " + std::to_string(broker_id)); }
    void all_down() { command("all-down"); }
    void all_up() { command("all-up"); }
    // The next requests of `apikey` (0 = Produce, 3 = Metadata, ...) to any broker fail with these
    // RD_KAFKA_RESP_ERR codes, one per request, in order (e.g. 6 NOT_LEADER, 7 REQUEST_TIMED_OUT).
    void push_errors(int apikey, const std::vector<int>& errors);
    void clear_errors(int apikey) { command("clear-errors " + std::to_string(apikey)); }
    // The next request of `apikey` to `broker_id` fails with `error` (0: succeeds) after `rtt_ms`.
    void broker_error_rtt(int broker_id, int apikey, int error, int rtt_ms);
    // Adds `ms` latency to every response of `broker_id` (0 removes it).
    void set_rtt(int broker_id, int ms);
    // partitions/replication <= 0: the broker's defaults (--partitions, min(3, brokers)).
    void create_topic(const std::string& name, int partitions = 0, int replication_factor = 0);
    // Error returned for the topic in Metadata (and AddPartitionsToTxn) responses; 0 clears it.
    void topic_error(const std::string& name, int error);
    void partition_leader(const std::string& topic, int partition, int broker_id);

    // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit code (0 on a clean stop; 128+n
    // if killed by signal n). Idempotent: later calls return the first result.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

private:
    std::string run_dir_;
    int brokers_;
    std::string log_path_;
    std::string bootstrap_path_;
    std::string control_path_;
    std::string bootstrap_;
    std::chrono::milliseconds startup_time_{0};
    ChildProcess process_;
    bool stopped_ = false;
    int exit_code_ = -1;
};

// The mock-kafka executable: $OUTBOX_MOCK_KAFKA if set, else OUTBOX_BUILD_DIR/tests/mock-kafka.
std::string mock_kafka_executable();

}  // namespace outbox::test

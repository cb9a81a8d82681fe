#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/pipeline_reporter.h"
#include "app/session.h"
#include "kafka/publisher.h"
#include "pg/poll_source.h"
#include "pg/query_channel.h"
#include "relay/pipeline.h"

namespace outbox::app {

// The polling publisher (source: poll): one normal PostgreSQL connection, one producer and one
// pipeline, driven by one poll() loop over the connection's socket, the producer's wakeup fd and
// the signal fd (DESIGN rule 3; only start() blocks). One batch at a time, one transaction each
// (pg/poll_source.h): lock up to poll.batch_size rows in order_by order, feed them to the pipeline
// as one ledger transaction, wait until Kafka acknowledged every event of it, then delete (or
// mark) exactly those rows and commit. Nothing is deleted before its acknowledgement; anything
// that goes wrong before the COMMIT rolls the batch back and its rows are polled again
// (duplicates, never loss). A session-level advisory lock makes one relay the table's poller; a
// second one ends its start with SQLSTATE 55006 and the Supervisor keeps it waiting as a standby.
class PollSession final {
public:
    explicit PollSession(SessionContext context);
    // Checks, locks and polls until it ends. Throws like Session::run().
    Session::End run();
    [[nodiscard]] bool made_progress() const noexcept;
    // The session got as far as holding the table's lock and polling.
    [[nodiscard]] bool streamed() const noexcept { return polling_; }

private:
    enum class Phase {
        Idle,       // no transaction; the next poll is due at next_poll_
        Selecting,  // BEGIN; SELECT ... FOR UPDATE SKIP LOCKED on its way
        Feeding,    // the batch's rows go to the pipeline (paused under backpressure)
        Acking,     // every row fed; waiting for Kafka to acknowledge the batch
        Finishing,  // DELETE/UPDATE ...; COMMIT on its way
    };

    void start();
    Session::End loop();
    // Moves the batch on as far as it can without waiting; an End when the session is over.
    std::optional<Session::End> step(std::chrono::steady_clock::time_point now);
    void send_poll(std::chrono::steady_clock::time_point now);
    void begin_batch();
    void feed();
    void send_after_publish();
    void end_batch(std::chrono::steady_clock::time_point now);
    Session::End finish(Session::End end);
    void throw_if_failed();
    void on_delivery(const relay::Delivery& delivery);
    void account();
    void update_gauges(std::chrono::steady_clock::time_point now);
    [[nodiscard]] int poll_timeout_ms(std::chrono::steady_clock::time_point now) const;

    SessionContext ctx_;
    PipelineReporter reporter_;
    pg::PollOptions options_;
    pg::PollTable table_;
    std::optional<kafka::Publisher> publisher_;
    std::optional<relay::Pipeline> pipeline_;
    std::optional<pg::QueryChannel> channel_;  // closing it rolls back an open batch
    bool polling_ = false;

    Phase phase_ = Phase::Idle;
    std::chrono::steady_clock::time_point next_poll_{};
    std::chrono::steady_clock::time_point poll_sent_at_{};
    std::chrono::steady_clock::time_point last_backlog_count_{};
    std::optional<std::chrono::steady_clock::time_point> drain_deadline_;
    // The batch: its rows (the result stays alive while its values are in flight), the relation
    // its columns make, the next row to feed and the ledger position that completes it.
    pg::ResultHandle rows_;
    int row_count_ = 0;
    int next_row_ = 0;
    pgoutput::RelationInfo relation_;
    pgoutput::Tuple tuple_;
    Lsn position_{0};
    std::int64_t newest_commit_us_ = 0;  // of the batch's rows (outbox_relay_confirmed_commit_timestamp)
};

}  // namespace outbox::app

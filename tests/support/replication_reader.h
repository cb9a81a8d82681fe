#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"
#include "pg/replication_stream.h"
#include "pgoutput/relation_cache.h"

namespace outbox::test {

// An inserted row as decoded, with owned values by column name (nullopt = NULL).
struct DecodedRow {
    std::string relation;
    std::map<std::string, std::optional<std::string>> values;
    std::vector<std::string> column_names;  // the shape of the Relation it was decoded with
};

// A pg_logical_emit_message() as decoded.
struct DecodedLogicalMessage {
    bool transactional = false;
    Lsn lsn;
    std::string prefix;
    std::string content;
};

struct DecodedTransaction {
    Xid xid;
    Lsn commit_lsn;
    Lsn end_lsn;
    std::vector<DecodedRow> rows;
    std::optional<std::string> origin;            // the Origin message's name, if one came
    std::vector<DecodedLogicalMessage> messages;  // transactional logical messages
};

// Drives a ReplicationStream in the test's thread: reads frames, decodes them, keeps what
// was decoded, answers keepalives through service(). The test decides what is confirmed.
class ReplicationReader {
public:
    explicit ReplicationReader(pg::ReplicationStream& stream) : stream_(stream) {}

    // Confirm each transaction's end LSN as soon as it is decoded.
    bool confirm_commits = false;
    // Confirm the keepalive's WAL end when no transaction is open and all were confirmed.
    bool confirm_idle_keepalives = false;

    // Pumps the stream until `done()` holds or `timeout` passes. Returns whether it held.
    bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
    // Pumps for the whole `duration`, e.g. to observe that something does NOT happen.
    void pump_for(std::chrono::milliseconds duration);

    [[nodiscard]] const std::vector<DecodedTransaction>& transactions() const { return transactions_; }
    [[nodiscard]] std::size_t keepalives() const { return keepalives_; }
    [[nodiscard]] std::size_t keepalives_with_reply_requested() const { return replies_requested_; }
    [[nodiscard]] std::vector<DecodedRow> rows() const;
    // The type of every message decoded, in order ("Begin", "Relation", "Insert", ...).
    [[nodiscard]] const std::vector<std::string>& message_kinds() const { return kinds_; }
    // Logical messages that arrived outside any transaction (non-transactional ones).
    [[nodiscard]] const std::vector<DecodedLogicalMessage>& lone_messages() const { return lone_messages_; }

private:
    void turn(std::chrono::milliseconds max_wait);

    pg::ReplicationStream& stream_;
    pgoutput::RelationCache relations_;
    std::optional<DecodedTransaction> open_;
    std::vector<DecodedTransaction> transactions_;
    std::vector<std::string> kinds_;
    std::vector<DecodedLogicalMessage> lone_messages_;
    std::size_t keepalives_ = 0;
    std::size_t replies_requested_ = 0;
};

}  // namespace outbox::test

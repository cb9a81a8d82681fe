#pragma once

// What a correct relay produces for a list of committed events: the reference stream the
// invariant checker's tests start from (tests/checker/) and the workload test compares the WAL
// with (tests/integration/workload_consumer_test.cpp).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/lsn.h"
#include "support/kcat.h"
#include "support/workload.h"

namespace outbox::test {

// The made-up commit LSN of transaction `txn_seq`.
inline Lsn txn_lsn(std::uint64_t txn_seq) {
    return Lsn(0x1000000ull + 0x100ull * txn_seq);
}

// What a correct relay produces for `events` (in commit order): one record each, keyed by
// aggregate, partition by key, offsets per partition, the relay's headers.
class PerfectRelay {
public:
    KafkaRecord record_for(const CommittedEvent& e, std::optional<Lsn> lsn = std::nullopt) {
        KafkaRecord r;
        r.topic = e.expect_dead_letter ? "outbox.dead_letter" : "outbox.event." + e.aggregate_type;
        r.partition = static_cast<std::int32_t>(std::hash<std::string>{}(e.aggregate_id) % 4);
        r.offset = next_offset_[{r.topic, r.partition}]++;
        r.key = e.aggregate_id;
        r.value = e.payload;
        r.headers = {{"id", e.id},
                     {"outbox-lsn", (lsn ? *lsn : txn_lsn(e.txn_seq)).to_string()},
                     {"outbox-xid", std::to_string(e.xid)},
                     {"outbox-commit-time", "2024-01-01T00:00:00.000000Z"}};
        if (e.expect_dead_letter) {
            r.headers.push_back({"outbox-error", "aggregate_type is null"});
            r.headers.push_back({"outbox-error-code", "null_value"});
            r.headers.push_back({"outbox-table", "public.outbox"});
        }
        return r;
    }
    std::vector<KafkaRecord> stream(const std::vector<CommittedEvent>& events) {
        std::vector<KafkaRecord> out;
        for (const auto& e : events) out.push_back(record_for(e));
        return out;
    }

private:
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> next_offset_;
};

}  // namespace outbox::test

// The invariant checker (tests/support/invariant_checker.h) on made-up streams: it passes a
// correct one and fails on each kind of broken one (loss, phantom, order, duplicates outside the
// replay window, checkpoint, malformed records). Pure: no servers. Run: checker_tests

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "support/invariant_checker.h"
#include "support/kafka_consumer.h"
#include "support/perfect_relay.h"

using namespace outbox;
using namespace outbox::test;

namespace {

CommittedEvent event(std::string id, std::string type, std::string agg, std::uint64_t seq,
                     std::uint64_t txn) {
    CommittedEvent e;
    e.id = std::move(id);
    e.aggregate_type = std::move(type);
    e.aggregate_id = std::move(agg);
    e.type = e.aggregate_type + ".changed";
    e.payload = R"({"seq": )" + std::to_string(seq) + "}";
    e.commit_seq = seq;
    e.txn_seq = txn;
    e.xid = static_cast<std::uint32_t>(700 + txn);
    return e;
}

// Ten events over three aggregates in five transactions (commit_seq order).
std::vector<CommittedEvent> sample_events() {
    return {
        event("e01", "order", "agg-0", 1, 1), event("e02", "order", "agg-1", 2, 1),
        event("e03", "user", "agg-2", 3, 2),  event("e04", "order", "agg-0", 4, 3),
        event("e05", "order", "agg-0", 5, 3), event("e06", "user", "agg-2", 6, 3),
        event("e07", "order", "agg-1", 7, 4), event("e08", "user", "agg-2", 8, 4),
        event("e09", "order", "agg-0", 9, 5), event("e10", "order", "agg-1", 10, 5),
    };
}

std::vector<KafkaRecord>::iterator find_id(std::vector<KafkaRecord>& records, const std::string& id) {
    return std::find_if(records.begin(), records.end(),
                        [&](const KafkaRecord& r) { return header_value(r, "id") == std::optional(id); });
}

}  // namespace

TEST_SUITE("invariant_checker") {
    TEST_CASE("checker: a correct stream passes") {
        const auto events = sample_events();
        const auto records = PerfectRelay().stream(events);
        const Verdict v = check_invariants(events, {"r01", "r02"}, records);
        INFO(v.describe());
        CHECK(v.ok());
        CHECK(v.committed == 10);
        CHECK(v.delivered_unique == 10);
        CHECK(v.lost == 0);
        CHECK(v.phantoms == 0);
        CHECK(v.duplicates == 0);
        CHECK(v.order_violations == 0);
        CHECK(v.problems.empty());
        CHECK(v.summary() == "| 10 | 10 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 (0) | OK |");
        MESSAGE(Verdict::summary_header() << "\n" << v.summary());

        // Arrival order across partitions and topics does not matter, only each partition's offsets.
        auto shuffled = records;
        std::reverse(shuffled.begin(), shuffled.end());
        CHECK(check_invariants(events, {}, shuffled).ok());
    }

    TEST_CASE("checker: one committed event missing is a loss") {
        const auto events = sample_events();
        auto records = PerfectRelay().stream(events);
        records.erase(find_id(records, "e05"));
        const Verdict v = check_invariants(events, {}, records);
        INFO(v.describe());
        CHECK_FALSE(v.ok());
        CHECK(v.lost == 1);
        CHECK(v.delivered_unique == 9);
        CHECK(v.order_violations == 0);
        REQUIRE(v.problems.size() == 1);
        CHECK(v.problems[0].find("e05") != std::string::npos);
    }

    TEST_CASE("checker: a rolled-back or unknown event in Kafka is a phantom") {
        const auto events = sample_events();
        PerfectRelay relay;
        auto records = relay.stream(events);
        records.push_back(relay.record_for(event("r01", "order", "agg-0", 99, 99)));
        Verdict v = check_invariants(events, {"r01"}, records);
        INFO(v.describe());
        CHECK_FALSE(v.ok());
        CHECK(v.phantoms == 1);
        CHECK(v.lost == 0);
        CHECK(v.problems.at(0).find("rolled-back event r01") != std::string::npos);

        // Delivered twice, still one phantom event; plus one that was never generated at all.
        records.push_back(relay.record_for(event("r01", "order", "agg-0", 99, 99)));
        records.push_back(relay.record_for(event("zz", "user", "agg-7", 100, 100)));
        v = check_invariants(events, {"r01"}, records);
        CHECK(v.phantoms == 2);
    }

    TEST_CASE("checker: two events of one key swapped is one order violation") {
        const auto events = sample_events();
        auto records = PerfectRelay().stream(events);
        // agg-0 commits e01, e04, e05, e09: swap the neighbours e05 and e09 in the partition.
        auto a = find_id(records, "e05");
        auto b = find_id(records, "e09");
        REQUIRE(a->partition == b->partition);
        std::swap(a->offset, b->offset);
        Verdict v = check_invariants(events, {}, records);
        INFO(v.describe());
        CHECK_FALSE(v.ok());
        CHECK(v.order_violations == 1);
        CHECK(v.lost == 0);
        CHECK(v.lsn_inconsistencies == 0);

        // Violations count the places where a key's stream goes backwards: e04 and e09 swapped
        // (e04, e05 between them) gives e01 e09 e05 e04, backwards twice.
        records = PerfectRelay().stream(events);
        std::swap(find_id(records, "e04")->offset, find_id(records, "e09")->offset);
        v = check_invariants(events, {}, records);
        CHECK(v.order_violations == 2);

        // Other keys interleaving in the same partition do not matter: only each key's own order.
        auto other = PerfectRelay().stream(events);
        for (auto& r : other) r.partition = 0;
        std::int64_t off = 0;
        for (auto& r : other) r.offset = off++;
        CHECK(check_invariants(events, {}, other).ok());
    }

    TEST_CASE("checker: duplicates are allowed only at or after the LSN confirmed at the fault") {
        const auto events = sample_events();
        PerfectRelay relay;
        auto records = relay.stream(events);
        // The relay had confirmed up to transaction 3's commit; it replays transactions 4 and 5 (and a
        // transaction whose commit record starts exactly at the confirmed position).
        const Lsn confirmed = txn_lsn(4);
        records.push_back(relay.record_for(events[6]));  // e07, txn 4: replayed, fine
        records.push_back(relay.record_for(events[8]));  // e09, txn 5: replayed, fine
        Verdict v = check_invariants(events, {}, records, confirmed);
        INFO(v.describe());
        CHECK(v.ok());
        CHECK(v.duplicates == 2);
        CHECK(v.duplicates_outside_window == 0);
        CHECK(v.delivered_unique == 10);

        records.push_back(relay.record_for(events[1]));  // e02, txn 1: below the confirmed LSN
        v = check_invariants(events, {}, records, confirmed);
        CHECK_FALSE(v.ok());
        CHECK(v.duplicates == 3);
        CHECK(v.duplicates_outside_window == 1);
        CHECK(v.order_violations == 0);  // only first deliveries count for order

        // Without a fault position duplicates are counted, not judged.
        v = check_invariants(events, {}, records);
        CHECK(v.ok());
        CHECK(v.duplicates == 3);
    }

    TEST_CASE("checker: with timeouts_may_reorder, only replayable events may come after later ones") {
        const auto events = sample_events();
        PerfectRelay relay;
        auto records = relay.stream(events);
        // agg-0 commits e01 (txn 1), e04, e05 (txn 3), e09 (txn 5): e09 lands before e05, as when
        // e05's delivery timed out and its replay came after e09.
        std::swap(find_id(records, "e05")->offset, find_id(records, "e09")->offset);
        CheckOptions options;
        options.confirmed_at_fault = txn_lsn(3);  // transactions 3 to 5 are replayed
        options.timeouts_may_reorder = true;
        Verdict v = check_invariants(events, {}, records, options);
        INFO(v.describe());
        CHECK(v.ok());
        CHECK(v.order_violations == 0);
        CHECK(v.reordered_by_timeout == 1);

        // e05 confirmed before the fault (txn 3 below the confirmed position): a real violation.
        options.confirmed_at_fault = txn_lsn(4);
        v = check_invariants(events, {}, records, options);
        CHECK_FALSE(v.ok());
        CHECK(v.order_violations == 1);
        CHECK(v.reordered_by_timeout == 0);

        // Without the option, or without a fault position, it is a violation too.
        options.confirmed_at_fault = txn_lsn(3);
        options.timeouts_may_reorder = false;
        CHECK(check_invariants(events, {}, records, options).order_violations == 1);
        options.timeouts_may_reorder = true;
        options.confirmed_at_fault.reset();
        CHECK(check_invariants(events, {}, records, options).order_violations == 1);
    }

    TEST_CASE("checker: a slot sample confirmed past an event produced after it is a checkpoint violation") {
        const auto events = sample_events();
        PerfectRelay relay;
        auto records = relay.stream(events);
        // Produced at 1000 ms + 10 ms per transaction.
        for (auto& r : records) {
            const auto lsn = Lsn::parse(header_value(r, "outbox-lsn").value_or(""));
            REQUIRE(lsn);
            r.timestamp_ms =
                1000 + static_cast<std::int64_t>((lsn->value() - txn_lsn(0).value()) / 0x100) * 10;
        }
        CheckOptions options;
        // Fine: past transactions 1-3 (produced by 1030 ms) at 1035 ms; transaction 4's commit
        // record starts exactly at the confirmed position, so it is not yet covered.
        options.slot_samples = {{Lsn(), 900}, {txn_lsn(1), 1005}, {txn_lsn(4), 1035}};
        Verdict v = check_invariants(events, {}, records, options);
        INFO(v.describe());
        CHECK(v.ok());
        CHECK(v.slot_samples == 2);  // the 0/0 sample (no slot yet) judges nothing
        CHECK(v.checkpoint_violations == 0);

        // Confirmed past transaction 4 (produced at 1040 ms) when the clock read 1035 ms.
        options.slot_samples.push_back({Lsn(txn_lsn(4).value() + 1), 1035});
        v = check_invariants(events, {}, records, options);
        CHECK_FALSE(v.ok());
        CHECK(v.checkpoint_violations == 1);
        REQUIRE_FALSE(v.problems.empty());
        CHECK(v.describe().find("was produced only at 1040 ms") != std::string::npos);

        // A duplicate produced later does not count: the earliest record of an event decides.
        auto late = relay.record_for(events[6]);  // e07, transaction 4
        late.timestamp_ms = 5000;
        records.push_back(late);
        options.slot_samples = {{Lsn(txn_lsn(4).value() + 1), 1045}};
        v = check_invariants(events, {}, records, options);
        CHECK(v.checkpoint_violations == 0);
    }

    TEST_CASE("checker: wrong topic, key, value, xid and lsn headers are reported") {
        auto events = sample_events();
        events.push_back(event("dl1", "", "bad-0", 11, 6));
        events.back().expect_dead_letter = true;
        PerfectRelay relay;
        const auto good = relay.stream(events);
        Verdict v = check_invariants(events, {}, good);
        INFO(v.describe());
        CHECK(v.ok());
        CHECK(v.dead_lettered == 1);

        SUBCASE("expected dead letter on its normal topic: misrouted and lost") {
            auto records = good;
            find_id(records, "dl1")->topic = "outbox.event.";
            v = check_invariants(events, {}, records);
            CHECK(v.misrouted == 1);
            CHECK(v.lost == 1);
            CHECK(v.dead_lettered == 0);
        }
        SUBCASE("wrong key") {
            auto records = good;
            find_id(records, "e03")->key = "agg-9";
            v = check_invariants(events, {}, records);
            CHECK(v.malformed == 1);
            CHECK_FALSE(v.ok());
        }
        SUBCASE("wrong value") {
            auto records = good;
            find_id(records, "e03")->value = R"({"seq": 4})";
            v = check_invariants(events, {}, records);
            CHECK(v.malformed == 1);
            CheckOptions no_values;
            no_values.check_values = false;
            CHECK(check_invariants(events, {}, records, no_values).ok());
        }
        SUBCASE("no id header") {
            auto records = good;
            find_id(records, "e03")->headers.erase(find_id(records, "e03")->headers.begin());
            v = check_invariants(events, {}, records);
            CHECK(v.malformed == 1);
            CHECK(v.lost == 1);
        }
        SUBCASE("events of one transaction with different outbox-lsn") {
            auto records = good;
            for (auto& h : find_id(records, "e05")->headers) {
                if (h.name == "outbox-lsn") h.value = "0/1";
            }
            v = check_invariants(events, {}, records);
            CHECK(v.lsn_inconsistencies >= 1);
            CHECK_FALSE(v.ok());
        }
        SUBCASE("outbox-lsn 0/0 on every record (source: poll): judged only with check_lsns") {
            auto records = good;
            for (auto& r : records) {
                for (auto& h : r.headers) {
                    if (h.name == "outbox-lsn") h.value = "0/0";
                }
            }
            v = check_invariants(events, {}, records);
            CHECK(v.lsn_inconsistencies >= 1);
            CheckOptions polled;
            polled.check_lsns = false;
            v = check_invariants(events, {}, records, polled);
            CHECK(v.lsn_inconsistencies == 0);
            CHECK(v.ok());
        }
        SUBCASE("a key spread over two partitions") {
            auto records = good;
            auto r = find_id(records, "e09");
            r->partition = (r->partition + 1) % 4;
            v = check_invariants(events, {}, records);
            CHECK(v.misrouted == 1);
        }
    }

}  // TEST_SUITE

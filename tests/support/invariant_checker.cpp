#include "support/invariant_checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace outbox::test {
namespace {

std::optional<std::string> header(const KafkaRecord& record, std::string_view name) {
    for (const auto& h : record.headers) {
        if (h.name == name) return h.value;
    }
    return std::nullopt;
}

bool has_header(const KafkaRecord& record, std::string_view name) {
    return std::any_of(record.headers.begin(), record.headers.end(),
                       [&](const KafkaHeader& h) { return h.name == name; });
}

std::string where(const KafkaRecord& r) {
    return fmt::format("{}[{}]@{}", r.topic, r.partition, r.offset);
}

std::string show(const std::optional<std::string>& value, std::size_t max = 60) {
    if (!value) return "null";
    if (value->size() <= max) return "\"" + *value + "\"";
    return fmt::format("\"{}...\" ({} bytes)", std::string_view(*value).substr(0, max), value->size());
}

// Keeps the first `max` examples of each kind and counts the rest.
class Problems {
public:
    explicit Problems(std::size_t max) : max_(max) {}
    void add(const std::string& kind, std::string text) {
        auto& n = counts_[kind];
        if (n++ < max_) lines_.push_back(kind + ": " + std::move(text));
    }
    std::vector<std::string> finish() && {
        for (const auto& [kind, n] : counts_) {
            if (n > max_) lines_.push_back(fmt::format("{}: ... and {} more", kind, n - max_));
        }
        return std::move(lines_);
    }

private:
    std::size_t max_;
    std::map<std::string, std::size_t> counts_;
    std::vector<std::string> lines_;
};

struct Delivery {
    std::size_t count = 0;
    const KafkaRecord* first = nullptr;
    std::optional<Lsn> lsn;                                               // of the first delivery
    std::int64_t earliest_ms = std::numeric_limits<std::int64_t>::max();  // min record timestamp
};

}  // namespace

std::string Verdict::summary_header() {
    return "| committed | delivered | lost | phantoms | duplicates | dup outside window | order violations | "
           "dead-lettered | misrouted | malformed | lsn inconsistencies | checkpoint (samples) | verdict |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|";
}

std::string Verdict::summary() const {
    return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} |", committed,
                       delivered_unique, lost, phantoms, duplicates, duplicates_outside_window,
                       order_violations, dead_lettered, misrouted, malformed, lsn_inconsistencies,
                       checkpoint_violations, slot_samples, ok() ? "OK" : "FAIL");
}

std::string Verdict::describe() const {
    std::string out = summary_header() + "\n" + summary();
    out += fmt::format("\n({} records examined)", records);
    if (reordered_by_timeout != 0)
        out += fmt::format("\n({} reordered after a delivery timeout, allowed)", reordered_by_timeout);
    for (const auto& p : problems) out += "\n  " + p;
    return out;
}

Verdict check_invariants(const std::vector<CommittedEvent>& committed,
                         const std::vector<std::string>& rolled_back_ids,
                         const std::vector<KafkaRecord>& records, std::optional<Lsn> confirmed_at_fault) {
    CheckOptions options;
    options.confirmed_at_fault = confirmed_at_fault;
    return check_invariants(committed, rolled_back_ids, records, options);
}

Verdict check_invariants(const std::vector<CommittedEvent>& committed,
                         const std::vector<std::string>& rolled_back_ids,
                         const std::vector<KafkaRecord>& records, const CheckOptions& options) {
    Verdict v;
    Problems problems(options.max_examples);
    v.committed = committed.size();
    v.records = records.size();

    std::unordered_map<std::string, std::size_t> index;
    index.reserve(committed.size());
    for (std::size_t i = 0; i < committed.size(); ++i) {
        if (!index.emplace(committed[i].id, i).second) {
            throw std::invalid_argument("check_invariants: committed event " + committed[i].id +
                                        " listed twice");
        }
    }
    const std::unordered_set<std::string> rolled_back(rolled_back_ids.begin(), rolled_back_ids.end());
    const auto expected_topic = [&](const CommittedEvent& e) {
        return e.expect_dead_letter ? options.dead_letter_topic : options.topic_prefix + e.aggregate_type;
    };

    // Log order: per partition by offset (all records of one key live in one partition).
    std::vector<const KafkaRecord*> ordered;
    ordered.reserve(records.size());
    for (const auto& r : records) ordered.push_back(&r);
    std::stable_sort(ordered.begin(), ordered.end(), [](const KafkaRecord* a, const KafkaRecord* b) {
        if (a->topic != b->topic) return a->topic < b->topic;
        if (a->partition != b->partition) return a->partition < b->partition;
        return a->offset < b->offset;
    });

    std::vector<Delivery> deliveries(committed.size());
    std::unordered_set<std::string> phantom_ids;
    std::unordered_map<std::size_t, std::string> misrouted_to;  // event -> a topic it was found on
    std::unordered_map<std::uint64_t, std::pair<Lsn, const KafkaRecord*>> txn_lsn;

    for (const KafkaRecord* rp : ordered) {
        const KafkaRecord& r = *rp;
        const auto id = header(r, "id");
        if (!id) {
            ++v.malformed;
            problems.add("malformed", where(r) + " has no id header");
            continue;
        }
        const auto it = index.find(*id);
        if (it == index.end()) {
            if (phantom_ids.insert(*id).second) {
                ++v.phantoms;
                problems.add("phantom", fmt::format("{} event {} at {}",
                                                    rolled_back.contains(*id) ? "rolled-back" : "unknown",
                                                    *id, where(r)));
            }
            continue;
        }
        const std::size_t idx = it->second;
        const CommittedEvent& e = committed[idx];
        const std::string expected = expected_topic(e);
        if (r.topic != expected) {
            ++v.misrouted;
            misrouted_to.emplace(idx, r.topic);
            problems.add("misrouted",
                         fmt::format("event {} at {}, expected on topic {}", e.id, where(r), expected));
            continue;
        }

        // Per-record checks: key, value, commit headers.
        std::vector<std::string> wrong;
        const auto lsn_text = header(r, "outbox-lsn");
        const std::optional<Lsn> lsn = lsn_text ? Lsn::parse(*lsn_text) : std::nullopt;
        if (!lsn) wrong.push_back("outbox-lsn " + (has_header(r, "outbox-lsn") ? show(lsn_text) : "missing"));
        if (!e.expect_dead_letter) {
            if (r.key != std::optional<std::string>(e.aggregate_id)) {
                wrong.push_back("key " + show(r.key) + " != " + show(e.aggregate_id));
            }
            if (options.check_values && !e.payload.empty() &&
                r.value != std::optional<std::string>(e.payload)) {
                wrong.push_back("value " + show(r.value) + " != " + show(e.payload));
            }
        } else if (!header(r, "outbox-error-code")) {
            wrong.push_back("dead-letter record without outbox-error-code");
        }
        if (options.check_xids && e.xid != 0) {
            const auto xid = header(r, "outbox-xid");
            std::uint64_t parsed = 0;
            const bool good =
                xid && std::from_chars(xid->data(), xid->data() + xid->size(), parsed).ec == std::errc{} &&
                parsed == e.xid;
            if (!good) wrong.push_back(fmt::format("outbox-xid {} != {}", show(xid), e.xid));
        }
        if (!wrong.empty()) {
            ++v.malformed;
            std::string text = fmt::format("event {} at {}:", e.id, where(r));
            for (const auto& w : wrong) text += " " + w + ";";
            problems.add("malformed", text);
        }

        Delivery& d = deliveries[idx];
        if (r.timestamp_ms >= 0) d.earliest_ms = std::min(d.earliest_ms, r.timestamp_ms);
        if (d.count == 0) {
            d.first = &r;
            d.lsn = lsn;
            ++v.delivered_unique;
            if (e.expect_dead_letter) ++v.dead_lettered;
        } else {
            ++v.duplicates;
            // A restart replays every transaction whose commit record is at or after the confirmed
            // position (PostgreSQL skips only commits *before* it), so outbox-lsn == confirmed is
            // inside the window; below it the relay must never have re-sent the event.
            if (options.confirmed_at_fault && (!lsn || *lsn < *options.confirmed_at_fault)) {
                ++v.duplicates_outside_window;
                problems.add(
                    "duplicate outside window",
                    fmt::format(
                        "event {} delivered again at {} (first at {}) with outbox-lsn {} < confirmed {}",
                        e.id, where(r), where(*d.first), lsn_text.value_or("missing"),
                        options.confirmed_at_fault->to_string()));
            }
        }
        ++d.count;

        if (lsn && options.check_lsns) {
            const auto [t, inserted] = txn_lsn.emplace(e.txn_seq, std::make_pair(*lsn, &r));
            if (!inserted && t->second.first != *lsn) {
                ++v.lsn_inconsistencies;
                problems.add("lsn",
                             fmt::format("event {} at {} has outbox-lsn {}, but {} of the same transaction "
                                         "has {}",
                                         e.id, where(r), lsn->to_string(), where(*t->second.second),
                                         t->second.first.to_string()));
            }
        }
    }

    // No loss.
    for (std::size_t i = 0; i < committed.size(); ++i) {
        if (deliveries[i].count != 0) continue;
        ++v.lost;
        const auto m = misrouted_to.find(i);
        problems.add("lost",
                     fmt::format("event {} (aggregate {}/{}, commit_seq {}) not on {}{}", committed[i].id,
                                 committed[i].aggregate_type, committed[i].aggregate_id,
                                 committed[i].commit_seq, expected_topic(committed[i]),
                                 m == misrouted_to.end() ? "" : " (found on " + m->second + ")"));
    }

    // Per-key order of first deliveries, and LSNs along each key's commit order.
    std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> keys;  // (topic, key) -> events
    for (std::size_t i = 0; i < committed.size(); ++i) {
        if (deliveries[i].count == 0 || committed[i].expect_dead_letter) continue;
        keys[{expected_topic(committed[i]), committed[i].aggregate_id}].push_back(i);
    }
    for (auto& [key, events] : keys) {
        const auto first = [&](std::size_t i) { return deliveries[i].first; };
        const bool one_partition = std::all_of(events.begin(), events.end(), [&](std::size_t i) {
            return first(i)->partition == first(events.front())->partition;
        });
        if (!one_partition) {
            ++v.misrouted;
            problems.add("misrouted", fmt::format("key {} on topic {} is spread over several partitions",
                                                  key.second, key.first));
        }
        std::sort(events.begin(), events.end(), [&](std::size_t a, std::size_t b) {
            if (first(a)->partition != first(b)->partition) return first(a)->partition < first(b)->partition;
            return first(a)->offset < first(b)->offset;
        });
        for (std::size_t k = 1; k < events.size(); ++k) {
            const CommittedEvent& prev = committed[events[k - 1]];
            const CommittedEvent& cur = committed[events[k]];
            if (cur.commit_seq < prev.commit_seq) {
                const std::optional<Lsn>& late_lsn = deliveries[events[k]].lsn;
                if (options.timeouts_may_reorder && options.confirmed_at_fault && late_lsn &&
                    *late_lsn >= *options.confirmed_at_fault) {
                    ++v.reordered_by_timeout;
                    problems.add(
                        "reordered after a timeout",
                        fmt::format("key {}: event {} (commit_seq {}, outbox-lsn {}) first delivered at "
                                    "{}, after event {} (commit_seq {}) at {}",
                                    key.second, cur.id, cur.commit_seq, late_lsn->to_string(),
                                    where(*first(events[k])), prev.id, prev.commit_seq,
                                    where(*first(events[k - 1]))));
                    continue;
                }
                ++v.order_violations;
                problems.add("order",
                             fmt::format("key {}: event {} (commit_seq {}) first delivered at {}, after "
                                         "event {} (commit_seq {}) at {}",
                                         key.second, cur.id, cur.commit_seq, where(*first(events[k])),
                                         prev.id, prev.commit_seq, where(*first(events[k - 1]))));
            }
        }
        std::sort(events.begin(), events.end(), [&](std::size_t a, std::size_t b) {
            return committed[a].commit_seq < committed[b].commit_seq;
        });
        for (std::size_t k = 1; k < events.size(); ++k) {
            const CommittedEvent& prev = committed[events[k - 1]];
            const CommittedEvent& cur = committed[events[k]];
            const auto& pl = deliveries[events[k - 1]].lsn;
            const auto& cl = deliveries[events[k]].lsn;
            if (!options.check_lsns || !pl || !cl || prev.txn_seq == cur.txn_seq) continue;
            if (*cl <= *pl) {
                ++v.lsn_inconsistencies;
                problems.add(
                    "lsn",
                    fmt::format("key {}: event {} committed after event {} but has outbox-lsn {} <= {}",
                                key.second, cur.id, prev.id, cl->to_string(), pl->to_string()));
            }
        }
    }

    // Checkpoint: events by outbox-lsn with the running maximum of their produce times; a sample
    // that confirmed past events of which one was produced after the sample is a violation.
    if (!options.slot_samples.empty()) {
        struct Produced {
            Lsn lsn;
            std::int64_t ms;
            std::size_t event;
        };
        std::vector<Produced> produced;
        for (std::size_t i = 0; i < committed.size(); ++i) {
            const Delivery& d = deliveries[i];
            if (d.count == 0 || !d.lsn || d.earliest_ms == std::numeric_limits<std::int64_t>::max()) continue;
            produced.push_back({*d.lsn, d.earliest_ms, i});
        }
        std::sort(produced.begin(), produced.end(),
                  [](const Produced& a, const Produced& b) { return a.lsn < b.lsn; });
        std::vector<std::size_t> latest(produced.size());  // index of the latest produced so far
        for (std::size_t k = 0; k < produced.size(); ++k) {
            latest[k] = (k == 0 || produced[k].ms > produced[latest[k - 1]].ms) ? k : latest[k - 1];
        }
        for (const SlotSample& sample : options.slot_samples) {
            if (!sample.confirmed.is_valid()) continue;
            ++v.slot_samples;
            const auto below = std::lower_bound(produced.begin(), produced.end(), sample.confirmed,
                                                [](const Produced& p, const Lsn& l) { return p.lsn < l; });
            if (below == produced.begin()) continue;
            const Produced& worst = produced[latest[static_cast<std::size_t>(below - produced.begin()) - 1]];
            // Both clocks are the host's CLOCK_REALTIME in ms; 1 ms for rounding.
            if (worst.ms > sample.wall_ms + 1) {
                ++v.checkpoint_violations;
                problems.add("checkpoint",
                             fmt::format("the slot had confirmed {} at {} ms, but event {} (outbox-lsn {}) "
                                         "was produced only at {} ms",
                                         sample.confirmed.to_string(), sample.wall_ms,
                                         committed[worst.event].id, worst.lsn.to_string(), worst.ms));
            }
        }
    }

    v.problems = std::move(problems).finish();
    return v;
}

}  // namespace outbox::test

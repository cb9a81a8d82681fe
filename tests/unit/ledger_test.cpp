#include <doctest/doctest.h>

#include <vector>

#include "relay/ledger.h"

using outbox::Lsn;
using outbox::relay::Ledger;
using outbox::relay::LedgerError;

TEST_CASE("ledger: a transaction is confirmable only when committed and fully acknowledged") {
    Ledger ledger(Lsn(100));
    const auto t = ledger.begin();
    ledger.add_event();
    ledger.add_event();
    CHECK(ledger.confirmable() == Lsn(100));
    ledger.acknowledge(t);
    ledger.acknowledge(t);  // all acknowledged, but the commit has not been seen yet
    CHECK(ledger.confirmable() == Lsn(100));
    CHECK(ledger.in_transaction());
    ledger.commit(Lsn(200));
    CHECK(ledger.confirmable() == Lsn(200));
    CHECK(ledger.idle());
    CHECK(ledger.pending_events() == 0);
}

TEST_CASE("ledger: the confirmable LSN is the end of the longest fully acknowledged prefix") {
    Ledger ledger(Lsn(10));
    const auto a = ledger.begin();
    ledger.add_event();
    ledger.commit(Lsn(20));
    const auto b = ledger.begin();
    ledger.add_event();
    ledger.add_event();
    ledger.commit(Lsn(30));
    const auto c = ledger.begin();
    ledger.add_event();
    ledger.commit(Lsn(40));
    CHECK(ledger.pending_events() == 4);

    // Later transactions acknowledged first do not move the position past an earlier one.
    ledger.acknowledge(c);
    ledger.acknowledge(b);
    CHECK(ledger.confirmable() == Lsn(10));
    ledger.acknowledge(a);
    CHECK(ledger.confirmable() == Lsn(20));  // b still has one event pending
    ledger.acknowledge(b);
    CHECK(ledger.confirmable() == Lsn(40));  // b and the already acknowledged c complete together
    CHECK(ledger.idle());
}

TEST_CASE("ledger: transactions without events complete at once, behind earlier ones") {
    Ledger ledger(Lsn(1));
    ledger.begin();
    ledger.commit(Lsn(5));
    CHECK(ledger.confirmable() == Lsn(5));

    const auto a = ledger.begin();
    ledger.add_event();
    ledger.commit(Lsn(8));
    ledger.begin();
    ledger.commit(Lsn(9));  // empty, but behind a pending transaction
    CHECK(ledger.confirmable() == Lsn(5));
    ledger.acknowledge(a);
    CHECK(ledger.confirmable() == Lsn(9));
}

TEST_CASE("ledger: keepalives advance an idle ledger only") {
    Ledger ledger(Lsn(100));
    ledger.keepalive(Lsn(150));
    CHECK(ledger.confirmable() == Lsn(150));
    ledger.keepalive(Lsn(120));  // never backwards
    CHECK(ledger.confirmable() == Lsn(150));

    const auto t = ledger.begin();
    ledger.add_event();
    ledger.keepalive(Lsn(300));  // open transaction: not idle
    CHECK(ledger.confirmable() == Lsn(150));
    ledger.commit(Lsn(200));
    ledger.keepalive(Lsn(300));  // committed but unacknowledged: not idle
    CHECK(ledger.confirmable() == Lsn(150));
    ledger.acknowledge(t);
    CHECK(ledger.confirmable() == Lsn(200));
    ledger.keepalive(Lsn(300));
    CHECK(ledger.confirmable() == Lsn(300));
}

TEST_CASE("ledger: misuse is an error, never a silent advance") {
    Ledger ledger(Lsn(50));
    CHECK_THROWS_AS(ledger.add_event(), LedgerError);
    CHECK_THROWS_AS(ledger.commit(Lsn(60)), LedgerError);
    CHECK_THROWS_AS(ledger.acknowledge(outbox::relay::TxnTicket(1)), LedgerError);
    const auto t = ledger.begin();
    CHECK_THROWS_AS(ledger.begin(), LedgerError);
    CHECK_THROWS_AS(ledger.acknowledge(t), LedgerError);  // no event pending
    CHECK(ledger.confirmable() == Lsn(50));
}

TEST_CASE("ledger: a replayed transaction ending before the confirmed position never moves it back") {
    Ledger ledger(Lsn(50));
    const auto t = ledger.begin();
    ledger.add_event();
    ledger.commit(Lsn(40));
    CHECK(ledger.confirmable() == Lsn(50));
    ledger.acknowledge(t);
    CHECK(ledger.confirmable() == Lsn(50));
    CHECK(ledger.idle());
}

TEST_CASE("ledger: a long random sequence never confirms past an unacknowledged event") {
    // Deterministic pseudo-random interleaving of commits and acknowledgements.
    Ledger ledger(Lsn(1000));
    std::uint64_t rng = 42;
    auto next = [&rng] {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return rng >> 33;
    };
    struct Pending {
        outbox::relay::TxnTicket ticket;
        Lsn end;
        int left;
    };
    std::vector<Pending> txns;
    std::uint64_t lsn = 1000;
    Lsn last = ledger.confirmable();
    for (int round = 0; round < 5000; ++round) {
        if (next() % 2 == 0) {
            const auto t = ledger.begin();
            const int events = static_cast<int>(next() % 4);
            for (int i = 0; i < events; ++i) ledger.add_event();
            lsn += 1 + next() % 100;
            ledger.commit(Lsn(lsn));
            txns.push_back({t, Lsn(lsn), events});
        } else {
            std::vector<std::size_t> open;
            for (std::size_t i = 0; i < txns.size(); ++i)
                if (txns[i].left > 0) open.push_back(i);
            if (!open.empty()) {
                auto& p = txns[open[next() % open.size()]];
                ledger.acknowledge(p.ticket);
                --p.left;
            }
        }
        // Invariant: every transaction ending at or before the confirmable LSN is fully acknowledged,
        // and the first one with events left ends after it.
        for (const auto& p : txns) {
            if (p.end <= ledger.confirmable()) REQUIRE(p.left == 0);
        }
        REQUIRE(ledger.confirmable() >= last);
        last = ledger.confirmable();
    }
    // The expected position: the end of the longest fully acknowledged prefix.
    Lsn expected(1000);
    for (const auto& p : txns) {
        if (p.left > 0) break;
        expected = p.end;
    }
    CHECK(ledger.confirmable() == expected);
}

TEST_CASE("Ledger: commit times of the oldest pending and the last confirmed transaction") {
    outbox::relay::Ledger ledger(outbox::Lsn(0x100));
    CHECK_FALSE(ledger.oldest_pending_commit_time());
    CHECK(ledger.confirmed_commit_time() == 0);
    const auto first = ledger.begin(1'000);
    ledger.add_event();
    ledger.commit(outbox::Lsn(0x200));
    ledger.begin(2'000);
    ledger.commit(outbox::Lsn(0x300));  // no events: done at once, but behind the first
    CHECK(ledger.oldest_pending_commit_time() == std::optional<std::int64_t>(1'000));
    CHECK(ledger.confirmed_commit_time() == 0);
    ledger.acknowledge(first);
    CHECK_FALSE(ledger.oldest_pending_commit_time());
    CHECK(ledger.confirmed_commit_time() == 2'000);
    CHECK(ledger.confirmable() == outbox::Lsn(0x300));
}

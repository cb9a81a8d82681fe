// The relay's per-event path through the pure core (decode an Insert, look up its relation,
// route it into a reused Record) must not touch the heap once its buffers have grown: the
// producer's own copies are the only allocations an event may cost.
//
// This file replaces the global operator new/delete of the unit-test binary with versions that
// count, on the calling thread, while a scope asks them to. Everything else goes to malloc/free
// exactly as the default ones do.

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <variant>

#include "outbox/router.h"
#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"

namespace {

thread_local bool g_counting = false;
thread_local std::uint64_t g_allocations = 0;

// Counts the allocations made on this thread while it is alive.
class AllocationCounter {
public:
    AllocationCounter() noexcept {
        g_allocations = 0;
        g_counting = true;
    }
    ~AllocationCounter() { g_counting = false; }
    AllocationCounter(const AllocationCounter&) = delete;
    AllocationCounter& operator=(const AllocationCounter&) = delete;
    [[nodiscard]] std::uint64_t count() const noexcept { return g_allocations; }
};

void* counted_alloc(std::size_t size) {
    if (g_counting) ++g_allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) {
    return counted_alloc(size);
}
void* operator new[](std::size_t size) {
    return counted_alloc(size);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
// The nothrow forms too (std::stable_sort's buffer uses them): a partial replacement would pair a
// sanitizer's own nothrow new with the free() above.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    if (g_counting) ++g_allocations;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return operator new(size, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

namespace {

using namespace outbox;

// pgoutput messages on the wire (protocol 1), built field by field.
class Wire {
public:
    explicit Wire(char type) { bytes_.push_back(type); }
    Wire& u8(std::uint8_t v) {
        bytes_.push_back(static_cast<char>(v));
        return *this;
    }
    Wire& be(std::uint64_t v, int width) {
        for (int i = width - 1; i >= 0; --i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        return *this;
    }
    Wire& cstring(std::string_view s) {
        bytes_.append(s);
        bytes_.push_back('\0');
        return *this;
    }
    Wire& text_column(std::string_view v) {
        u8('t');
        be(v.size(), 4);
        bytes_.append(v);
        return *this;
    }
    [[nodiscard]] const std::string& bytes() const noexcept { return bytes_; }

private:
    std::string bytes_;
};

constexpr std::uint32_t kRelationId = 16384;

std::string relation_message() {
    Wire w('R');
    w.be(kRelationId, 4).cstring("public").cstring("outbox").u8('d').be(5, 2);
    const std::pair<const char*, std::uint32_t> columns[] = {
        {"id", 2950}, {"aggregatetype", 25}, {"aggregateid", 25}, {"type", 25}, {"payload", 3802}};
    for (const auto& [name, oid] : columns) w.u8(0).cstring(name).be(oid, 4).be(0xffffffff, 4);
    return w.bytes();
}

std::string begin_message(std::uint64_t lsn, std::uint32_t xid) {
    Wire w('B');
    w.be(lsn, 8).be(762'000'000'000'000 + xid, 8).be(xid, 4);
    return w.bytes();
}

std::string insert_message(int n) {
    Wire w('I');
    w.be(kRelationId, 4).u8('N').be(5, 2);
    const std::string id = "a0eebc99-9c0b-4ef8-bb6d-" + std::to_string(100000000000 + n);
    const std::string aggregate = std::to_string(n % 1000);
    w.text_column(id).text_column("order").text_column(aggregate).text_column("OrderCreated");
    w.text_column(
        R"({"note": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "amount": 42.5, "orderId": )" +
        std::to_string(n) + "}");
    return w.bytes();
}

std::string commit_message(std::uint64_t lsn) {
    Wire w('C');
    w.u8(0).be(lsn, 8).be(lsn + 0x30, 8).be(762'000'000'000'000, 8);
    return w.bytes();
}

OutboxOptions outbox_config() {
    OutboxOptions c;
    c.tables = {TableName{"public", "outbox"}};
    c.headers = {"type"};
    return c;
}

// A stream of transactions of `rows_per_txn` outbox inserts, as the relay would receive it.
struct Stream {
    std::vector<std::string> frames;
    Stream(int transactions, int rows_per_txn, std::uint64_t first_lsn) {
        std::uint64_t lsn = first_lsn;
        for (int t = 0; t < transactions; ++t) {
            frames.push_back(begin_message(lsn, static_cast<std::uint32_t>(1000 + t)));
            for (int r = 0; r < rows_per_txn; ++r) frames.push_back(insert_message(t * rows_per_txn + r));
            frames.push_back(commit_message(lsn));
            lsn += 0x1000;
        }
    }
};

// What the relay's loop does with each frame, minus the producer.
struct HotPath {
    pgoutput::Decoder decoder;
    pgoutput::RelationCache relations;
    OutboxRouter router{outbox_config()};
    Record record;
    Rejection rejection;
    CommitInfo commit;
    std::uint64_t routed = 0;

    void handle(std::string_view frame) {
        const pgoutput::Message& message = decoder.decode(frame);
        if (const auto* insert = std::get_if<pgoutput::Insert>(&message)) {
            const pgoutput::RelationInfo& relation = relations.get(insert->relation);
            relation.check_tuple(insert->new_tuple);
            REQUIRE(router.route(relation, insert->new_tuple, commit, record, rejection) ==
                    RouteOutcome::Routed);
            ++routed;
        } else if (const auto* begin = std::get_if<pgoutput::Begin>(&message)) {
            commit = CommitInfo{begin->final_lsn, begin->xid, begin->commit_time.unix_micros()};
        } else if (const auto* relation = std::get_if<pgoutput::Relation>(&message)) {
            relations.update(*relation);
        }
    }
};

}  // namespace

TEST_CASE("hot path: the allocation counter counts an allocation made on purpose") {
    // Otherwise the zero checks below could pass because nothing is counted at all.
    std::uint64_t counted = 0;
    {
        AllocationCounter counter;
        auto p = std::make_unique<std::string>(200, 'x');  // the object and its buffer
        counted = counter.count();
        CHECK(p->size() == 200);
    }
    CHECK(counted == 2);
}

TEST_CASE("hot path: decoding and routing inserts allocates nothing per event in steady state") {
    for (const int rows_per_txn : {1, 100}) {
        CAPTURE(rows_per_txn);
        HotPath path;
        path.handle(relation_message());
        // Warm-up: buffers grow to their working size (tuple values, topic, headers, texts).
        // Wide LSNs: their 17-character "X/X" text does not fit a short-string buffer.
        const Stream warm_up(3, rows_per_txn, 0xFFFF'FFF0'F000'0000ull);
        for (const auto& frame : warm_up.frames) path.handle(frame);

        const Stream stream(2000 / rows_per_txn, rows_per_txn, 0xFFFF'FFF1'F000'0000ull);
        std::uint64_t allocations = 0;
        {
            AllocationCounter counter;
            for (const auto& frame : stream.frames) path.handle(frame);
            allocations = counter.count();
        }
        CHECK(path.routed == 2000 + 3 * static_cast<std::uint64_t>(rows_per_txn));
        CHECK(path.record.topic == "outbox.event.order");
        CHECK(allocations == 0);
    }
}

TEST_CASE("hot path: the one-shot decode() allocates for a row, so the counter sees the decoder") {
    // The counterpart of the zero above: the same Insert through decode() without reuse costs
    // its tuple vector, and the counter must notice it.
    const std::string frame = insert_message(7);
    std::uint64_t allocations = 0;
    {
        AllocationCounter counter;
        const pgoutput::Message message = pgoutput::decode(frame);
        allocations = counter.count();
        CHECK(std::get<pgoutput::Insert>(message).new_tuple.columns.size() == 5);
    }
    CHECK(allocations >= 1);
}

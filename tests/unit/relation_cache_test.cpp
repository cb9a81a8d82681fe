#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/error.h"
#include "common/lsn.h"
#include "pgoutput/decoder.h"
#include "pgoutput/reader.h"
#include "pgoutput/relation_cache.h"

using outbox::RelationId;
using outbox::pgoutput::ColumnInfo;
using outbox::pgoutput::ColumnKind;
using outbox::pgoutput::DecodeError;
using outbox::pgoutput::Relation;
using outbox::pgoutput::RelationCache;
using outbox::pgoutput::RelationColumn;
using outbox::pgoutput::RelationInfo;
using outbox::pgoutput::ReplicaIdentity;
using outbox::pgoutput::Tuple;

namespace {

Relation outbox_relation(std::string_view table_name) {
    Relation relation;
    relation.id = RelationId(16384);
    relation.namespace_name = "public";
    relation.name = table_name;
    relation.replica_identity = ReplicaIdentity::Default;
    relation.columns = {{1, "id", 2950, -1}, {0, "payload", 3802, -1}};
    return relation;
}

Tuple tuple_of(std::size_t columns) {
    Tuple tuple;
    tuple.columns.assign(columns, {ColumnKind::Text, "x"});
    return tuple;
}

}  // namespace

TEST_CASE("RelationCache: a row for a relation never announced is a Protocol error") {
    RelationCache cache;
    CHECK_FALSE(cache.contains(RelationId(42)));
    CHECK(cache.find(RelationId(42)) == nullptr);
    try {
        (void)cache.get(RelationId(42));
        FAIL("get did not throw");
    } catch (const DecodeError& error) {
        CHECK(error.kind() == outbox::ErrorKind::Protocol);
        CHECK(std::string(error.what()) == "row for unknown relation id 42");
    }
}

TEST_CASE("RelationCache: stores an owned copy that outlives the frame it was decoded from") {
    RelationCache cache;
    {
        // The frame lives on the heap and is freed before the cache is read, so a cache that
        // kept views into it would read freed memory (reported under ASan and valgrind).
        const std::string wire = std::string("R\x00\x00\x40\x00", 5) + "public" + '\0' + "outbox" + '\0' +
                                 'f' + std::string("\x00\x02", 2) + '\x01' + "id" + '\0' +
                                 std::string("\x00\x00\x0b\x86\xff\xff\xff\xff", 8) + '\x00' + "payload" +
                                 '\0' + std::string("\x00\x00\x0e\xda\xff\xff\xff\xff", 8);
        auto frame = std::make_unique<char[]>(wire.size());
        wire.copy(frame.get(), wire.size());
        const auto message = outbox::pgoutput::decode(std::string_view(frame.get(), wire.size()));
        cache.update(std::get<Relation>(message));
        std::fill_n(frame.get(), wire.size(), '?');
    }
    const RelationInfo& info = cache.get(RelationId(16384));
    CHECK(info.id == RelationId(16384));
    CHECK(info.namespace_name == "public");
    CHECK(info.name == "outbox");
    CHECK(info.qualified_name() == "public.outbox");
    CHECK(info.replica_identity == ReplicaIdentity::Full);
    REQUIRE(info.columns.size() == 2);
    CHECK(info.columns[0] == ColumnInfo{"id", 2950, -1, true});
    CHECK(info.columns[1] == ColumnInfo{"payload", 3802, -1, false});
}

TEST_CASE("RelationCache: a new Relation message for the same id replaces the schema") {
    RelationCache cache;
    const RelationInfo& first = cache.update(outbox_relation("outbox"));
    CHECK(first.columns.size() == 2);

    Relation altered = outbox_relation("outbox");
    altered.columns.push_back(RelationColumn{0, "tenant", 25, -1});
    altered.replica_identity = ReplicaIdentity::Full;
    cache.update(altered);

    CHECK(cache.size() == 1);
    const RelationInfo& now = cache.get(RelationId(16384));
    CHECK(now.replica_identity == ReplicaIdentity::Full);
    REQUIRE(now.columns.size() == 3);
    CHECK(now.columns[2] == ColumnInfo{"tenant", 25, -1, false});

    // A rename is a schema change too.
    cache.update(outbox_relation("outbox_v2"));
    CHECK(cache.get(RelationId(16384)).name == "outbox_v2");
    CHECK(cache.get(RelationId(16384)).columns.size() == 2);
}

TEST_CASE("RelationCache: relations are kept apart by id, and clear forgets them all") {
    RelationCache cache;
    Relation other = outbox_relation("account");
    other.id = RelationId(16391);
    cache.update(outbox_relation("outbox"));
    cache.update(other);
    CHECK(cache.size() == 2);
    CHECK(cache.get(RelationId(16384)).name == "outbox");
    CHECK(cache.get(RelationId(16391)).name == "account");
    CHECK(cache.contains(RelationId(16391)));
    cache.clear();
    CHECK(cache.size() == 0);
    CHECK_THROWS_AS((void)cache.get(RelationId(16384)), DecodeError);
}

TEST_CASE("RelationInfo: columns by name and rows checked against the announced shape") {
    const RelationInfo info = RelationInfo::from(outbox_relation("outbox"));
    CHECK(info.column_index("id") == std::optional<std::size_t>(0));
    CHECK(info.column_index("payload") == std::optional<std::size_t>(1));
    CHECK_FALSE(info.column_index("missing").has_value());
    CHECK_FALSE(info.column_index("ID").has_value());  // PostgreSQL names are case-sensitive here

    CHECK_NOTHROW(info.check_tuple(tuple_of(2)));
    try {
        info.check_tuple(tuple_of(3));
        FAIL("check_tuple did not throw");
    } catch (const DecodeError& error) {
        CHECK(error.kind() == outbox::ErrorKind::Protocol);
        CHECK(std::string(error.what()) ==
              "row for relation public.outbox (id 16384) has 3 columns, its Relation message announced 2");
    }
    CHECK_THROWS_AS(info.check_tuple(tuple_of(0)), DecodeError);
}

#include <doctest/doctest.h>

#include "common/lsn.h"

using outbox::Lsn;

TEST_CASE("Lsn parses and formats PostgreSQL's X/X form") {
    const auto lsn = Lsn::parse("16/B374D848");
    REQUIRE(lsn.has_value());
    CHECK(lsn->value() == 0x16B374D848ull);
    CHECK(lsn->to_string() == "16/B374D848");
    CHECK(Lsn::parse("0/0")->value() == 0);
    CHECK(Lsn::parse("FFFFFFFF/FFFFFFFF")->value() == ~0ull);
    CHECK(Lsn(0x100000000ull).to_string() == "1/0");
    CHECK(Lsn::parse("0/1a2b")->value() == 0x1a2bu);
}

TEST_CASE("Lsn rejects malformed text") {
    for (const char* bad : {"", "/", "0/", "/0", "1", "1/2/3", "G/0", "0/-1", " 0/1", "0/1 ", "123456789/0",
                            "0/123456789", "+1/0"}) {
        CAPTURE(bad);
        CHECK_FALSE(Lsn::parse(bad).has_value());
    }
}

TEST_CASE("Lsn orders by WAL position") {
    CHECK(Lsn(1) < Lsn(2));
    CHECK(Lsn(0x100000000ull) > Lsn(0xFFFFFFFFull));
    CHECK(Lsn(5) == Lsn(5));
    CHECK_FALSE(Lsn().is_valid());
    CHECK(outbox::bytes_between(Lsn(10), Lsn(25)) == 15);
    CHECK(outbox::bytes_between(Lsn(25), Lsn(10)) == 0);
}

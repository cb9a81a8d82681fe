#include <doctest/doctest.h>

#include <string>

#include "common/json_object.h"

using outbox::JsonMember;
using outbox::parse_json_object;

TEST_CASE("json object: members in order, strings unescaped, other values as their JSON text") {
    std::string error;
    const auto m = parse_json_object(
        R"( {"a": "x\"y\\z\/\n\u00e9\ud83d\ude00", "b": 12.5e-3, "c": {"d": [1, true, null]}, "e": null, "f": false} )",
        error);
    REQUIRE_MESSAGE(m, error);
    REQUIRE(m->size() == 5);
    CHECK((*m)[0].name == "a");
    CHECK((*m)[0].kind == JsonMember::Kind::String);
    CHECK((*m)[0].value == "x\"y\\z/\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK((*m)[1].kind == JsonMember::Kind::Raw);
    CHECK((*m)[1].value == "12.5e-3");
    CHECK((*m)[2].value == R"({"d": [1, true, null]})");
    CHECK((*m)[3].kind == JsonMember::Kind::Null);
    CHECK((*m)[4].value == "false");
    const auto dup = parse_json_object(R"({"a": 1, "a": "two"})", error);
    REQUIRE(dup);
    REQUIRE(dup->size() == 1);
    CHECK((*dup)[0].value == "two");
    CHECK(parse_json_object("{}", error)->empty());
}

TEST_CASE("json object: malformed input is refused with the byte offset") {
    std::string error;
    for (const char* bad :
         {"", "[]", "\"s\"", "{", "{\"a\"}", "{\"a\": }", "{\"a\": 1,}", "{a: 1}", "{\"a\": 01}",
          "{\"a\": 1} x", "{\"a\": \"\\x\"}", "{\"a\": \"\\ud800\"}", "{\"a\": tru}", "{\"a\": \"ctl\x01\"}",
          "{\"a\": [1 2]}", "{\"a\": -}", "{\"a\": 1.}"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_json_object(bad, error));
        CHECK(error.find(" at byte ") != std::string::npos);
    }
    std::string deep = "{\"a\": ";
    for (int i = 0; i < 100; ++i) deep += "[";
    for (int i = 0; i < 100; ++i) deep += "]";
    deep += "}";
    CHECK_FALSE(parse_json_object(deep, error));  // nesting beyond 64
}

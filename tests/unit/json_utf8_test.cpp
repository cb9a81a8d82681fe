#include <doctest/doctest.h>

#include <string>

#include "common/json.h"

using outbox::append_json_string;
using outbox::is_valid_utf8;

TEST_CASE("is_valid_utf8 accepts ASCII and well-formed multi-byte sequences at any offset") {
    CHECK(is_valid_utf8(""));
    CHECK(is_valid_utf8("order-42"));
    CHECK(is_valid_utf8("{\"n\": 1, \"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxx\"}"));
    // 2, 3 and 4-byte sequences, placed before, inside and after the 8-byte ASCII fast path.
    for (const std::string seq : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"}) {
        for (std::size_t prefix = 0; prefix <= 17; ++prefix) {
            const std::string s = std::string(prefix, 'a') + seq + std::string(9, 'b');
            CAPTURE(prefix);
            CHECK(is_valid_utf8(s));
        }
    }
}

TEST_CASE("is_valid_utf8 rejects bytes that are not UTF-8, wherever they sit") {
    // Latin-1 e-acute, a lone continuation byte, truncated sequences, an overlong '/',
    // a UTF-16 surrogate (U+D800), a code point above U+10FFFF, 0xFF.
    for (const std::string bad : {"\xE9", "\x80", "\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xC0\xAF",
                                  "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF"}) {
        for (std::size_t prefix = 0; prefix <= 17; ++prefix) {
            const std::string s = std::string(prefix, 'a') + bad + std::string(prefix % 3, 'z');
            CAPTURE(prefix);
            CHECK_FALSE(is_valid_utf8(s));
        }
    }
}

TEST_CASE("append_json_string replaces invalid bytes with U+FFFD and escapes control characters") {
    std::string out;
    append_json_string(out, std::string("a\xE9z\n\"", 5));
    CHECK(out == "\"a\xEF\xBF\xBDz\\n\\\"\"");
    CHECK(is_valid_utf8(out));
}

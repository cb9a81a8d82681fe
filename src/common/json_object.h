#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outbox {

// One member of a JSON object, as a row's column would carry it.
struct JsonMember {
    enum class Kind {
        String,  // `value` is the unescaped string (UTF-8)
        Raw,     // a number, true, false, an object or an array: `value` is its JSON text
        Null,
    };
    std::string name;  // unescaped
    Kind kind = Kind::Null;
    std::string value;
};

// Parses `text` as exactly one JSON object (RFC 8259; whitespace around it allowed) and returns
// its members in order; a member named twice keeps its last value, as most JSON readers do. On
// malformed input returns nullopt and says why (with the byte offset) in `error`. Nesting deeper
// than 64 levels is refused: the input may come from anyone who can write to the database.
[[nodiscard]] std::optional<std::vector<JsonMember>> parse_json_object(std::string_view text,
                                                                       std::string& error);

}  // namespace outbox

#pragma once

// Names of PostgreSQL objects as the configuration writes them: outbox tables (SQL identifier
// rules), the replication slot and the publication.

#include <cstddef>
#include <string>
#include <string_view>

#include "outbox/options.h"

namespace outbox::config {

constexpr std::size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

// "schema.table" or "table" (schema public). Unquoted identifiers fold to lower case; quoted
// ones ("My Table", "" for ") are taken verbatim. Returns an error message, or "" after
// setting `table`.
std::string parse_table_name(std::string_view text, TableName& table);

// postgres.slot: PostgreSQL's rule for slot names.
struct SlotName {
    using Value = std::string;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value) { return value; }
};

// postgres.publication: an unquoted identifier the relay can create without quoting.
struct PublicationName {
    using Value = std::string;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value) { return value; }
};

}  // namespace outbox::config

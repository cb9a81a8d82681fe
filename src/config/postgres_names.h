#pragma once

// Names of PostgreSQL objects as the configuration writes them: outbox tables (SQL identifier
// rules).

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

}  // namespace outbox::config

#pragma once

// ${ENV} references in configuration values (docs/configuration.md, "Environment variables").
// They are replaced before a value is interpreted, so they work for numbers and durations too.

#include <string>
#include <string_view>

namespace outbox::config {

struct Expanded {
    std::string value;
    std::string error;  // empty on success
};

// ${NAME} (must be set; may be empty), ${NAME:-default} (default when unset or empty; the
// default is taken literally), $$ for a literal $. Any other $ is kept as it is.
Expanded expand_env(std::string_view in);

}  // namespace outbox::config

#pragma once

// postgres.state_file: where the relay remembers the slots it streamed from
// (docs/operations.md, "The state file").

#include <optional>
#include <string>
#include <string_view>

namespace outbox::config {

struct PostgresConfig;

// postgres.state_file. A relative path is resolved against $STATE_DIRECTORY when that variable
// is set (systemd's StateDirectory=); an empty value means "not set".
struct StateFilePath {
    using Value = std::optional<std::string>;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value);
};

// The state file the relay uses: postgres.state_file when set, else
// $STATE_DIRECTORY/<slot>.state when that variable is set, else nullopt (no state: a lost slot
// cannot be told from a new one).
std::optional<std::string> state_file_path(const PostgresConfig& postgres);

}  // namespace outbox::config

#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace outbox {

// What the caller should do about a failure; the process exit code follows it.
enum class ErrorKind {
    Transient,  // reconnect and retry (network, server restart, broker down)
    Protocol,   // the peer sent something we cannot accept
    Config,     // the operator must fix the configuration or the database setup
    Fatal,      // cannot continue safely
};

std::string_view to_string(ErrorKind kind) noexcept;

// Exit codes by error kind (sysexits-style so systemd's Restart= policy can tell them apart).
int exit_code(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }

private:
    ErrorKind kind_;
};

}  // namespace outbox

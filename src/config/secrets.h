#pragma once

// Keeping secrets out of log lines, and reading the PostgreSQL password from its file
// (docs/configuration.md, "Secrets").

#include <optional>
#include <string>
#include <string_view>

namespace outbox::config {

struct PostgresConfig;

// What a secret is shown as.
constexpr std::string_view kMasked = "***";

// Reads postgres.password_file: nullopt when it is not set, else its contents without one
// trailing newline. Throws Error(Config) naming the file (never the contents) when it cannot
// be read or is empty.
std::optional<std::string> read_password(const PostgresConfig& postgres);

// Replaces password values in a libpq conninfo string (password=secret, password='se cret')
// or URI (postgresql://user:secret@host/db, ?password=secret) with ***. Use it for every
// log line that shows a DSN.
std::string mask_dsn(std::string_view dsn);

// True for librdkafka property names that carry secrets (sasl.password, ssl.key.password,
// sasl.oauthbearer.client.secret, ...); their values must not be logged. The list is the
// producer's: kafka/property_policy.h.
bool is_secret_property(std::string_view key);

// postgres.password_file. A relative path is resolved against $CREDENTIALS_DIRECTORY when that
// variable is set (systemd's LoadCredential=); an empty value means "not set", so that
// `password_file: ${PGPASS_FILE:-}` is optional.
struct PasswordFile {
    using Value = std::optional<std::string>;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value) { return value ? *value : "(not set)"; }
};

}  // namespace outbox::config

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

}  // namespace outbox::config

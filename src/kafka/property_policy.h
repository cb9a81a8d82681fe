#pragma once

// Which librdkafka producer properties the relay owns. The relay confirms a WAL position to
// PostgreSQL only after Kafka acknowledged every event up to it; a user property that weakens
// the producer (fewer acks, no idempotence, no retries...) would break that promise, so the
// configuration loader refuses it (docs/configuration.md, "Properties the relay owns").
// Also which properties hold secrets. Plain C++: no librdkafka, so the loader can check
// kafka.properties long before a producer exists.

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace outbox::kafka {

// A property the relay owns, as the docs' table lists it.
struct OwnedProperty {
    std::string_view name;
    std::string_view alias;  // librdkafka's other name for it; "" when none
    // Whether the user may set this value (trimmed, lower-cased); nullptr: no value at all.
    bool (*allows)(std::string_view value);
    // Why it is refused; "{}" stands for the value as the caller shows values.
    std::string_view reason;
};

std::span<const OwnedProperty> owned_properties();

// Why the relay refuses `name: value` among the producer properties, or nullopt when it
// accepts it. `shown_value` is `value` as the caller shows values in its messages (quoted).
std::optional<std::string> refusal(std::string_view name, std::string_view value,
                                   std::string_view shown_value);

// True for property names that carry secrets (sasl.password, ssl.key.password,
// sasl.oauthbearer.client.secret, sasl.jaas.config, ...): their values must not be logged.
bool is_secret_property(std::string_view name);

}  // namespace outbox::kafka

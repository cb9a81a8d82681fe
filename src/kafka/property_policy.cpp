#include "kafka/property_policy.h"

#include <array>
#include <charconv>
#include <cstdint>

namespace outbox::kafka {

namespace {

using namespace std::string_view_literals;

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string_view trim(std::string_view s) {
    constexpr std::string_view kSpace = " \t\n\r\f\v";
    const std::size_t first = s.find_first_not_of(kSpace);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

// At most 5 requests in flight keep idempotent batches in order. A value that is not a plain
// number is left for librdkafka to reject.
bool at_most_five(std::string_view value) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    const bool number = ec == std::errc{} && end == value.data() + value.size();
    return !number || n <= 5;
}

constexpr std::array<OwnedProperty, 8> kOwned{{
    {"bootstrap.servers", "metadata.broker.list", nullptr,
     "conflicts with kafka.bootstrap_servers: list the brokers there only"},
    {"enable.idempotence", "", [](std::string_view v) { return v == "true"; },
     "the relay requires enable.idempotence=true (got {}): at-least-once delivery with per-aggregate "
     "order needs the idempotent producer (without it a retried batch can land twice or behind a later "
     "one); remove the key, the relay sets it"},
    {"acks", "request.required.acks", [](std::string_view v) { return v == "all" || v == "-1"; },
     "the relay requires acks=all (-1), got {}: an event's WAL position is confirmed to PostgreSQL as "
     "soon as Kafka acknowledges it, so with fewer acks a broker failure can lose events that "
     "PostgreSQL has already released; remove the key, the relay sets it"},
    {"max.in.flight.requests.per.connection", "max.in.flight", at_most_five,
     "must be at most 5 with the idempotent producer (got {}): more requests in flight would break "
     "per-aggregate order"},
    {"retries", "message.send.max.retries", [](std::string_view v) { return v != "0"; },
     "must not be 0: the idempotent producer the relay relies on needs retries to deliver "
     "at-least-once"},
    {"delivery.report.only.error", "", [](std::string_view v) { return v == "false"; },
     "the relay needs a delivery report for every event to know which WAL position it may confirm; "
     "remove the key"},
    {"transactional.id", "", nullptr,
     "is owned by the relay (reserved for its exactly-once mode); remove the key"},
    {"enable.auto.commit", "", nullptr,
     "is a consumer property: the relay is a producer and tracks its progress in the replication slot "
     "(confirmed LSN), not in consumer offsets; remove the key"},
}};

}  // namespace

std::span<const OwnedProperty> owned_properties() {
    return kOwned;
}

std::optional<std::string> refusal(std::string_view name, std::string_view value,
                                   std::string_view shown_value) {
    for (const OwnedProperty& owned : kOwned) {
        if (name != owned.name && (owned.alias.empty() || name != owned.alias)) continue;
        if (owned.allows != nullptr && owned.allows(ascii_lower(trim(value)))) return std::nullopt;
        std::string reason(owned.reason);
        if (const std::size_t at = reason.find("{}"); at != std::string::npos) {
            reason.replace(at, 2, shown_value);
        }
        return reason;
    }
    return std::nullopt;
}

bool is_secret_property(std::string_view name) {
    const std::string lowered = ascii_lower(name);
    for (const std::string_view marker : {"password"sv, "secret"sv, "sasl.jaas.config"sv,
                                          "sasl.oauthbearer.config"sv, "ssl.key.pem"sv, "token"sv}) {
        if (lowered.find(marker) != std::string::npos) return true;
    }
    return false;
}

}  // namespace outbox::kafka

#include "outbox/options.h"

#include <algorithm>
#include <iterator>

namespace outbox {

std::string TableName::qualified() const {
    return schema + "." + name;
}

std::string TableName::quoted() const {
    const auto q = [](const std::string& ident) {
        std::string out = "\"";
        for (const char c : ident) {
            if (c == '"') out += '"';
            out += c;
        }
        out += '"';
        return out;
    };
    return q(schema) + "." + q(name);
}

bool OutboxOptions::topic_is_fixed() const {
    return std::all_of(topic_segments.begin(), topic_segments.end(),
                       [](const TopicSegment& s) { return s.kind == TopicSegment::Kind::Literal; });
}

bool is_relay_header(std::string_view name) noexcept {
    return std::find(std::begin(kRelayHeaders), std::end(kRelayHeaders), name) != std::end(kRelayHeaders);
}

std::string relay_header_list() {
    std::string out;
    for (const std::string_view h : kRelayHeaders) {
        if (!out.empty()) out += ", ";
        out += h;
    }
    return out;
}

}  // namespace outbox

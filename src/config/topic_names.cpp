#include "config/topic_names.h"

#include <fmt/format.h>

#include "config/enum_names.h"
#include "config/text.h"

namespace outbox::config {

// The placeholders of a topic template, by the column role they stand for.
template <>
struct EnumNames<TopicSegment::Kind> {
    static constexpr std::array<EnumName<TopicSegment::Kind>, 4> table{{
        {TopicSegment::Kind::AggregateType, "aggregate_type"},
        {TopicSegment::Kind::AggregateId, "aggregate_id"},
        {TopicSegment::Kind::Id, "id"},
        {TopicSegment::Kind::Table, "table"},
    }};
};

namespace {

bool is_topic_char(char c) {
    return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
}

}  // namespace

std::string check_topic_name(std::string_view name) {
    if (name.empty()) return "must not be empty";
    if (name.size() > kMaxTopicLength) {
        return fmt::format("{} is not a legal Kafka topic name (at most {} characters, got {})", quote(name),
                           kMaxTopicLength, name.size());
    }
    if (name == "." || name == "..") {
        return fmt::format("{} is not a legal Kafka topic name", quote(name));
    }
    for (const char c : name) {
        if (!is_topic_char(c)) {
            return fmt::format(
                "{} is not a legal Kafka topic name: {} is not allowed (use a-z, A-Z, 0-9, '.', "
                "'_' and '-')",
                quote(name), quote(std::string_view(&c, 1)));
        }
    }
    return {};
}

std::string parse_topic_template(std::string_view text, std::vector<TopicSegment>& segments) {
    segments.clear();
    if (text.empty()) return "must not be empty";
    if (text.find_first_of("{}") == std::string_view::npos) {  // a fixed topic name
        segments.push_back({TopicSegment::Kind::Literal, std::string(text)});
        return check_topic_name(text);
    }
    std::string literal;
    std::size_t literal_chars = 0;
    bool has_placeholder = false;
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '{') {
            const std::size_t close = text.find_first_of("{}", i + 1);
            if (close == std::string_view::npos || text[close] != '}') {
                return fmt::format("unterminated placeholder in topic template {}", quote(text));
            }
            const std::string_view name = text.substr(i + 1, close - i - 1);
            const auto kind = enum_value<TopicSegment::Kind>(name);
            if (!kind) {
                return fmt::format("unknown placeholder {{{}}} in topic template {} (known: {})", name,
                                   quote(text), enum_name_list<TopicSegment::Kind>("{", "}"));
            }
            if (!literal.empty()) segments.push_back({TopicSegment::Kind::Literal, std::move(literal)});
            literal.clear();
            segments.push_back({*kind, {}});
            has_placeholder = true;
            i = close + 1;
            continue;
        }
        if (c == '}') return fmt::format("unmatched '}}' in topic template {}", quote(text));
        if (!is_topic_char(c)) {
            return fmt::format(
                "{} is not allowed in a Kafka topic name (topic template {}; use a-z, A-Z, 0-9, "
                "'.', '_', '-' and placeholders)",
                quote(std::string_view(&c, 1)), quote(text));
        }
        literal += c;
        ++literal_chars;
        ++i;
    }
    if (!literal.empty()) segments.push_back({TopicSegment::Kind::Literal, std::move(literal)});
    if (!has_placeholder) return check_topic_name(text);
    if (literal_chars > kMaxTopicLength) {
        return fmt::format("topic template {} is longer than a Kafka topic name may be ({} characters)",
                           quote(text), kMaxTopicLength);
    }
    return {};
}

std::string TopicTemplate::parse(std::string text, Value& out) {
    std::vector<TopicSegment> segments;
    if (auto err = parse_topic_template(text, segments); !err.empty()) return err;
    out.topic = std::move(text);
    out.topic_segments = std::move(segments);
    return {};
}

std::string TopicTemplate::show(const Value& value) {
    return value.topic + (value.topic_is_fixed() ? " (fixed)" : "");
}

std::string DeadLetterTopic::parse(std::string text, Value& out) {
    if (text.empty()) {
        if (out.on_invalid == OnInvalid::DeadLetter) {
            return "must not be empty when outbox.on_invalid is dead_letter";
        }
        out.dead_letter_topic.clear();
        return {};
    }
    if (auto err = check_topic_name(text); !err.empty()) return err;
    out.dead_letter_topic = std::move(text);
    return {};
}

}  // namespace outbox::config

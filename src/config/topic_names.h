#pragma once

// Kafka topic names and the topic template of outbox.topic ("outbox.event.{aggregate_type}").

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "outbox/options.h"

namespace outbox::config {

constexpr std::size_t kMaxTopicLength = 249;

// Returns why `name` is not a legal Kafka topic name, or "".
std::string check_topic_name(std::string_view name);

// Splits a template into literals and placeholders ({aggregate_type}, {aggregate_id}, {id},
// {table}). Returns an error message, or "" after setting `segments`.
std::string parse_topic_template(std::string_view text, std::vector<TopicSegment>& segments);

// outbox.topic: sets the template and its parsed form together, so they never disagree.
struct TopicTemplate {
    using Value = OutboxOptions;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value);
};

// outbox.dead_letter_topic: may be empty only when outbox.on_invalid is stop, so the key table
// reads it after on_invalid.
struct DeadLetterTopic {
    using Value = OutboxOptions;
    static std::string_view expected() { return "a string"; }
    static std::string parse(std::string text, Value& out);
    static std::string show(const Value& value) { return value.dead_letter_topic; }
};

}  // namespace outbox::config

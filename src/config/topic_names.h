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

}  // namespace outbox::config

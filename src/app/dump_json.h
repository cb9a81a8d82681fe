#pragma once

#include <string>

#include "pgoutput/messages.h"
#include "pgoutput/relation_cache.h"
#include "pgoutput/stream_frame.h"

namespace outbox::app {

// One JSON object (no newline) describing a decoded pgoutput message, for outbox-relay-dump.
// Row values are named by the columns of `relations` (which must already hold the message's
// relation); text values are strings, NULL is null, an unchanged TOAST value is
// {"unchanged_toast":true}, binary values and text that is not UTF-8 are {"hex":"..."}.
std::string message_to_json(const pgoutput::Message& message, const pgoutput::RelationCache& relations,
                            const pgoutput::XLogData& frame);

std::string keepalive_to_json(const pgoutput::PrimaryKeepalive& keepalive);

}  // namespace outbox::app

#pragma once

// What each component takes from the configuration (config::Config -> its own option struct).

#include "config/config.h"
#include "kafka/publisher.h"
#include "pg/poll_source.h"
#include "pg/replication_stream.h"
#include "relay/pipeline.h"

namespace outbox::app {

// Reads postgres.password_file.
pg::ReplicationOptions replication_options(const config::Config& c);
kafka::PublisherOptions publisher_options(const config::Config& c);
relay::PipelineOptions pipeline_options(const config::Config& c);
// source: poll. The start-up checks are replication_options()' require_tables/require_columns
// (with poll.order_by and poll.published_column among the required columns) plus pg/poll_source.h.
pg::PollOptions poll_options(const config::Config& c);

}  // namespace outbox::app

#pragma once

// The frames of PostgreSQL's streaming replication protocol inside the CopyBoth stream
// (docs: "Streaming Replication Protocol", START_REPLICATION). These carry pgoutput messages
// but are the same for every output plugin. Pure: bytes in, values out.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "common/lsn.h"

namespace outbox::pgoutput {

// 'w': one message of the output plugin.
struct XLogData {
    Lsn wal_start;               // where this message's WAL starts (0 for some messages)
    Lsn wal_end;                 // the server's current end of WAL
    std::int64_t send_time = 0;  // µs since 2000-01-01
    std::string_view payload;    // the pgoutput message; points into the frame buffer
};

// 'k': the server's heartbeat.
struct PrimaryKeepalive {
    Lsn wal_end;  // the server's current end of WAL
    std::int64_t send_time = 0;
    bool reply_requested = false;  // answer at once or wal_sender_timeout ends the connection
};

using StreamFrame = std::variant<XLogData, PrimaryKeepalive>;

// Parses one CopyData payload from the server. Throws DecodeError for anything else.
StreamFrame parse_stream_frame(std::string_view bytes);

// 'r': Standby Status Update, 34 bytes.
struct StandbyStatus {
    Lsn written;
    Lsn flushed;  // what the slot may advance its confirmed_flush_lsn to
    Lsn applied;
    std::int64_t send_time = 0;  // µs since 2000-01-01
    bool reply_requested = false;
};

std::string encode_standby_status(const StandbyStatus& status);

// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
inline constexpr std::int64_t kPgEpochOffsetMicros = 946'684'800'000'000;

}  // namespace outbox::pgoutput

#include "pgoutput/stream_frame.h"

#include <string>

#include "pgoutput/reader.h"

namespace outbox::pgoutput {

StreamFrame parse_stream_frame(std::string_view bytes) {
    ByteReader reader(bytes, "replication frame");
    const std::uint8_t type = reader.read_u8();
    if (type == 'w') {
        reader.set_message("XLogData frame");
        XLogData data;
        data.wal_start = Lsn(reader.read_u64());
        data.wal_end = Lsn(reader.read_u64());
        data.send_time = reader.read_i64();
        data.payload = reader.read_bytes(reader.remaining());
        return data;
    }
    if (type == 'k') {
        reader.set_message("Primary keepalive frame");
        PrimaryKeepalive keepalive;
        keepalive.wal_end = Lsn(reader.read_u64());
        keepalive.send_time = reader.read_i64();
        const std::uint8_t reply = reader.read_u8();
        if (reply > 1)
            throw reader.error_at(reader.offset() - 1, "reply-requested byte " + std::to_string(reply));
        keepalive.reply_requested = reply == 1;
        reader.expect_end();
        return keepalive;
    }
    throw reader.error_at(
        0, "unknown frame type 0x" + [&] {
            static constexpr char kHex[] = "0123456789abcdef";
            return std::string{kHex[type >> 4], kHex[type & 0xF]};
        }());
}

std::string encode_standby_status(const StandbyStatus& status) {
    std::string out;
    out.reserve(34);
    out.push_back('r');
    auto put64 = [&out](std::uint64_t v) {
        for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
    };
    put64(status.written.value());
    put64(status.flushed.value());
    put64(status.applied.value());
    put64(static_cast<std::uint64_t>(status.send_time));
    out.push_back(status.reply_requested ? 1 : 0);
    return out;
}

}  // namespace outbox::pgoutput

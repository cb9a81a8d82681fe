// libFuzzer target: one CopyData payload from the walsender -> pgoutput::parse_stream_frame.
// DecodeError is the expected answer to bad bytes; anything else escaping (another exception,
// a sanitizer report, a broken invariant below) is a finding.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "pgoutput/decoder.h"
#include "pgoutput/stream_frame.h"

namespace pg = outbox::pgoutput;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    pg::StreamFrame frame;
    try {
        frame = pg::parse_stream_frame(bytes);
    } catch (const pg::DecodeError&) {
        return 0;
    }
    if (const auto* xlog = std::get_if<pg::XLogData>(&frame)) {
        // 'w' + three Int64: the payload is the rest of the frame, a view into it.
        if (xlog->payload.size() + 25 != size || xlog->payload.data() != bytes.data() + 25) std::abort();
        // The payload goes on to the decoder in the relay: follow it there.
        try {
            (void)pg::decode(xlog->payload);
        } catch (const pg::DecodeError&) {
        }
    } else {
        const auto& keepalive = std::get<pg::PrimaryKeepalive>(frame);
        if (size != 18) std::abort();  // 'k' + Int64 + Int64 + Byte1, nothing after it
        // The status update we answer with has a fixed shape whatever the values.
        const std::string reply =
            pg::encode_standby_status({keepalive.wal_end, keepalive.wal_end, keepalive.wal_end,
                                       keepalive.send_time, keepalive.reply_requested});
        if (reply.size() != 34 || reply[0] != 'r') std::abort();
    }
    return 0;
}

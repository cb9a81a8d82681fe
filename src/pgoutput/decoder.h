#pragma once

#include <string_view>
#include <vector>

#include "pgoutput/messages.h"
#include "pgoutput/reader.h"

namespace outbox::pgoutput {

// Decodes one pgoutput message: the payload of one XLogData frame, type byte first.
//
// `in_stream` says the caller is between Stream Start and Stream Stop (protocol v2 with
// 'streaming' on). There, Relation, Type, Insert, Update, Delete, Truncate and Message carry
// the (sub)transaction id first, so the decoder must be told; the caller tracks the state
// from the Stream Start / Stream Stop it decodes. A message that cannot occur in the given
// state (Begin inside a stream block, Stream Stop outside one, ...) is rejected too.
//
// Throws DecodeError (ErrorKind::Protocol) for anything truncated, malformed or unknown,
// including trailing bytes after a complete message. Views in the result point into `bytes`.
Message decode(std::string_view bytes, bool in_stream = false);

// decode() for a stream of messages, reusing storage between them: once the buffers have
// grown to the widest row seen, decoding allocates nothing (the relay's hot path). Pure like
// decode(): no I/O, no clock, no logging. The returned message, and the views in it, are valid
// until the next call and while `bytes` lives. Same errors as decode().
class Decoder {
public:
    const Message& decode(std::string_view bytes, bool in_stream = false);

    // The value buffers of a row message's tuples: lent to the message, taken back by the next call.
    struct TupleBuffers {
        std::vector<ColumnValue> new_columns;
        std::vector<ColumnValue> old_columns;
    };

private:
    TupleBuffers buffers_;
    Message message_;
};

// "Begin", "Insert", "Stream Commit", ...: the protocol documentation's name for the message.
std::string_view message_name(const Message& message) noexcept;

}  // namespace outbox::pgoutput

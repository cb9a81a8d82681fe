#include "pgoutput/reader.h"

#include <string>

namespace outbox::pgoutput {

namespace {

std::string size_suffix(std::size_t size) {
    return " (message size " + std::to_string(size) + ")";
}

}  // namespace

void ByteReader::throw_overrun(std::size_t count, std::string_view field) const {
    std::string what;
    what.reserve(96);
    what.append(message_).append(": cannot read ").append(field);
    what.append(" at offset ").append(std::to_string(offset_));
    what.append(": needs ").append(std::to_string(count)).append(count == 1 ? " byte, " : " bytes, ");
    what.append(std::to_string(remaining())).append(" left");
    what.append(size_suffix(bytes_.size()));
    throw DecodeError(what);
}

void ByteReader::throw_bytes_overrun(std::size_t count) const {
    throw_overrun(count, "Byte" + std::to_string(count));
}

std::string_view ByteReader::read_cstring() {
    const std::string_view rest = bytes_.substr(offset_);
    const std::size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) {
        std::string what;
        what.append(message_).append(": cannot read String at offset ").append(std::to_string(offset_));
        what.append(": no NUL terminator in the ").append(std::to_string(rest.size()));
        what.append(rest.size() == 1 ? " byte left" : " bytes left");
        what.append(size_suffix(bytes_.size()));
        throw DecodeError(what);
    }
    offset_ += nul + 1;
    return rest.substr(0, nul);
}

void ByteReader::expect_end() const {
    if (at_end()) return;
    std::string what;
    what.append(message_).append(": ").append(std::to_string(remaining()));
    what.append(remaining() == 1 ? " unexpected trailing byte" : " unexpected trailing bytes");
    what.append(" at offset ").append(std::to_string(offset_));
    what.append(size_suffix(bytes_.size()));
    throw DecodeError(what);
}

DecodeError ByteReader::error_at(std::size_t at, std::string_view detail) const {
    std::string what;
    what.append(message_).append(": ").append(detail);
    what.append(" at offset ").append(std::to_string(at));
    what.append(size_suffix(bytes_.size()));
    return DecodeError(what);
}

}  // namespace outbox::pgoutput

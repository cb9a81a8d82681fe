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

std::uint64_t ByteReader::read_big_endian(std::size_t width, std::string_view field) {
    if (width > remaining()) throw_overrun(width, field);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i) {
        value = (value << 8) | static_cast<unsigned char>(bytes_[offset_ + i]);
    }
    offset_ += width;
    return value;
}

std::uint8_t ByteReader::read_u8() {
    return static_cast<std::uint8_t>(read_big_endian(1, "Int8"));
}

// Signed reads go through the unsigned bit pattern: the conversion to a narrower signed
// type is modular (well defined) since C++20, so negative values on the wire come out negative.
std::int16_t ByteReader::read_i16() {
    return static_cast<std::int16_t>(static_cast<std::uint16_t>(read_big_endian(2, "Int16")));
}

std::int32_t ByteReader::read_i32() {
    return static_cast<std::int32_t>(read_big_endian(4, "Int32"));
}

std::uint32_t ByteReader::read_u32() {
    return static_cast<std::uint32_t>(read_big_endian(4, "Int32"));
}

std::int64_t ByteReader::read_i64() {
    return static_cast<std::int64_t>(read_big_endian(8, "Int64"));
}

std::uint64_t ByteReader::read_u64() {
    return read_big_endian(8, "Int64");
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

std::string_view ByteReader::read_bytes(std::size_t count) {
    // The field name is built only on failure: this is the per-column hot path.
    if (count > remaining()) throw_overrun(count, "Byte" + std::to_string(count));
    const std::string_view view = bytes_.substr(offset_, count);
    offset_ += count;
    return view;
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

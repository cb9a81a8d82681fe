#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace outbox::pgoutput {

// The replication peer sent bytes we cannot accept: a truncated or malformed pgoutput
// message, or a row for a relation we were never told about. Always ErrorKind::Protocol.
class DecodeError : public Error {
public:
    explicit DecodeError(const std::string& what) : Error(ErrorKind::Protocol, what) {}
};

// Bounds-checked reader of big-endian (network order) fields over one pgoutput message.
// Every read checks the remaining length first and throws DecodeError naming the message,
// the field type and the offset; nothing is asserted, nothing is read past the end.
// Views returned by read_cstring/read_bytes point into the caller's buffer (no copy).
class ByteReader {
public:
    // `message` names what is being read in error messages, e.g. "Insert message".
    // It must outlive the reader (a string literal in practice).
    ByteReader(std::string_view bytes, std::string_view message) noexcept
        : bytes_(bytes), message_(message) {}

    void set_message(std::string_view message) noexcept { message_ = message; }

    // The fixed-width reads and read_bytes() are inline: they are the per-column hot path of
    // every row; only their error paths are out of line.
    std::uint8_t read_u8() { return static_cast<std::uint8_t>(read_big_endian<1>("Int8")); }
    // Signed reads go through the unsigned bit pattern: the conversion to a narrower signed
    // type is modular (well defined) since C++20, so negative values on the wire come out negative.
    std::int16_t read_i16() {
        return static_cast<std::int16_t>(static_cast<std::uint16_t>(read_big_endian<2>("Int16")));
    }
    std::int32_t read_i32() { return static_cast<std::int32_t>(read_big_endian<4>("Int32")); }
    std::uint32_t read_u32() { return static_cast<std::uint32_t>(read_big_endian<4>("Int32")); }
    std::int64_t read_i64() { return static_cast<std::int64_t>(read_big_endian<8>("Int64")); }
    std::uint64_t read_u64() { return read_big_endian<8>("Int64"); }

    // A NUL-terminated string; the view excludes the NUL, the NUL is consumed.
    std::string_view read_cstring();

    // The next `count` bytes as a view into the buffer.
    std::string_view read_bytes(std::size_t count) {
        if (count > remaining()) throw_bytes_overrun(count);
        const std::string_view view = bytes_.substr(offset_, count);
        offset_ += count;
        return view;
    }

    [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
    [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - offset_; }
    [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
    [[nodiscard]] bool at_end() const noexcept { return offset_ == bytes_.size(); }

    // Throws if anything is left: a message we decoded completely must end exactly there.
    void expect_end() const;

    // Builds the error for a field that was read but holds a value we cannot accept,
    // e.g. error_at(offset_of_flags, "unrecognized flags 0x02").
    [[nodiscard]] DecodeError error_at(std::size_t at, std::string_view detail) const;

private:
    // Reports a read of `count` bytes of `field` (e.g. "Int32") past the end.
    [[noreturn]] void throw_overrun(std::size_t count, std::string_view field) const;
    // throw_overrun() for read_bytes(): the field name ("Byte12") is built only on failure.
    [[noreturn]] void throw_bytes_overrun(std::size_t count) const;

    template <std::size_t Width>
    std::uint64_t read_big_endian(std::string_view field) {
        if (Width > remaining()) throw_overrun(Width, field);
        std::uint64_t value = 0;
        for (std::size_t i = 0; i < Width; ++i) {
            value = (value << 8) | static_cast<unsigned char>(bytes_[offset_ + i]);
        }
        offset_ += Width;
        return value;
    }

    std::string_view bytes_;
    std::string_view message_;
    std::size_t offset_ = 0;
};

}  // namespace outbox::pgoutput

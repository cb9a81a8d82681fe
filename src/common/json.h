#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace outbox {

// Appends `value` as a JSON string literal (with quotes). Valid UTF-8 passes through; control
// characters are escaped; each byte that is not part of valid UTF-8 becomes U+FFFD, so the
// output is always valid JSON. Callers that must keep arbitrary bytes use a hex form instead.
void append_json_string(std::string& out, std::string_view value);

[[nodiscard]] bool is_valid_utf8(std::string_view value) noexcept;

// Appends code point `cp` (at most U+10FFFF) in UTF-8's encoding form; a lone surrogate comes out
// as its three bytes (not valid UTF-8: callers that must refuse one check before).
void append_utf8(std::string& out, std::uint32_t cp);

void append_hex(std::string& out, std::string_view bytes);

}  // namespace outbox

#pragma once

#include <string>
#include <string_view>

namespace outbox {

// Appends `value` as a JSON string literal (with quotes). Valid UTF-8 passes through; control
// characters are escaped; each byte that is not part of valid UTF-8 becomes U+FFFD, so the
// output is always valid JSON. Callers that must keep arbitrary bytes use a hex form instead.
void append_json_string(std::string& out, std::string_view value);

[[nodiscard]] bool is_valid_utf8(std::string_view value) noexcept;

void append_hex(std::string& out, std::string_view bytes);

}  // namespace outbox

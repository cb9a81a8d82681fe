#include "config/env.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "config/text.h"

namespace outbox::config {

namespace {

bool is_env_name(std::string_view name) {
    if (name.empty() || is_digit(name.front())) return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
}

}  // namespace

Expanded expand_env(std::string_view in) {
    Expanded out;
    std::size_t i = 0;
    while (i < in.size()) {
        const char c = in[i];
        if (c != '$' || i + 1 >= in.size()) {
            out.value += c;
            ++i;
            continue;
        }
        if (in[i + 1] == '$') {
            out.value += '$';
            i += 2;
            continue;
        }
        if (in[i + 1] != '{') {
            out.value += c;
            ++i;
            continue;
        }
        const std::size_t close = in.find('}', i + 2);
        if (close == std::string_view::npos) {
            out.error = fmt::format("unterminated \"${{\" in {} (write $$ for a literal $)", quote(in));
            return out;
        }
        const std::string_view body = in.substr(i + 2, close - i - 2);
        const std::size_t sep = body.find(":-");
        const std::string_view name = body.substr(0, sep);
        if (!is_env_name(name)) {
            out.error = fmt::format(
                "invalid environment variable reference \"${{{}}}\" (expected ${{NAME}} or "
                "${{NAME:-default}}; write $$ for a literal $)",
                body);
            return out;
        }
        // The configuration is loaded at start-up, before any other thread exists.
        const char* value = std::getenv(std::string(name).c_str());  // NOLINT(concurrency-mt-unsafe)
        if (sep != std::string_view::npos) {
            if (value != nullptr && *value != '\0') {
                out.value += value;
            } else {
                out.value += body.substr(sep + 2);
            }
        } else if (value != nullptr) {
            out.value += value;
        } else {
            out.error = fmt::format(
                "environment variable {} is not set (use ${{{}:-default}} to give a default)", name, name);
            return out;
        }
        i = close + 1;
    }
    return out;
}

}  // namespace outbox::config

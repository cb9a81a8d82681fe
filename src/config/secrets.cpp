#include "config/secrets.h"

#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "common/error.h"
#include "config/config.h"
#include "config/file_contents.h"
#include "config/text.h"
#include "kafka/property_policy.h"

namespace outbox::config {

namespace {

using namespace std::string_view_literals;

bool looks_like_uri(std::string_view s, std::size_t& prefix_len) {
    for (const std::string_view scheme : {"postgresql://"sv, "postgres://"sv}) {
        if (istarts_with(s, scheme)) {
            prefix_len = scheme.size();
            return true;
        }
    }
    return false;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string mask_uri(std::string_view uri, std::size_t prefix_len) {
    std::string out(uri.substr(0, prefix_len));
    std::string_view rest = uri.substr(prefix_len);
    // libpq takes user[:password] up to an '@' that comes before the first '/'. Use the last
    // such '@' so that an unencoded '@' in the password is masked too.
    const std::size_t slash = rest.find('/');
    const std::size_t at = rest.substr(0, slash).rfind('@');
    if (at != std::string_view::npos) {
        const std::size_t colon = rest.substr(0, at).find(':');
        if (colon != std::string_view::npos) {
            out += rest.substr(0, colon + 1);
            out += kMasked;
        } else {
            out += rest.substr(0, at);
        }
        out += '@';
        rest = rest.substr(at + 1);
    }
    const std::size_t question = rest.find('?');
    out += rest.substr(0, question);
    if (question == std::string_view::npos) return out;
    out += '?';
    std::string_view query = rest.substr(question + 1);
    bool first = true;
    while (true) {
        const std::size_t amp = query.find('&');
        const std::string_view param = query.substr(0, amp);
        if (!first) out += '&';
        first = false;
        const std::size_t eq = param.find('=');
        if (eq != std::string_view::npos && iequals(percent_decode(param.substr(0, eq)), "password")) {
            out += param.substr(0, eq + 1);
            out += kMasked;
        } else {
            out += param;
        }
        if (amp == std::string_view::npos) break;
        query = query.substr(amp + 1);
    }
    return out;
}

std::string quote_conninfo_value(std::string_view value) {
    std::string out = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

std::string mask_conninfo(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        if (is_space(s[i])) {
            out += s[i++];
            continue;
        }
        const std::size_t key_start = i;
        while (i < n && !is_space(s[i]) && s[i] != '=') ++i;
        const std::string_view key = s.substr(key_start, i - key_start);
        out += key;
        while (i < n && is_space(s[i])) out += s[i++];
        if (i >= n || s[i] != '=') {
            out += s.substr(i);  // malformed: libpq would reject it; nothing recognisable to mask
            break;
        }
        out += s[i++];
        while (i < n && is_space(s[i])) out += s[i++];
        const std::size_t value_start = i;
        std::string value;
        if (i < n && s[i] == '\'') {
            ++i;
            while (i < n) {
                if (s[i] == '\\' && i + 1 < n) {
                    value += s[i + 1];
                    i += 2;
                } else if (s[i] == '\'') {
                    ++i;
                    break;
                } else {
                    value += s[i++];
                }
            }
        } else {
            while (i < n && !is_space(s[i])) {
                if (s[i] == '\\' && i + 1 < n) {
                    value += s[i + 1];
                    i += 2;
                } else {
                    value += s[i++];
                }
            }
        }
        const std::string_view raw = s.substr(value_start, i - value_start);
        if (iequals(key, "password")) {
            out += kMasked;
        } else if (key == "dbname") {
            // libpq expands a dbname that is itself a conninfo string or URI.
            const std::string masked = mask_dsn(value);
            out += masked == value ? std::string(raw) : quote_conninfo_value(masked);
        } else {
            out += raw;
        }
    }
    return out;
}

}  // namespace

std::optional<std::string> read_password(const PostgresConfig& postgres) {
    if (!postgres.password_file || postgres.password_file->empty()) return std::nullopt;
    const std::string& path = *postgres.password_file;
    std::string err;
    auto text = read_file_contents(path, err);
    if (!text) {
        throw Error(ErrorKind::Config,
                    fmt::format("postgres.password_file: cannot read password file \"{}\": {}", path, err));
    }
    if (!text->empty() && text->back() == '\n') {
        text->pop_back();
        if (!text->empty() && text->back() == '\r') text->pop_back();
    }
    if (text->empty()) {
        throw Error(ErrorKind::Config,
                    fmt::format("postgres.password_file: password file \"{}\" is empty", path));
    }
    return text;
}

std::string mask_dsn(std::string_view dsn) {
    std::size_t prefix_len = 0;
    if (looks_like_uri(trim(dsn), prefix_len)) {
        const std::size_t lead = dsn.find_first_not_of(" \t\r\n\f\v");
        return std::string(dsn.substr(0, lead)) + mask_uri(dsn.substr(lead), prefix_len);
    }
    return mask_conninfo(dsn);
}

bool is_secret_property(std::string_view key) {
    return kafka::is_secret_property(key);
}

std::string PasswordFile::parse(std::string text, Value& out) {
    if (text.empty()) return {};
    // The configuration is loaded at start-up, before any other thread exists.
    const char* creds = std::getenv("CREDENTIALS_DIRECTORY");  // NOLINT(concurrency-mt-unsafe)
    if (text.front() != '/' && creds != nullptr && *creds != '\0') {
        std::string dir = creds;
        if (dir.back() != '/') dir += '/';
        text = dir + text;
    }
    out = std::move(text);
    return {};
}

}  // namespace outbox::config

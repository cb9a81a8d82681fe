#include "config/postgres_names.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "config/text.h"

namespace outbox::config {

namespace {

// One SQL identifier: "quoted" (verbatim, "" for ") or unquoted (folded to lower case).
// Advances `pos`. Returns an error message or empty.
std::string parse_identifier(std::string_view s, std::size_t& pos, std::string& ident) {
    ident.clear();
    if (pos < s.size() && s[pos] == '"') {
        ++pos;
        for (;;) {
            if (pos >= s.size()) return "unterminated double quote";
            if (s[pos] == '"') {
                if (pos + 1 < s.size() && s[pos + 1] == '"') {
                    ident += '"';
                    pos += 2;
                    continue;
                }
                ++pos;
                break;
            }
            ident += s[pos++];
        }
        if (ident.empty()) return "empty quoted identifier";
    } else {
        const std::size_t start = pos;
        while (pos < s.size() && s[pos] != '.') {
            const char c = s[pos];
            const bool high = static_cast<unsigned char>(c) >= 0x80;
            const bool ok = is_alpha(c) || c == '_' || high || (pos > start && (is_digit(c) || c == '$'));
            if (!ok) {
                return fmt::format(
                    "{} is not allowed in an unquoted identifier (double-quote the name, "
                    "e.g. '\"My Table\"')",
                    quote(std::string_view(&s[pos], 1)));
            }
            ident += to_lower(c);
            ++pos;
        }
        if (ident.empty()) return "empty identifier";
    }
    if (ident.size() > kMaxIdentifierBytes) {
        return fmt::format("identifier {} is longer than {} bytes", quote(ident), kMaxIdentifierBytes);
    }
    return {};
}

// 1 to 63 bytes of [a-z0-9_], the characters PostgreSQL allows in slot names.
bool is_lower_identifier(std::string_view name) {
    return !name.empty() && name.size() <= kMaxIdentifierBytes &&
           std::all_of(name.begin(), name.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_'; });
}

}  // namespace

std::string parse_table_name(std::string_view text, TableName& table) {
    std::vector<std::string> parts;
    std::size_t pos = 0;
    for (;;) {
        std::string ident;
        if (auto err = parse_identifier(text, pos, ident); !err.empty()) {
            return fmt::format("expected schema.table or table, got {}: {}", quote(text), err);
        }
        parts.push_back(std::move(ident));
        if (pos >= text.size()) break;
        if (text[pos] != '.') {
            return fmt::format("expected schema.table or table, got {}: unexpected {} after a quoted name",
                               quote(text), quote(text.substr(pos, 1)));
        }
        ++pos;
        if (pos >= text.size()) {
            return fmt::format("expected schema.table or table, got {}: empty identifier", quote(text));
        }
    }
    if (parts.size() > 2) {
        return fmt::format("expected schema.table or table, got {} (too many dots)", quote(text));
    }
    if (parts.size() == 2) {
        table.schema = std::move(parts[0]);
        table.name = std::move(parts[1]);
    } else {
        table.schema = "public";
        table.name = std::move(parts[0]);
    }
    return {};
}

std::string SlotName::parse(std::string text, Value& out) {
    if (!is_lower_identifier(text)) {
        return fmt::format(
            "expected a replication slot name (1 to 63 lower-case letters, digits and underscores), got {}",
            quote(text));
    }
    out = std::move(text);
    return {};
}

std::string PublicationName::parse(std::string text, Value& out) {
    if (!is_lower_identifier(text) || is_digit(text.front())) {
        return fmt::format(
            "expected a publication name (1 to 63 lower-case letters, digits and underscores, not "
            "starting with a digit), got {}",
            quote(text));
    }
    out = std::move(text);
    return {};
}

}  // namespace outbox::config

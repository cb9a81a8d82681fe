#include "common/json_object.h"

#include <cstdint>

#include "common/json.h"

namespace outbox {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    std::optional<std::vector<JsonMember>> object(std::string& error) {
        skip_space();
        if (!consume('{')) return fail(error, "expected a JSON object");
        std::vector<JsonMember> members;
        skip_space();
        if (!consume('}')) {
            while (true) {
                skip_space();
                JsonMember m;
                if (peek() != '"' || !string(m.name)) return fail(error, "expected a member name");
                skip_space();
                if (!consume(':')) return fail(error, "expected ':'");
                skip_space();
                if (peek() == '"') {
                    m.kind = JsonMember::Kind::String;
                    if (!string(m.value)) return fail(error, "invalid string");
                } else if (text_.substr(pos_, 4) == "null") {
                    pos_ += 4;
                    m.kind = JsonMember::Kind::Null;
                } else {
                    const std::size_t start = pos_;
                    if (!value(1)) return fail(error, "invalid value");
                    m.kind = JsonMember::Kind::Raw;
                    m.value = std::string(text_.substr(start, pos_ - start));
                }
                bool replaced = false;
                for (auto& existing : members) {
                    if (existing.name == m.name) {
                        existing = m;
                        replaced = true;
                    }
                }
                if (!replaced) members.push_back(std::move(m));
                skip_space();
                if (consume('}')) break;
                if (!consume(',')) return fail(error, "expected ',' or '}'");
            }
        }
        skip_space();
        if (pos_ != text_.size()) return fail(error, "unexpected text after the object");
        return members;
    }

private:
    std::optional<std::vector<JsonMember>> fail(std::string& error, std::string_view what) const {
        error = std::string(what) + " at byte " + std::to_string(pos_);
        return std::nullopt;
    }
    [[nodiscard]] char peek() const noexcept { return pos_ < text_.size() ? text_[pos_] : '\0'; }
    bool consume(char c) noexcept {
        if (peek() != c || pos_ >= text_.size()) return false;
        ++pos_;
        return true;
    }
    void skip_space() noexcept {
        while (pos_ < text_.size() &&
               (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
            ++pos_;
        }
    }

    // Any JSON value (validated, not kept).
    bool value(int depth) {
        if (depth > kMaxDepth) return false;
        skip_space();
        const char c = peek();
        if (c == '"') {
            std::string ignored;
            return string(ignored);
        }
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            ++pos_;
            skip_space();
            if (consume(close)) return true;
            while (true) {
                skip_space();
                if (c == '{') {
                    std::string ignored;
                    if (peek() != '"' || !string(ignored)) return false;
                    skip_space();
                    if (!consume(':')) return false;
                }
                if (!value(depth + 1)) return false;
                skip_space();
                if (consume(close)) return true;
                if (!consume(',')) return false;
            }
        }
        for (const std::string_view literal : {"true", "false", "null"}) {
            if (text_.substr(pos_, literal.size()) == literal) {
                pos_ += literal.size();
                return true;
            }
        }
        return number();
    }

    bool digits() {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
        return pos_ > start;
    }
    bool number() {
        consume('-');
        if (consume('0')) {
            // no leading zeros
        } else if (!digits()) {
            return false;
        }
        if (consume('.') && !digits()) return false;
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (!consume('+')) consume('-');
            if (!digits()) return false;
        }
        return true;
    }

    bool hex4(std::uint32_t& out) {
        if (pos_ + 4 > text_.size()) return false;
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text_[pos_++];
            out <<= 4;
            if (c >= '0' && c <= '9') {
                out |= static_cast<std::uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                out |= static_cast<std::uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                out |= static_cast<std::uint32_t>(c - 'A' + 10);
            } else {
                return false;
            }
        }
        return true;
    }
    // A string at pos_ (which is '"'), unescaped into `out`.
    bool string(std::string& out) {
        out.clear();
        ++pos_;
        while (pos_ < text_.size()) {
            const char c = text_[pos_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) return false;
            const char e = text_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = 0;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
                        std::uint32_t low = 0;
                        if (!consume('\\') || !consume('u') || !hex4(low) || low < 0xDC00 || low > 0xDFFF)
                            return false;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return false;
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: return false;
            }
        }
        return false;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace

std::optional<std::vector<JsonMember>> parse_json_object(std::string_view text, std::string& error) {
    return Parser(text).object(error);
}

}  // namespace outbox

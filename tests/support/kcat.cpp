#include "support/kcat.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "common/json.h"
#include "support/process.h"

namespace outbox::test {
namespace {

// A temporary file under /tmp, removed on destruction.
class TempFile {
public:
    explicit TempFile(const std::string& content = {}) {
        char tmpl[] = "/tmp/outbox-kcat-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        path_ = tmpl;
        if (!content.empty()) {
            std::ofstream out(path_, std::ios::binary | std::ios::trunc);
            out << content;
            if (!out.flush()) throw std::runtime_error("cannot write " + path_);
        }
    }
    ~TempFile() { ::unlink(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

struct KcatRun {
    int exit_code = -1;
    std::string out;
    std::string err;  // empty when merged into `out`
};

// Runs kcat; with `merge_stderr` its stderr goes into `out` (fine for short diagnostics), else to
// a separate file: kcat's stderr is unbuffered and could land inside a block-buffered JSON line.
KcatRun run_kcat(std::vector<std::string> args, std::chrono::milliseconds timeout, bool merge_stderr) {
    args.insert(args.begin(), "kcat");
    SpawnOptions options;
    options.argv = std::move(args);
    options.parent_death_signal = SIGKILL;  // a crashed test leaves no kcat behind
    std::optional<TempFile> err_file;
    if (merge_stderr) {
        options.stderr_path = "=stdout";
    } else {
        err_file.emplace();
        options.stderr_path = err_file->path();
    }
    KcatRun run;
    run.exit_code = run_command(options, &run.out, timeout);
    if (err_file) run.err = read_file(err_file->path());
    return run;
}

std::string describe(const std::vector<std::string>& args) {
    std::string text = "kcat";
    for (const auto& a : args) text += " " + a;
    return text;
}

// ---- a minimal JSON reader, enough for kcat's -J envelopes ----

struct Json {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    std::string text;               // String: the decoded bytes; Number: the literal
    std::vector<std::string> keys;  // Object
    std::vector<Json> values;       // Object (parallel to keys) and Array

    [[nodiscard]] const Json* find(std::string_view key) const {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i] == key) return &values[i];
        }
        return nullptr;
    }
};

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : s_(text) {}

    Json parse_document() {
        Json value = parse_value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("trailing characters");
        return value;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("kcat JSON: " + what + " at offset " + std::to_string(pos_) +
                                 " in: " + std::string(s_.substr(0, 300)));
    }

    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }

    char peek() {
        skip_ws();
        if (pos_ >= s_.size()) fail("unexpected end");
        return s_[pos_];
    }

    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }

    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    Json parse_value(int depth) {
        if (depth > 64) fail("nesting too deep");
        Json v;
        const char c = peek();
        if (c == '{') {
            v.kind = Json::Kind::Object;
            ++pos_;
            if (peek() == '}') {
                ++pos_;
                return v;
            }
            while (true) {
                if (peek() != '"') fail("expected a key");
                v.keys.push_back(parse_string());
                expect(':');
                v.values.push_back(parse_value(depth + 1));
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                expect('}');
                return v;
            }
        }
        if (c == '[') {
            v.kind = Json::Kind::Array;
            ++pos_;
            if (peek() == ']') {
                ++pos_;
                return v;
            }
            while (true) {
                v.values.push_back(parse_value(depth + 1));
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                expect(']');
                return v;
            }
        }
        if (c == '"') {
            v.kind = Json::Kind::String;
            v.text = parse_string();
            return v;
        }
        if (literal("null")) return v;
        if (literal("true")) {
            v.kind = Json::Kind::Bool;
            v.boolean = true;
            return v;
        }
        if (literal("false")) {
            v.kind = Json::Kind::Bool;
            return v;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            v.kind = Json::Kind::Number;
            const std::size_t start = pos_;
            ++pos_;
            while (pos_ < s_.size() &&
                   std::string_view("0123456789+-.eE").find(s_[pos_]) != std::string_view::npos)
                ++pos_;
            v.text = std::string(s_.substr(start, pos_ - start));
            return v;
        }
        fail(std::string("unexpected character '") + c + "'");
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
        unsigned value = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            value <<= 4;
            if (h >= '0' && h <= '9')
                value |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
                value |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                value |= static_cast<unsigned>(h - 'A' + 10);
            else
                fail("bad hex digit in \\u escape");
        }
        return value;
    }

    // Bytes other than '"' and '\\' are taken verbatim: kcat (yajl) does not validate UTF-8, so
    // binary payloads pass through unchanged.
    std::string parse_string() {
        expect('"');
        std::string out;
        while (true) {
            if (pos_ >= s_.size()) fail("unterminated string");
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) fail("unterminated escape");
            const char e = s_[pos_++];
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
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
                        const std::size_t save = pos_;
                        pos_ += 2;
                        const unsigned low = hex4();
                        if (low >= 0xDC00 && low <= 0xDFFF) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        } else {
                            pos_ = save;
                        }
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail(std::string("bad escape \\") + e);
            }
        }
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

std::int64_t number_field(const Json& obj, std::string_view key, std::int64_t fallback) {
    const Json* v = obj.find(key);
    if (v == nullptr || v->kind != Json::Kind::Number) return fallback;
    return std::strtoll(v->text.c_str(), nullptr, 10);
}

std::optional<std::string> string_field(const Json& obj, std::string_view key) {
    const Json* v = obj.find(key);
    if (v == nullptr || v->kind != Json::Kind::String) return std::nullopt;
    return v->text;
}

}  // namespace

std::vector<KafkaRecord> parse_kcat_json(const std::string& output) {
    std::vector<KafkaRecord> records;
    std::size_t start = 0;
    while (start < output.size()) {
        std::size_t end = output.find('\n', start);
        if (end == std::string::npos) end = output.size();
        std::string_view line(output.data() + start, end - start);
        start = end + 1;
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string_view::npos || line[first] != '{') continue;

        const Json obj = JsonParser(line).parse_document();
        KafkaRecord r;
        r.topic = string_field(obj, "topic").value_or("");
        r.partition = static_cast<std::int32_t>(number_field(obj, "partition", -1));
        r.offset = number_field(obj, "offset", -1);
        r.timestamp_ms = number_field(obj, "ts", -1);
        r.key = string_field(obj, "key");
        r.value = string_field(obj, "payload");
        if (const Json* h = obj.find("headers"); h != nullptr && h->kind == Json::Kind::Array) {
            for (std::size_t i = 0; i + 1 < h->values.size(); i += 2) {
                KafkaHeader header;
                header.name = h->values[i].text;
                if (h->values[i + 1].kind == Json::Kind::String) header.value = h->values[i + 1].text;
                r.headers.push_back(std::move(header));
            }
        }
        records.push_back(std::move(r));
    }
    return records;
}

KcatResult kcat_try_produce(const std::string& bootstrap, const std::string& topic,
                            const std::optional<std::string>& key, const std::string& value,
                            const KcatArgs& extra_args,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout) {
    // kcat silently sends nothing for an empty input file.
    if (value.empty()) throw std::invalid_argument("kcat_produce: kcat cannot produce an empty value");
    TempFile file(value);
    std::vector<std::string> args = {"-P", "-b", bootstrap, "-t", topic};
    if (key) {
        args.push_back("-k");
        args.push_back(*key);
    }
    for (const auto& [name, v] : headers) {
        if (name.find('=') != std::string::npos)
            throw std::invalid_argument("kcat_produce: '=' in header name");
        args.push_back("-H");
        args.push_back(name + "=" + v);
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.push_back(file.path());  // without -l: the whole file is one message
    const KcatRun run = run_kcat(args, timeout, true);
    return KcatResult{run.exit_code, run.out};
}

void kcat_produce(const std::string& bootstrap, const std::string& topic,
                  const std::optional<std::string>& key, const std::string& value, const KcatArgs& extra_args,
                  const std::vector<std::pair<std::string, std::string>>& headers,
                  std::chrono::milliseconds timeout) {
    const KcatResult result = kcat_try_produce(bootstrap, topic, key, value, extra_args, headers, timeout);
    if (!result.ok()) {
        throw std::runtime_error("kcat produce to " + topic + " failed (exit " +
                                 std::to_string(result.exit_code) + "):\n" + result.output);
    }
}

void kcat_produce_many(const std::string& bootstrap, const std::string& topic,
                       const std::vector<std::pair<std::string, std::string>>& records,
                       const KcatArgs& extra_args, std::chrono::milliseconds timeout) {
    constexpr char kRecordDelim = '\x1e';
    constexpr char kKeyDelim = '\x1f';
    std::string content;
    for (const auto& [key, value] : records) {
        for (const std::string* s : {&key, &value}) {
            if (s->find(kRecordDelim) != std::string::npos || s->find(kKeyDelim) != std::string::npos)
                throw std::invalid_argument("kcat_produce_many: key or value contains 0x1e/0x1f");
        }
        if (value.empty()) throw std::invalid_argument("kcat_produce_many: empty value");
        content += key;
        content += kKeyDelim;
        content += value;
        content += kRecordDelim;
    }
    if (records.empty()) return;
    TempFile file(content);
    std::vector<std::string> args = {"-P", "-b", bootstrap, "-t", topic, "-D", "\\x1e", "-K", "\\x1f"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.push_back("-l");
    args.push_back(file.path());
    const KcatRun run = run_kcat(args, timeout, true);
    if (run.exit_code != 0) {
        throw std::runtime_error(describe(args) + " failed (exit " + std::to_string(run.exit_code) + "):\n" +
                                 run.out);
    }
}

std::vector<KafkaRecord> kcat_consume_all(const std::string& bootstrap, const std::string& topic,
                                          std::chrono::milliseconds timeout, const KcatArgs& extra_args) {
    // fetch.wait.max.ms: the mock honours the fetch wait, so the default 500 ms makes every
    // consume take ~1.5 s before -e sees the end of all partitions.
    std::vector<std::string> args = {
        "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-X", "fetch.wait.max.ms=10"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    const KcatRun run = run_kcat(args, timeout, false);
    if (run.exit_code != 0) {
        throw std::runtime_error(describe(args) + " failed (exit " + std::to_string(run.exit_code) + "):\n" +
                                 run.err + run.out.substr(0, 2000));
    }
    auto records = parse_kcat_json(run.out);
    std::stable_sort(records.begin(), records.end(), [](const KafkaRecord& a, const KafkaRecord& b) {
        return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
    });
    return records;
}

std::string kcat_metadata(const std::string& bootstrap, std::chrono::milliseconds timeout) {
    const std::vector<std::string> args = {"-L", "-J", "-b", bootstrap};
    const KcatRun run = run_kcat(args, timeout, false);
    if (run.exit_code != 0) {
        throw std::runtime_error(describe(args) + " failed (exit " + std::to_string(run.exit_code) + "):\n" +
                                 run.err);
    }
    return run.out;
}

}  // namespace outbox::test

#include "app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

#include "common/json.h"

namespace outbox::app {
namespace {

std::vector<std::pair<std::string, std::string>> g_process_fields;  // written before other threads log
thread_local std::vector<std::pair<std::string, std::string>> t_scope_fields;

void append_fields(std::string& line, const std::vector<std::pair<std::string, std::string>>& fields) {
    for (const auto& [name, value] : fields) {
        line += ',';
        append_json_string(line, name);
        line += ':';
        append_json_string(line, value);
    }
}

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
    switch (level) {
        case config::LogLevel::Trace: return spdlog::level::trace;
        case config::LogLevel::Debug: return spdlog::level::debug;
        case config::LogLevel::Info: return spdlog::level::info;
        case config::LogLevel::Warn: return spdlog::level::warn;
        case config::LogLevel::Error: return spdlog::level::err;
        case config::LogLevel::Critical: return spdlog::level::critical;
        case config::LogLevel::Off: return spdlog::level::off;
    }
    return spdlog::level::info;
}

// {"time":"2026-11-25T02:24:52.123Z","level":"info","msg":"..."} — the message escaped as a
// JSON string, so any text (quotes, newlines, non-UTF-8 from a server) keeps the line valid.
class JsonFormatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
        const std::time_t secs = static_cast<std::time_t>(millis / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char ts[40];
        const std::size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        std::string line = "{\"time\":\"";
        line.append(ts, n);
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(millis % 1000));
        line += frac;
        line += "\",\"level\":\"";
        const auto level = spdlog::level::to_string_view(msg.level);
        line.append(level.data(), level.size());
        line += "\",\"msg\":";
        append_json_string(line, std::string_view(msg.payload.data(), msg.payload.size()));
        append_fields(line, g_process_fields);
        append_fields(line, t_scope_fields);
        line += "}\n";
        dest.append(line.data(), line.data() + line.size());
    }
    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

// The text format, one line per record: line breaks inside a message (libpq's multi-line
// errors, a server's DETAIL) are folded to "; " so that each record stays one journal line.
class TextFormatter final : public spdlog::formatter {
public:
    TextFormatter() : inner_(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z %l %v")) {}
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        if (payload.find('\n') == std::string_view::npos) {
            inner_->format(msg, dest);
            return;
        }
        std::string folded;
        for (std::size_t i = 0; i < payload.size(); ++i) {
            if (payload[i] != '\n') {
                folded += payload[i];
                continue;
            }
            while (i + 1 < payload.size() && (payload[i + 1] == ' ' || payload[i + 1] == '\t')) ++i;
            if (i + 1 < payload.size()) folded += "; ";
        }
        spdlog::details::log_msg copy(msg);
        copy.payload = spdlog::string_view_t(folded.data(), folded.size());
        inner_->format(copy, dest);
    }
    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<TextFormatter>();
    }

private:
    std::unique_ptr<spdlog::pattern_formatter> inner_;
};

}  // namespace

void set_process_log_fields(std::vector<std::pair<std::string, std::string>> fields) {
    g_process_fields = std::move(fields);
}

LogFields::LogFields(std::initializer_list<std::pair<std::string_view, std::string>> fields)
    : added_(fields.size()) {
    for (const auto& [name, value] : fields) t_scope_fields.emplace_back(std::string(name), value);
}

LogFields::~LogFields() {
    t_scope_fields.resize(t_scope_fields.size() - added_);
}

void setup_logging(const config::LogConfig& log) {
    auto logger = spdlog::default_logger();
    if (logger->name() != "outbox-relay") {
        logger = std::make_shared<spdlog::logger>("outbox-relay",
                                                  std::make_shared<spdlog::sinks::stderr_sink_mt>());
        spdlog::set_default_logger(logger);
    }
    if (log.format == config::LogFormat::Json) {
        logger->set_formatter(std::make_unique<JsonFormatter>());
    } else {
        logger->set_formatter(std::make_unique<TextFormatter>());
    }
    logger->set_level(to_spdlog(log.level));
    logger->flush_on(spdlog::level::trace);  // one line at a time: nothing lost on a crash
}

}  // namespace outbox::app

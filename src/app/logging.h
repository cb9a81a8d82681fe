#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace outbox::app {

// Logs go to stderr (journald and container runtimes collect it): text lines, or one JSON
// object per line with time, level, msg and the fields below. Safe to call again (SIGHUP reload).
void setup_logging(const config::LogConfig& log);

// Fields every JSON record carries (e.g. {"slot", "outbox_relay"}); set once at start-up.
void set_process_log_fields(std::vector<std::pair<std::string, std::string>> fields);

// Fields the JSON records logged on this thread carry while this object lives, e.g.
//   LogFields fields{{"xid", "771"}, {"lsn", "16/B374D848"}, {"error_code", "too_large"}};
//   spdlog::warn(...);
// Text logs say the same in the message itself. Nested scopes add to the outer ones.
class LogFields {
public:
    LogFields(std::initializer_list<std::pair<std::string_view, std::string>> fields);
    ~LogFields();
    LogFields(const LogFields&) = delete;
    LogFields& operator=(const LogFields&) = delete;

private:
    std::size_t added_;
};

}  // namespace outbox::app

#pragma once

#include "config/config.h"

namespace outbox::app {

// Logs go to stderr (journald and container runtimes collect it): text lines, or one JSON
// object per line with time, level and msg. Safe to call again (SIGHUP reload).
void setup_logging(const config::LogConfig& log);

}  // namespace outbox::app

#include "config/state_path.h"

#include <cstdlib>

#include "config/config.h"

namespace outbox::config {
namespace {

// $STATE_DIRECTORY with a trailing slash, or "" when it is not set. systemd may list several
// directories separated by ':'; the first is the unit's own.
std::string state_directory() {
    // Read at start-up, before any other thread exists.
    const char* dir = std::getenv("STATE_DIRECTORY");  // NOLINT(concurrency-mt-unsafe)
    if (dir == nullptr || *dir == '\0') return {};
    std::string out(dir);
    out = out.substr(0, out.find(':'));
    if (out.back() != '/') out += '/';
    return out;
}

}  // namespace

std::string StateFilePath::parse(std::string text, Value& out) {
    if (text.empty()) return {};
    if (text.front() != '/') text = state_directory() + text;
    out = std::move(text);
    return {};
}

std::string StateFilePath::show(const Value& value) {
    return value ? *value : "(not set)";
}

std::optional<std::string> state_file_path(const PostgresConfig& postgres) {
    if (postgres.state_file) return postgres.state_file;
    const std::string dir = state_directory();
    if (dir.empty()) return std::nullopt;
    return dir + postgres.slot + ".state";
}

}  // namespace outbox::config

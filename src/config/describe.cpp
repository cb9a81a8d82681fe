#include <fmt/format.h>

#include "config/config.h"
#include "config/keys.h"

namespace outbox::config {

std::string describe(const Config& config) {
    std::string out =
        fmt::format("configuration from {}\n", config.origin.empty() ? "(defaults)" : config.origin);
    std::string_view section;
    for (const Key& key : keys()) {
        if (key.show == nullptr) continue;  // on the line of another key
        const std::string_view label = key.label.empty() ? key.name() : key.label;
        if (key.section().empty()) {  // a top-level key ("source")
            section = {};
            out += fmt::format("{}: {}\n", label, key.show(config));
            continue;
        }
        const std::string_view top = key.path.substr(0, key.path.find('.'));
        if (top != section) {
            section = top;
            out += fmt::format("{}:\n", section);
        }
        const std::string value = key.show(config);
        out += fmt::format("  {}:{}{}\n", label, value.starts_with('\n') ? "" : " ", value);
    }
    return out;
}

}  // namespace outbox::config

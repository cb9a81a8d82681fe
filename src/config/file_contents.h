#pragma once

// Reading the configuration file and the password file.

#include <optional>
#include <string>

namespace outbox::config {

// The whole file; on failure nullopt, with `err` set to the errno message.
std::optional<std::string> read_file_contents(const std::string& path, std::string& err);

}  // namespace outbox::config

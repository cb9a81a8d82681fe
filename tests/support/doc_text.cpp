#include "support/doc_text.h"

#include <sstream>
#include <stdexcept>

#include "support/process.h"

namespace outbox::test {
namespace {

// The heading level of a Markdown line ("### X" -> 3), 0 when it is not a heading.
std::size_t heading_level(const std::string& line) {
    std::size_t n = 0;
    while (n < line.size() && line[n] == '#') ++n;
    return n > 0 && n < line.size() && line[n] == ' ' ? n : 0;
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::vector<std::string> doc_code_blocks(const std::string& relative_path, const std::string& heading) {
    const std::string path = std::string(OUTBOX_SOURCE_DIR) + "/" + relative_path;
    std::istringstream in(read_file(path));
    const std::size_t level = heading_level(heading);
    if (level == 0) throw std::runtime_error("not a Markdown heading: " + heading);
    bool in_section = false;
    bool found = false;
    bool in_block = false;
    std::vector<std::string> blocks;
    for (std::string line; std::getline(in, line);) {
        if (!in_block) {
            const std::size_t l = heading_level(line);
            if (l > 0 && l <= level) {
                in_section = line == heading;
                found = found || in_section;
                continue;
            }
        }
        if (!in_section) continue;
        if (line.rfind("```", 0) == 0) {
            in_block = !in_block;
            if (in_block) blocks.emplace_back();
            continue;
        }
        if (in_block) blocks.back() += line + "\n";
    }
    if (!found) throw std::runtime_error(path + " has no section \"" + heading + "\"");
    return blocks;
}

std::string doc_code_block(const std::string& relative_path, const std::string& heading,
                           const std::string& marker) {
    std::vector<std::string> matching;
    for (auto& block : doc_code_blocks(relative_path, heading)) {
        if (block.find(marker) != std::string::npos) matching.push_back(std::move(block));
    }
    if (matching.size() != 1) {
        throw std::runtime_error(relative_path + ", \"" + heading + "\": " + std::to_string(matching.size()) +
                                 " code blocks contain \"" + marker + "\", expected one");
    }
    return matching.front();
}

std::string substitute(std::string text,
                       const std::vector<std::pair<std::string, std::string>>& replacements) {
    for (const auto& [from, to] : replacements) {
        std::size_t pos = text.find(from);
        if (pos == std::string::npos)
            throw std::runtime_error("\"" + from + "\" does not occur in:\n" + text);
        for (; pos != std::string::npos; pos = text.find(from, pos + to.size()))
            text.replace(pos, from.size(), to);
    }
    return text;
}

std::string doc_yaml_value(const std::string& block, const std::string& key) {
    std::istringstream in(block);
    for (std::string line; std::getline(in, line);) {
        const std::string t = trim(line);
        if (t.rfind(key + ":", 0) != 0) continue;
        std::string value = trim(t.substr(key.size() + 1));
        if (!value.empty() && value.front() == '"') {
            const auto close = value.find('"', 1);
            if (close == std::string::npos) throw std::runtime_error("unclosed quote in: " + line);
            return value.substr(1, close - 1);
        }
        return trim(value.substr(0, value.find(" #")));
    }
    throw std::runtime_error("no \"" + key + ":\" in:\n" + block);
}

}  // namespace outbox::test

#pragma once

// Recipes from the documentation, read by the tests that run them: a test executes what a page
// says instead of a copy that could drift from it.

#include <string>
#include <utility>
#include <vector>

namespace outbox::test {

// The fenced code blocks (``` ... ```) of one section of a Markdown file in the source tree,
// e.g. doc_code_blocks("docs/operations.md", "### TLS"). The section runs from its heading line
// to the next heading of the same or a higher level; '#' lines inside code blocks are not
// headings. Throws when the file or the heading is missing.
std::vector<std::string> doc_code_blocks(const std::string& relative_path, const std::string& heading);

// The one code block of that section that contains `marker`; throws when none or several do.
std::string doc_code_block(const std::string& relative_path, const std::string& heading,
                           const std::string& marker);

// `text` with every occurrence of each `from` replaced by its `to`, in order; throws when a
// `from` does not occur (the page changed: the test must follow it).
std::string substitute(std::string text,
                       const std::vector<std::pair<std::string, std::string>>& replacements);

// The value of `key: value` in a YAML code block (one level of nesting is enough for the pages'
// snippets): surrounding double quotes and a trailing `# comment` removed. Throws when absent.
std::string doc_yaml_value(const std::string& block, const std::string& key);

}  // namespace outbox::test

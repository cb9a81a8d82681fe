#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace outbox::test {

// A fresh directory /tmp/<prefix>-XXXXXX, removed afterwards unless OUTBOX_KEEP_RUN_DIRS is set.
class RunDir {
public:
    explicit RunDir(const std::string& prefix = "outbox-test") {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
        path_ = tmpl;
    }
    ~RunDir() {
        if (std::getenv("OUTBOX_KEEP_RUN_DIRS") == nullptr) {
            std::error_code ignored;
            std::filesystem::remove_all(path_, ignored);
        }
    }
    RunDir(const RunDir&) = delete;
    RunDir& operator=(const RunDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace outbox::test

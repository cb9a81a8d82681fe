#include "config/file_contents.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace outbox::config {

std::optional<std::string> read_file_contents(const std::string& path, std::string& err) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = std::generic_category().message(errno);
        return std::nullopt;
    }
    std::string data;
    std::array<char, 8192> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            err = std::generic_category().message(errno);
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        data.append(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return data;
}

}  // namespace outbox::config

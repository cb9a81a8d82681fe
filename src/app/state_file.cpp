#include "app/state_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace outbox::app {
namespace {

constexpr const char* kHeader =
    "# outbox-relay: the replication slots this relay streamed from (docs/operations.md, \"The state "
    "file\").\n"
    "# A slot listed here that is missing on its server stops the relay instead of being created anew.\n"
    "# Remove a line only when you have decided how to recover the events after its LSN.\n";

std::string escape(const std::string& text) {
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.') {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("%{:02X}", c);
        }
    }
    return out;
}

std::optional<std::string> unescape(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        const auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        const int hi = hex(text[i + 1]);
        const int lo = hex(text[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

// An open file descriptor, closed on scope exit.
class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd& operator=(Fd&&) = delete;
    [[nodiscard]] int get() const noexcept { return fd_; }

private:
    int fd_;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw Error(ErrorKind::Config, fmt::format("state file {}: {}: {}", path, what, std::strerror(errno)));
}

// The lock file next to the state file: held while reading or rewriting it.
Fd lock(const std::string& path, int operation) {
    Fd fd(::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) fail(path, "cannot open its lock file " + path + ".lock");
    while (::flock(fd.get(), operation) != 0) {
        if (errno != EINTR) fail(path, "cannot lock it");
    }
    return fd;
}

void write_all(int fd, const std::string& text, const std::string& path) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(path, "cannot write it");
        }
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

StateFile::StateFile(std::string path) : path_(std::move(path)) {}

std::vector<KnownSlot> StateFile::read(int fd) const {
    std::string text;
    char buf[4096];
    while (true) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(path_, "cannot read it");
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    std::vector<KnownSlot> slots;
    std::istringstream lines(text);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
        if (line.empty() || line.front() == '#') continue;
        std::istringstream fields(line);
        std::string kind;
        std::string database;
        std::string lsn;
        KnownSlot known;
        fields >> kind >> known.system_id >> database >> known.slot >> known.timeline >> lsn;
        const auto parsed_lsn = Lsn::parse(lsn);
        const auto parsed_database = unescape(database);
        std::string rest;
        if (!fields || kind != "slot" || !parsed_lsn || !parsed_database || (fields >> rest)) {
            throw Error(
                ErrorKind::Config,
                fmt::format("state file {}:{}: expected \"slot <system id> <database> <slot> <timeline> "
                            "<LSN>\", got \"{}\"",
                            path_, number, line));
        }
        known.database = *parsed_database;
        known.confirmed = *parsed_lsn;
        slots.push_back(std::move(known));
    }
    return slots;
}

void StateFile::check_usable() const {
    const Fd guard = lock(path_, LOCK_EX);
    Fd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) fail(path_, "cannot open it for writing");
    (void)read(fd.get());
}

std::size_t StateFile::check_without_writing() const {
    const std::size_t slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    if (::access(dir.c_str(), W_OK | X_OK) != 0) fail(path_, "its directory " + dir + " is not writable");
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return 0;
        fail(path_, "cannot open it");
    }
    return read(fd.get()).size();
}

std::optional<KnownSlot> StateFile::find(const std::string& system_id, const std::string& database,
                                         const std::string& slot) const {
    const Fd guard = lock(path_, LOCK_SH);
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::nullopt;
        fail(path_, "cannot open it");
    }
    for (auto& known : read(fd.get())) {
        if (known.system_id == system_id && known.database == database && known.slot == slot) return known;
    }
    return std::nullopt;
}

void StateFile::remember(const KnownSlot& known, Durability durability) const {
    const Fd guard = lock(path_, LOCK_EX);
    std::vector<KnownSlot> slots;
    {
        Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() >= 0) {
            slots = read(fd.get());
        } else if (errno != ENOENT) {
            fail(path_, "cannot open it");
        }
    }
    bool replaced = false;
    for (auto& s : slots) {
        if (s.system_id == known.system_id && s.database == known.database && s.slot == known.slot) {
            s = known;
            replaced = true;
        }
    }
    if (!replaced) slots.push_back(known);
    std::string text = kHeader;
    for (const auto& s : slots) {
        text += fmt::format("slot {} {} {} {} {}\n", s.system_id, escape(s.database), s.slot, s.timeline,
                            s.confirmed.to_string());
    }
    const std::string temporary = path_ + ".tmp";
    {
        Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (fd.get() < 0) fail(path_, "cannot create " + temporary);
        write_all(fd.get(), text, path_);
        if (durability == Durability::Synced && ::fsync(fd.get()) != 0)
            fail(path_, "cannot fsync " + temporary);
    }
    if (::rename(temporary.c_str(), path_.c_str()) != 0) fail(path_, "cannot replace it with " + temporary);
    if (durability == Durability::Unsynced) return;
    // The rename itself must survive a crash: fsync the directory too.
    const std::size_t slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dirfd.get() >= 0) (void)::fsync(dirfd.get());
}

}  // namespace outbox::app

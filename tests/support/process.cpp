#include "support/process.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace outbox::test {
namespace {

[[noreturn]] void child_fail(const char* what) {
    // Only async-signal-safe calls between fork and exec.
    const char* err = std::strerror(errno);
    (void)!write(2, "spawn: ", 7);
    (void)!write(2, what, std::strlen(what));
    (void)!write(2, ": ", 2);
    (void)!write(2, err, std::strlen(err));
    (void)!write(2, "\n", 1);
    _exit(127);
}

}  // namespace

ChildProcess::ChildProcess(const SpawnOptions& options) {
    if (options.argv.empty()) throw std::runtime_error("spawn: empty argv");

    // Everything the child needs is prepared before fork: allocation after fork is unsafe.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('='));
        bool drop = options.env_set.count(name) > 0;
        for (const auto& u : options.env_unset) drop = drop || u == name;
        if (!drop) env_strings.push_back(std::move(entry));
    }
    for (const auto& [k, v] : options.env_set) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = options.argv;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int out_fd = -1;
    int err_fd = -1;
    if (!options.stdout_path.empty()) {
        out_fd = ::open(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (out_fd < 0) throw std::runtime_error("spawn: cannot open " + options.stdout_path);
    }
    if (options.stderr_path == "=stdout") {
        err_fd = out_fd;
    } else if (!options.stderr_path.empty()) {
        err_fd = ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (err_fd < 0) throw std::runtime_error("spawn: cannot open " + options.stderr_path);
    }
    const pid_t parent = getpid();
    // Signals stay blocked from before fork until the child has reset every handler: a signal
    // sent to a just-spawned child must not run the test framework's handlers in the copy.
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    const pid_t pid = fork();
    if (pid < 0) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        for (int signo = 1; signo < NSIG; ++signo) {
            if (signo != SIGKILL && signo != SIGSTOP) ::signal(signo, SIG_DFL);
        }
        setpgid(0, 0);  // own process group: signals to the test runner do not reach it directly
        if (out_fd >= 0 && dup2(out_fd, 1) < 0) child_fail("dup2 stdout");
        if (err_fd >= 0 && dup2(err_fd, 2) < 0) child_fail("dup2 stderr");
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        if (!options.working_dir.empty() && chdir(options.working_dir.c_str()) != 0) child_fail("chdir");
        if (options.run_as_gid) {
            if (setgroups(0, nullptr) != 0) child_fail("setgroups");
            if (setgid(*options.run_as_gid) != 0) child_fail("setgid");
        }
        if (options.run_as_uid && setuid(*options.run_as_uid) != 0) child_fail("setuid");
        // After the credential change: changing uid clears the parent-death signal.
        if (options.parent_death_signal != 0) {
            if (prctl(PR_SET_PDEATHSIG, options.parent_death_signal) != 0) child_fail("prctl");
            if (getppid() != parent) _exit(126);  // the parent already died
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execvpe(argv[0], argv.data(), envp.data());
        child_fail(argv[0]);
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0 && err_fd != out_fd) ::close(err_fd);
    pid_ = pid;
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !status_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_), status_(other.status_) {
    other.pid_ = -1;
    other.status_.reset();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
        ChildProcess dying(std::move(*this));
        pid_ = other.pid_;
        status_ = other.status_;
        other.pid_ = -1;
        other.status_.reset();
    }
    return *this;
}

void ChildProcess::reap_status(int status) {
    status_ = status;
}

bool ChildProcess::running() {
    if (pid_ <= 0 || status_) return false;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        reap_status(status);
        return false;
    }
    return true;
}

void ChildProcess::signal(int signo) const {
    if (pid_ > 0 && !status_) ::kill(pid_, signo);
}

std::optional<int> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
}

int ChildProcess::stop(int signo, std::chrono::milliseconds grace) {
    if (pid_ <= 0) return -1;
    if (running()) {
        signal(signo);
        if (!wait_for(grace)) {
            signal(SIGKILL);
            wait_for(std::chrono::seconds(30));
        }
    }
    return status_.value_or(-1);
}

int ChildProcess::exit_code() const noexcept {
    if (!status_) return -1;
    if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
    if (WIFSIGNALED(*status_)) return 128 + WTERMSIG(*status_);
    return -1;
}

int run_command(const SpawnOptions& options, std::string* output, std::chrono::milliseconds timeout) {
    SpawnOptions opts = options;
    char tmpl[] = "/tmp/outbox-cmd-XXXXXX";
    int fd = -1;
    if (output != nullptr) {
        fd = mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        opts.stdout_path = tmpl;
    }
    ChildProcess child(opts);
    const auto status = child.wait_for(timeout);
    if (!status) {
        child.stop(SIGKILL, std::chrono::seconds(5));
        if (output != nullptr) ::unlink(tmpl);
        throw std::runtime_error("command timed out: " + options.argv.front());
    }
    if (output != nullptr) {
        *output = read_file(tmpl);
        ::unlink(tmpl);
    }
    return child.exit_code();
}

int free_tcp_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind to port 0 failed");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace outbox::test

#include "metrics/http_server.h"

#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <system_error>
#include <utility>
#include <vector>

#include "common/error.h"

namespace outbox::metrics {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The event loop wakes at least once a second; a minute without a turn means it is stuck.
constexpr std::int64_t kStuckAfterMs = 60'000;
// After the answer, what a client may still send before the close: unread bytes would turn the
// close into a reset, and a reset can destroy the answer before the client has read it.
constexpr auto kLingerTime = 1s;
constexpr std::size_t kLingerBytes = std::size_t{64} * 1024;
// accept() out of descriptors or memory: pause accepting rather than spin on a listening socket
// that stays readable.
constexpr auto kAcceptPause = 100ms;
// At most one warning per minute about a limit; the counters count every case.
constexpr auto kWarnEvery = 60s;

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

std::string errno_text(int err) {
    return std::system_category().message(err);
}

// Owns a file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    [[nodiscard]] int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Internal Server Error";
    }
}

// IMF-fixdate (RFC 9110 5.6.7), independent of the locale.
std::string http_date() {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} GMT", kDays[utc.tm_wday % 7], utc.tm_mday,
                       kMonths[utc.tm_mon % 12], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

// A whole response: every answer closes its connection, and HEAD gets the headers of GET.
std::string http_response(int status, std::string_view content_type, std::string_view body, bool with_body,
                          std::string_view extra_headers = {}) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
        "{}Connection: close\r\n\r\n",
        status, reason_phrase(status), http_date(), content_type, body.size(), extra_headers);
    if (with_body) out += body;
    return out;
}

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// Binds and listens on host:port (a name or an address; the first address that works).
Fd listen_on(const std::string& host, std::uint16_t port) {
    const std::string where =
        (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    const auto fail = [&](const std::string& why) {
        throw Error(ErrorKind::Config, "metrics.listen: cannot listen on " + where + ": " + why);
    };
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0)
        fail(::gai_strerror(rc));
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
    std::string last_error = "no address";
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
        Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
        if (!fd) {
            last_error = errno_text(errno);
            continue;
        }
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
            last_error = errno_text(errno);
            continue;
        }
        return fd;
    }
    fail(last_error);
    return {};
}

int bound_port(const Fd& listener) {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &size) != 0) return 0;
    if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

struct Connection {
    enum class State {
        Reading,    // the request head, until limits.request_timeout after accept
        Writing,    // the answer, until limits.response_timeout after the request
        Lingering,  // answered and half-closed: reading what the client still sends, briefly
    };
    Fd fd;
    State state = State::Reading;
    Clock::time_point deadline;
    std::string in;        // the request head so far, at most limits.max_request_head bytes
    std::string out;       // the answer
    std::size_t done = 0;  // bytes of `out` sent, or bytes read while lingering
};

}  // namespace

class HttpServer::Loop {
public:
    Loop(Fd listener, RelayMetrics& metrics, const HealthState& health, HttpLimits limits)
        : listener_(std::move(listener)),
          wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
          metrics_(metrics),
          health_(health),
          limits_(limits) {
        if (!wake_) throw Error(ErrorKind::Fatal, "metrics HTTP server: eventfd: " + errno_text(errno));
        connections_.reserve(limits_.max_connections + 1);
    }

    // From any thread: run() returns at its next poll(), which this wakes.
    void stop() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto written = ::write(wake_.get(), &one, sizeof one);
    }

    void run() noexcept {
        try {
            serve();
        } catch (const std::exception& e) {
            spdlog::error("metrics HTTP server stopped: {}", e.what());
        }
    }

private:
    void serve() {
        std::vector<pollfd> polled;
        while (true) {
            Clock::time_point next = Clock::time_point::max();
            const bool accepting = Clock::now() >= accept_paused_until_;
            if (!accepting) next = accept_paused_until_;
            polled.clear();
            polled.push_back({wake_.get(), POLLIN, 0});
            polled.push_back({accepting ? listener_.get() : -1, POLLIN, 0});  // poll() skips fd -1
            for (const Connection& c : connections_) {
                polled.push_back(
                    {c.fd.get(), static_cast<short>(c.state == Connection::State::Writing ? POLLOUT : POLLIN),
                     0});
                next = std::min(next, c.deadline);
            }
            int timeout_ms = -1;
            if (next != Clock::time_point::max()) {
                const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
                timeout_ms = static_cast<int>(std::clamp<std::int64_t>(wait, 0, INT_MAX));
            }
            if (::poll(polled.data(), polled.size(), timeout_ms) < 0) {
                if (errno == EINTR) continue;
                throw Error(ErrorKind::Fatal, "poll: " + errno_text(errno));
            }
            if (polled[0].revents != 0) return;  // stop()
            const auto now = Clock::now();
            for (std::size_t i = 0; i < connections_.size(); ++i) {
                if (polled[i + 2].revents != 0) serve_ready(connections_[i], now);
            }
            for (Connection& c : connections_) {
                if (c.fd && now >= c.deadline) expire(c, now);
            }
            std::erase_if(connections_, [](const Connection& c) { return !c.fd; });
            if ((polled[1].revents & POLLIN) != 0) accept_new(now);
        }
    }

    void serve_ready(Connection& c, Clock::time_point now) {
        try {
            switch (c.state) {
                case Connection::State::Reading: receive(c, now); break;
                case Connection::State::Writing: send_answer(c, now); break;
                case Connection::State::Lingering: linger(c); break;
            }
        } catch (const std::exception& e) {  // e.g. out of memory: this connection only
            spdlog::warn("metrics HTTP server: closing a connection: {}", e.what());
            c.fd.reset();
        }
    }

    // Accepts what is waiting, a bounded batch per turn so that a connection accepted in a
    // flood is read at least once before the flood can push it out.
    void accept_new(Clock::time_point now) {
        const std::size_t batch = std::max<std::size_t>(1, limits_.max_connections / 2);
        for (std::size_t i = 0; i < batch; ++i) {
            Fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!fd) {
                const int err = errno;
                if (err == EAGAIN || err == EWOULDBLOCK) return;
                if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                    accept_paused_until_ = now + kAcceptPause;
                    warn(last_accept_warning_, now, "cannot accept connections: {}", errno_text(err));
                    return;
                }
                continue;  // that connection only (ECONNABORTED, EPROTO, ...)
            }
            if (connections_.size() >= limits_.max_connections) make_room(now);
            connections_.push_back(
                Connection{.fd = std::move(fd), .deadline = now + limits_.request_timeout});
        }
    }

    // Closes one connection for a new one: answered ones first, then the oldest still without
    // a complete request (idle or slow), and only then the oldest slow reader of an answer.
    void make_room(Clock::time_point now) {
        auto victim = connections_.end();
        for (const auto state :
             {Connection::State::Lingering, Connection::State::Reading, Connection::State::Writing}) {
            victim = std::find_if(connections_.begin(), connections_.end(),
                                  [state](const Connection& c) { return c.state == state; });
            if (victim != connections_.end()) break;
        }
        if (victim == connections_.end()) return;
        if (victim->state != Connection::State::Lingering) {
            metrics_.http_rejected.connection_limit.Increment();
            warn(last_limit_warning_, now,
                 "{} connections open (the limit): closing the oldest idle, slow or not reading one",
                 limits_.max_connections);
        }
        connections_.erase(victim);
    }

    void receive(Connection& c, Clock::time_point now) {
        char buffer[4096];
        const std::size_t room = std::min(sizeof buffer, limits_.max_request_head - c.in.size());
        const ssize_t n = ::recv(c.fd.get(), buffer, std::max<std::size_t>(room, 1), 0);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) c.fd.reset();
            return;
        }
        c.in.append(buffer, std::min(static_cast<std::size_t>(n), room));
        const HttpParseResult parsed = parse_http_request(c.in, limits_.max_request_head);
        if (std::holds_alternative<HttpNeedMore>(parsed)) return;
        if (const auto* error = std::get_if<HttpRequestError>(&parsed)) {
            (error->status == 414 || error->status == 431 ? metrics_.http_rejected.too_large
                                                          : metrics_.http_rejected.malformed)
                .Increment();
            start_answer(c, http_response(error->status, kTextPlain, std::string(error->reason) + "\n", true),
                         now);
            return;
        }
        start_answer(c, answer(std::get<HttpRequest>(parsed)), now);
    }

    std::string answer(const HttpRequest& request) {
        const bool head = request.method == "HEAD";
        const HttpRoute route = route_http_request(request);
        if (route == HttpRoute::NotFound) return http_response(404, kTextPlain, "not found\n", !head);
        if (route == HttpRoute::MethodNotAllowed) {
            return http_response(405, kTextPlain, "only GET and HEAD\n", true, "Allow: GET, HEAD\r\n");
        }
        if (route == HttpRoute::Metrics) {
            return http_response(200, kPrometheusText,
                                 prometheus::TextSerializer().Serialize(metrics_.registry().Collect()),
                                 !head);
        }
        if (route == HttpRoute::Healthz) {
            const std::int64_t idle = steady_ms() - health_.last_turn_ms.load();
            if (idle < kStuckAfterMs) return http_response(200, kTextPlain, "ok\n", !head);
            return http_response(503, kTextPlain,
                                 "event loop has not turned for " + std::to_string(idle / 1000) + " s\n",
                                 !head);
        }
        const bool streaming = health_.streaming.load();
        const bool kafka = health_.kafka_reachable.load();
        if (streaming && kafka) return http_response(200, kTextPlain, "ready\n", !head);
        std::string why;
        if (!streaming) why += "not streaming from PostgreSQL\n";
        if (!kafka) why += "Kafka not reachable\n";
        return http_response(503, kTextPlain, why, !head);
    }

    void start_answer(Connection& c, std::string response, Clock::time_point now) {
        std::string().swap(c.in);
        c.out = std::move(response);
        c.done = 0;
        c.state = Connection::State::Writing;
        c.deadline = now + limits_.response_timeout;
        send_answer(c, now);
    }

    void send_answer(Connection& c, Clock::time_point now) {
        while (c.done < c.out.size()) {
            const ssize_t n = ::send(c.fd.get(), c.out.data() + c.done, c.out.size() - c.done, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) c.fd.reset();
                return;
            }
            c.done += static_cast<std::size_t>(n);
        }
        std::string().swap(c.out);
        ::shutdown(c.fd.get(), SHUT_WR);
        c.state = Connection::State::Lingering;
        c.done = 0;
        c.deadline = now + kLingerTime;
    }

    void linger(Connection& c) {
        char buffer[4096];
        const ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
        if (n > 0) {
            c.done += static_cast<std::size_t>(n);
            if (c.done > kLingerBytes) c.fd.reset();
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.fd.reset();
        }
    }

    // The connection's deadline passed. A request begun and not finished is answered 408 (with
    // the usual bounded linger, so the answer is not lost to a reset); a connection that sent
    // nothing is closed; an answer not read by then is cut.
    void expire(Connection& c, Clock::time_point now) {
        if (c.state == Connection::State::Reading) {
            metrics_.http_rejected.timeout.Increment();
            if (!c.in.empty()) {
                start_answer(c, http_response(408, kTextPlain, "the request did not arrive in time\n", true),
                             now);
                return;
            }
        }
        c.fd.reset();
    }

    template <typename... Args>
    static void warn(Clock::time_point& last, Clock::time_point now, fmt::format_string<Args...> format,
                     Args&&... args) {
        if (last != Clock::time_point{} && now - last < kWarnEvery) return;
        last = now;
        spdlog::warn("metrics HTTP server: {}", fmt::format(format, std::forward<Args>(args)...));
    }

    Fd listener_;
    Fd wake_;
    RelayMetrics& metrics_;
    const HealthState& health_;
    const HttpLimits limits_;
    std::vector<Connection> connections_;  // in the order they were accepted
    Clock::time_point accept_paused_until_{};
    Clock::time_point last_limit_warning_{};
    Clock::time_point last_accept_warning_{};
};

HttpServer::HttpServer(const std::string& host, std::uint16_t port, RelayMetrics& metrics,
                       const HealthState& health, HttpLimits limits) {
    Fd listener = listen_on(host, port);
    port_ = bound_port(listener);
    loop_ = std::make_unique<Loop>(std::move(listener), metrics, health, limits);
    thread_ = std::thread([loop = loop_.get()] {
        ::pthread_setname_np(::pthread_self(), "metrics-http");
        loop->run();
    });
}

HttpServer::~HttpServer() {
    loop_->stop();
    thread_.join();
}

}  // namespace outbox::metrics

#pragma once

// The request head of the metrics HTTP server, parsed by a pure function (bytes in, request or
// error out: no I/O, no allocation, no exceptions) so that unit tests and fuzz targets can call it
// directly. Only what the server needs is returned; the syntax of the whole head is checked.
// Reference: RFC 9112 (HTTP/1.1 message syntax), sections 2.2, 3 and 5.

#include <cstddef>
#include <string_view>
#include <variant>

namespace outbox::metrics {

// Request line + header fields + the empty line that ends them, in bytes.
inline constexpr std::size_t kMaxRequestHead = 8192;

// A complete, well-formed request head. The views point into the bytes given to the parser
// (except the path "/" of an absolute-form target that has none, a static text).
struct HttpRequest {
    std::string_view method;    // a token, case-sensitive ("GET", "HEAD", ...)
    std::string_view target;    // the request-target as sent
    std::string_view path;      // of an origin-form ("/metrics?x") or absolute-form target; "*" as sent
    std::string_view query;     // after the '?', without it; empty when there is none
    int version_minor = 1;      // HTTP/1.<minor>
    std::size_t head_size = 0;  // bytes up to and including the empty line; body bytes may follow
};

// The head is not complete yet and still within the size limit: read more.
struct HttpNeedMore {};

// The head cannot become a request the server answers: answer `status` and close.
struct HttpRequestError {
    int status = 400;         // 400, 414 (request line too long), 431 (head too long), 505
    std::string_view reason;  // a short static text for the response body (never the input)
};

using HttpParseResult = std::variant<HttpNeedMore, HttpRequest, HttpRequestError>;

// Parses the request head at the start of `bytes`. Accepts HTTP/1.0 and 1.x; lines end in CRLF
// or a bare LF (RFC 9112 2.2), empty lines before the request line are skipped. An HTTP/1.1
// request needs exactly one Host field. Errors are reported as soon as they are certain: a bad
// request line does not wait for the rest of the head, a head that has not ended within
// `max_head` bytes is 414 (still in the request line) or 431.
[[nodiscard]] HttpParseResult parse_http_request(std::string_view bytes,
                                                 std::size_t max_head = kMaxRequestHead) noexcept;

// What the server answers a well-formed request with: exact paths only (no prefix matching, the
// query is ignored), GET and HEAD only; an unknown path is 404 whatever the method. Pure, so the
// fuzz target checks it beside the parser.
enum class HttpRoute { Metrics, Healthz, Readyz, NotFound, MethodNotAllowed };
[[nodiscard]] HttpRoute route_http_request(const HttpRequest& request) noexcept;

}  // namespace outbox::metrics

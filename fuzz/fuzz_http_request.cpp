// libFuzzer target: the metrics HTTP server's request handling without its sockets:
// metrics::parse_http_request on the bytes a client sent, then metrics::route_http_request on
// what it accepted (the server's answer: which path, 404 or 405).
//
// Input: byte 0 picks the head limit the server is configured with (bits0-1: kMaxRequestHead,
// 16, 64, 512 bytes); the rest is what the client sent, as the server's buffer holds it.
//
// Expected: any HttpRequestError for malformed input. Findings: a sanitizer report, and the
// invariants checked here (std::abort):
//   - a request's views (method, target, path, query) lie inside the input, its head within the
//     limit and the input; an error's status is 400, 414, 431 or 505 with a static reason (never
//     a view of the input); "need more" only while the input is shorter than the limit;
//   - the server parses its buffer again after every read, so the answer must not depend on how
//     the bytes were cut: every prefix of a complete head needs more bytes, the head alone gives
//     the same request, and once a prefix is an error every longer input is that error too;
//   - the route: exact paths only, GET and HEAD only, as route_http_request documents.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "finding.h"
#include "metrics/http_request.h"

using namespace outbox::metrics;

namespace {

bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool same_request(const HttpRequest& a, const HttpRequest& b) {
    return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
           a.version_minor == b.version_minor && a.head_size == b.head_size;
}

void check_request(const HttpRequest& r, std::string_view input, std::size_t max_head) {
    FUZZ_CHECK(r.head_size > 0 && r.head_size <= std::min(input.size(), max_head));
    const std::string_view head = input.substr(0, r.head_size);
    FUZZ_CHECK(head.back() == '\n');
    // (an absolute-form target without a path has the path "/", a static text)
    FUZZ_CHECK(inside(r.method, head) && inside(r.target, head) && inside(r.query, head));
    FUZZ_CHECK(r.path == "/" || inside(r.path, r.target));
    FUZZ_CHECK(!r.method.empty() && !r.target.empty() && !r.path.empty());
    FUZZ_CHECK(r.version_minor >= 0 && r.version_minor <= 9);
    FUZZ_CHECK(r.target.find_first_of(" \r\n#") == std::string_view::npos);
    // The path is the target's (origin-form) or the part after the authority (absolute-form,
    // "/" when it has none).
    FUZZ_CHECK(r.path == "*" || r.path.front() == '/');
    FUZZ_CHECK(r.path.find('?') == std::string_view::npos);

    const HttpRoute route = route_http_request(r);
    const bool known = r.path == "/metrics" || r.path == "/healthz" || r.path == "/readyz";
    const bool allowed = r.method == "GET" || r.method == "HEAD";
    switch (route) {
        case HttpRoute::Metrics: FUZZ_CHECK(r.path == "/metrics" && allowed); break;
        case HttpRoute::Healthz: FUZZ_CHECK(r.path == "/healthz" && allowed); break;
        case HttpRoute::Readyz: FUZZ_CHECK(r.path == "/readyz" && allowed); break;
        case HttpRoute::NotFound: FUZZ_CHECK(!known); break;
        case HttpRoute::MethodNotAllowed: FUZZ_CHECK(known && !allowed); break;
        default: finding("route out of range");
    }
}

void check_error(const HttpRequestError& e, std::string_view input) {
    FUZZ_CHECK(e.status == 400 || e.status == 414 || e.status == 431 || e.status == 505);
    FUZZ_CHECK(!e.reason.empty());
    // The reason goes into the response body: a static text, never the client's bytes.
    FUZZ_CHECK(e.reason.data() + e.reason.size() <= input.data() ||
               e.reason.data() >= input.data() + input.size());
    FUZZ_CHECK(e.reason.find_first_of("\r\n") == std::string_view::npos);
}

// The prefixes cut at (a sample, to keep the target fast): the first bytes, both sides of every
// line end (where the parser's state changes) up to 16 of them, the last bytes, and a few between.
template <typename F>
void for_prefixes(std::string_view bytes, F&& f) {
    const std::size_t size = bytes.size();
    for (std::size_t k = 0; k < std::min<std::size_t>(size, 24); ++k) f(k);
    std::size_t line_ends = 0;
    for (std::size_t lf = bytes.find('\n', 24); lf != std::string_view::npos && line_ends < 16;
         lf = bytes.find('\n', lf + 1), ++line_ends) {
        f(lf);
        if (lf > 0) f(lf - 1);
    }
    for (std::size_t k = size > 26 ? size - 2 : 24; k < size; ++k) f(k);
    for (std::size_t k = 24; k < size; k += size / 8 + 1) f(k);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static constexpr std::size_t kLimits[] = {kMaxRequestHead, 16, 64, 512};
    const std::size_t max_head = kLimits[data[0] & 3];
    // The server never holds more than the limit; what it holds is all the parser sees.
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, std::min(size - 1, max_head));

    const HttpParseResult whole = parse_http_request(input, max_head);
    FUZZ_CHECK(!whole.valueless_by_exception());
    if (std::holds_alternative<HttpNeedMore>(whole)) FUZZ_CHECK(input.size() < max_head);

    if (const auto* request = std::get_if<HttpRequest>(&whole)) {
        check_request(*request, input, max_head);
        const std::string_view head = input.substr(0, request->head_size);
        const HttpParseResult alone = parse_http_request(head, max_head);
        const auto* again = std::get_if<HttpRequest>(&alone);
        FUZZ_CHECK(again != nullptr && same_request(*again, *request));
        for_prefixes(head, [&](std::size_t k) {
            FUZZ_CHECK(
                std::holds_alternative<HttpNeedMore>(parse_http_request(input.substr(0, k), max_head)));
        });
        return 0;
    }

    // An error (or still incomplete): find the shortest prefix that is an error; every longer
    // prefix, and the whole input, must give the same status.
    const auto* error = std::get_if<HttpRequestError>(&whole);
    if (error != nullptr) check_error(*error, input);
    for_prefixes(input, [&](std::size_t k) {
        const HttpParseResult part = parse_http_request(input.substr(0, k), max_head);
        FUZZ_CHECK(!std::holds_alternative<HttpRequest>(part));  // the whole input has no complete head
        if (const auto* early = std::get_if<HttpRequestError>(&part)) {
            check_error(*early, input);
            FUZZ_CHECK(error != nullptr);
            // A limit error can only come with the whole input; a 400 or 505 stays what it was.
            FUZZ_CHECK(early->status == error->status);
        }
    });
    return 0;
}

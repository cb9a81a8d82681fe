// metrics::parse_http_request: the metrics server's request head parser (bytes in, request or
// error out).

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "metrics/http_request.h"

using namespace outbox::metrics;

namespace {

HttpRequest parsed(std::string_view bytes) {
    const HttpParseResult result = parse_http_request(bytes);
    const auto* request = std::get_if<HttpRequest>(&result);
    INFO("input: " << std::string(bytes));
    REQUIRE(request != nullptr);
    return *request;
}

int error_status(std::string_view bytes, std::size_t max_head = kMaxRequestHead) {
    const HttpParseResult result = parse_http_request(bytes, max_head);
    if (const auto* error = std::get_if<HttpRequestError>(&result)) {
        CHECK(!error->reason.empty());
        return error->status;
    }
    return std::holds_alternative<HttpNeedMore>(result) ? 0 : 200;
}

bool needs_more(std::string_view bytes, std::size_t max_head = kMaxRequestHead) {
    return std::holds_alternative<HttpNeedMore>(parse_http_request(bytes, max_head));
}

}  // namespace

TEST_CASE("http request: a GET with Host gives method, path, query, version and head size") {
    const std::string bytes =
        "GET /metrics?name=x HTTP/1.1\r\nHost: 127.0.0.1:9187\r\nAccept: */*\r\n\r\nBODY";
    const HttpRequest r = parsed(bytes);
    CHECK(r.method == "GET");
    CHECK(r.target == "/metrics?name=x");
    CHECK(r.path == "/metrics");
    CHECK(r.query == "name=x");
    CHECK(r.version_minor == 1);
    CHECK(r.head_size == bytes.size() - 4);  // what follows the head is not part of it
}

TEST_CASE("http request: HTTP/1.0 needs no Host, bare LF line ends and leading empty lines are accepted") {
    CHECK(parsed("GET /healthz HTTP/1.0\r\n\r\n").version_minor == 0);
    CHECK(parsed("GET /healthz HTTP/1.1\nhost: x\n\n").path == "/healthz");
    CHECK(parsed("\r\n\r\nHEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n").method == "HEAD");
    CHECK(parsed("GET /healthz HTTP/1.1\r\nHOST:x\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\t\r\n\r\n").path ==
          "/healthz");
    // A later minor version of 1.x is answered as 1.1 (RFC 9110 2.5).
    CHECK(parsed("GET / HTTP/1.9\r\nHost: x\r\n\r\n").version_minor == 9);
}

TEST_CASE("http request: absolute-form and asterisk-form targets") {
    HttpRequest r = parsed("GET http://relay:9187/metrics?a=1 HTTP/1.1\r\nHost: relay:9187\r\n\r\n");
    CHECK(r.path == "/metrics");
    CHECK(r.query == "a=1");
    r = parsed("GET http://relay:9187 HTTP/1.1\r\nHost: relay\r\n\r\n");
    CHECK(r.path == "/");
    r = parsed("GET https://relay?q HTTP/1.1\r\nHost: relay\r\n\r\n");
    CHECK(r.path == "/");
    CHECK(r.query == "q");
    CHECK(parsed("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").path == "*");
    // Paths are not decoded or normalized: the server compares them byte for byte.
    CHECK(parsed("GET /%6detrics HTTP/1.1\r\nHost: x\r\n\r\n").path == "/%6detrics");
    CHECK(parsed("GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n").path == "/metrics/");
}

TEST_CASE("http request: an unfinished head needs more bytes, byte by byte") {
    const std::string full = "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: Prometheus/2.42.0\r\n\r\n";
    for (std::size_t n = 0; n < full.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        CHECK(needs_more(std::string_view(full).substr(0, n)));
    }
    CHECK(parsed(full).head_size == full.size());
}

TEST_CASE("http request: malformed request lines are 400, as soon as they are certain") {
    for (const std::string_view bad : {
             "GET\r\n\r\n",                                      // no target
             "GET /metrics\r\n\r\n",                             // HTTP/0.9: no version
             "GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",        // two spaces
             "GET /metrics HTTP/1.1 \r\nHost: x\r\n\r\n",        // trailing space
             "G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",         // method not a token
             " GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",        // leading space
             "GET metrics HTTP/1.1\r\nHost: x\r\n\r\n",          // neither a path nor an absolute URI
             "GET ://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",     // no scheme
             "GET http:///metrics HTTP/1.1\r\nHost: x\r\n\r\n",  // empty authority
             "GET /met\x01rics HTTP/1.1\r\nHost: x\r\n\r\n",     // control character in the target
             "GET /m\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",       // non-ASCII target
             "GET /metrics#frag HTTP/1.1\r\nHost: x\r\n\r\n",    // fragment
             "GET /metrics http/1.1\r\nHost: x\r\n\r\n",         // version is case-sensitive
             "GET /metrics HTTP/1.10\r\nHost: x\r\n\r\n",        // one digit each
             "GET /metrics HTTP/1\r\nHost: x\r\n\r\n",
             "GET /metrics HTTP/1.1\rHost: x\r\n\r\n",  // bare CR
         }) {
        INFO("input: " << std::string(bad));
        CHECK(error_status(bad) == 400);
    }
    // Known to be wrong before the head ends: answered without waiting for the deadline.
    static constexpr char kClientHello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";  // TLS
    CHECK(error_status(std::string_view(kClientHello, sizeof kClientHello - 1)) == 400);
    CHECK(error_status("GET /metrics HTTP/1.1\r\n") == 0);
    CHECK(error_status("GET /metrics HTTP/1.1\r") == 0);  // its LF may follow
    CHECK(error_status("GET /metrics HTTP/1.1\rX") == 400);
    CHECK(error_status("GET /met rics HTTP/1.1") == 400);
    CHECK(error_status("GET /metrics XTTP") == 400);
    CHECK(error_status("GET /metrics HTTP/1.1\r\nHost x\r\n") == 400);  // a bad header line
}

TEST_CASE("http request: other HTTP versions are 505") {
    CHECK(error_status("GET /metrics HTTP/2.0\r\n\r\n") == 505);
    CHECK(error_status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505);  // the HTTP/2 connection preface
    CHECK(error_status("GET /metrics HTTP/0.9\r\n\r\n") == 505);
}

TEST_CASE("http request: malformed header fields are 400") {
    for (const std::string_view bad : {
             "GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nName : value\r\n\r\n",        // space before the colon
             "GET / HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n",             // empty name
             "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",  // obsolete line folding
             "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fz\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rz\r\n\r\n",  // bare CR in a value
             "GET / HTTP/1.1\r\n\r\n",                          // HTTP/1.1 without Host
             "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    // two Hosts
             "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n",
         }) {
        INFO("input: " << std::string(bad));
        CHECK(error_status(bad) == 400);
    }
    static constexpr char kNul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0z\r\n\r\n";
    CHECK(error_status(std::string_view(kNul, sizeof kNul - 1)) == 400);
}

TEST_CASE("http request: a head that does not end within the limit is 414 in the request line, else 431") {
    const std::string long_target = "GET /" + std::string(kMaxRequestHead, 'a');
    CHECK(error_status(long_target) == 414);
    CHECK(needs_more(long_target.substr(0, kMaxRequestHead - 1)));
    const std::string prefix = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    const std::string long_head = prefix + std::string(kMaxRequestHead, 'a');
    CHECK(error_status(long_head) == 431);
    CHECK(needs_more(long_head.substr(0, kMaxRequestHead - 1)));
    // Many small header lines count as much as one long one.
    std::string many = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    while (many.size() < kMaxRequestHead) many += "X-A: b\r\n";
    CHECK(error_status(many + "\r\n") == 431);
    // Endless empty lines before a request line never become one.
    CHECK(error_status(std::string(kMaxRequestHead, '\n')) == 414);
}

TEST_CASE("http request: a head of exactly the limit is accepted, one byte more is not") {
    const std::string start = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    const std::string end = "\r\n\r\n";
    const std::string exact = start + std::string(kMaxRequestHead - start.size() - end.size(), 'a') + end;
    REQUIRE(exact.size() == kMaxRequestHead);
    CHECK(parsed(exact + "trailing body").head_size == kMaxRequestHead);
    const std::string over = start + std::string(kMaxRequestHead - start.size() - end.size() + 1, 'a') + end;
    CHECK(error_status(over) == 431);
    // The limit is a parameter.
    CHECK(error_status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 16) == 414);
    CHECK(error_status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 30) == 431);
}

TEST_CASE(
    "http route: exact paths, the query ignored, only GET and HEAD, an unknown path is 404 for any method") {
    const auto route = [](std::string_view bytes) { return route_http_request(parsed(bytes)); };
    CHECK(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::Metrics);
    CHECK(route("HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::Metrics);
    CHECK(route("GET http://x:9187/healthz HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::Healthz);
    CHECK(route("GET /readyz HTTP/1.0\r\n\r\n") == HttpRoute::Readyz);
    CHECK(route("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::MethodNotAllowed);
    CHECK(route("get /metrics HTTP/1.1\r\nHost: x\r\n\r\n") ==
          HttpRoute::MethodNotAllowed);  // case-sensitive
    CHECK(route("GET /metrics/extra HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::NotFound);
    CHECK(route("GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::NotFound);
    CHECK(route("GET /Metrics HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::NotFound);
    CHECK(route("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::NotFound);
    CHECK(route("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::NotFound);
    CHECK(route("DELETE /nowhere HTTP/1.1\r\nHost: x\r\n\r\n") == HttpRoute::NotFound);
}

#include "metrics/http_request.h"

#include <algorithm>
#include <optional>

namespace outbox::metrics {
namespace {

constexpr std::string_view kVersionPrefix = "HTTP/";

bool is_alpha(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_"
// / "`" / "|" / "~" / DIGIT / ALPHA
bool is_tchar(unsigned char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// A request-target is visible ASCII (RFC 3986 characters; a fragment is never sent).
bool is_target_char(unsigned char c) {
    return c > 0x20 && c < 0x7F && c != '#';
}

// RFC 9110 5.5: field-value characters are VCHAR, obs-text, SP and HTAB; never a control.
bool is_field_value_char(unsigned char c) {
    return c == '\t' || c == ' ' || (c > 0x20 && c != 0x7F);
}

bool all_of(std::string_view text, bool (*pred)(unsigned char)) {
    return std::all_of(text.begin(), text.end(),
                       [pred](char c) { return pred(static_cast<unsigned char>(c)); });
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
               return lower(x) == lower(y);
           });
}

HttpRequestError bad(std::string_view why) {
    return {400, why};
}

// Splits a target into path and query; absolute-form ("http://host/path?q") keeps only its path.
std::optional<HttpRequestError> split_target(std::string_view target, HttpRequest& out) {
    if (target == "*") {  // asterisk-form (OPTIONS *): no resource here, answered 404
        out.path = target;
        return std::nullopt;
    }
    if (target.front() != '/') {
        // absolute-form: scheme "://" authority [path-abempty] ["?" query]; servers must accept it.
        const std::size_t sep = target.find("://");
        if (sep == std::string_view::npos || sep == 0 || !is_alpha(static_cast<unsigned char>(target[0])) ||
            !all_of(target.substr(0, sep), [](unsigned char c) {
                return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
            })) {
            return bad("the request target is neither a path nor an absolute URI");
        }
        const std::string_view after = target.substr(sep + 3);
        const std::size_t path_start = after.find_first_of("/?");
        if (after.empty() || path_start == 0) return bad("the request target has an empty host");
        if (path_start == std::string_view::npos) {
            out.path = "/";
            return std::nullopt;
        }
        target = after.substr(path_start);
        if (target.front() == '?') {
            out.path = "/";
            out.query = target.substr(1);
            return std::nullopt;
        }
    }
    const std::size_t question = target.find('?');
    out.path = target.substr(0, question);
    if (question != std::string_view::npos) out.query = target.substr(question + 1);
    return std::nullopt;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 3), single spaces.
std::optional<HttpRequestError> parse_request_line(std::string_view line, HttpRequest& out) {
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return bad("the request line has no request target");
    const std::string_view method = line.substr(0, sp1);
    if (method.empty() || !all_of(method, is_tchar)) return bad("the method is not a token");
    const std::string_view rest = line.substr(sp1 + 1);
    const std::size_t sp2 = rest.find(' ');
    if (sp2 == std::string_view::npos) return bad("the request line has no HTTP version");
    const std::string_view target = rest.substr(0, sp2);
    const std::string_view version = rest.substr(sp2 + 1);
    if (target.empty() || !all_of(target, is_target_char)) return bad("the request target is not a URI");
    if (version.size() != kVersionPrefix.size() + 3 || !version.starts_with(kVersionPrefix) ||
        !is_digit(static_cast<unsigned char>(version[5])) || version[6] != '.' ||
        !is_digit(static_cast<unsigned char>(version[7]))) {
        return bad("the HTTP version is malformed");
    }
    if (version[5] != '1') return HttpRequestError{505, "only HTTP/1.0 and HTTP/1.1 are served"};
    out.method = method;
    out.target = target;
    out.version_minor = version[7] - '0';
    return split_target(target, out);
}

// A request line that has not ended yet: fails as soon as its prefix cannot become one (a TLS
// handshake, binary noise), so such a client is answered at once instead of at the deadline.
std::optional<HttpRequestError> check_partial_request_line(std::string_view partial) {
    if (!partial.empty() && partial.back() == '\r') partial.remove_suffix(1);
    if (partial.find('\r') != std::string_view::npos) return bad("a bare CR in the request line");
    const std::size_t sp1 = partial.find(' ');
    if (!all_of(partial.substr(0, sp1), is_tchar)) return bad("the method is not a token");
    if (sp1 == std::string_view::npos) return std::nullopt;
    if (sp1 == 0) return bad("the method is not a token");
    const std::string_view rest = partial.substr(sp1 + 1);
    const std::size_t sp2 = rest.find(' ');
    if (!all_of(rest.substr(0, sp2), is_target_char)) return bad("the request target is not a URI");
    if (sp2 == std::string_view::npos) return std::nullopt;
    if (sp2 == 0) return bad("the request target is not a URI");
    const std::string_view version = rest.substr(sp2 + 1);
    const std::size_t n = std::min(version.size(), kVersionPrefix.size());
    if (version.substr(0, n) != kVersionPrefix.substr(0, n) || version.size() > kVersionPrefix.size() + 3) {
        return bad("the HTTP version is malformed");
    }
    return std::nullopt;
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 5); no whitespace before the colon,
// no obsolete line folding.
std::optional<HttpRequestError> check_field_line(std::string_view line, int& host_fields) {
    if (line.front() == ' ' || line.front() == '\t') return bad("obsolete line folding in the header");
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad("a header line without ':'");
    const std::string_view name = line.substr(0, colon);
    if (name.empty() || !all_of(name, is_tchar)) return bad("a header field name is not a token");
    if (!all_of(line.substr(colon + 1), is_field_value_char)) return bad("a control character in a header");
    if (iequals(name, "host")) ++host_fields;
    return std::nullopt;
}

}  // namespace

HttpParseResult parse_http_request(std::string_view bytes, std::size_t max_head) noexcept {
    // Everything that can belong to the head; what follows it (a body, a pipelined request) is
    // not looked at.
    const std::string_view head = bytes.substr(0, std::min(bytes.size(), max_head));
    HttpRequest request;
    bool have_request_line = false;
    int host_fields = 0;
    std::size_t pos = 0;
    while (true) {
        const std::size_t lf = head.find('\n', pos);
        if (lf == std::string_view::npos) break;
        std::string_view line = head.substr(pos, lf - pos);
        pos = lf + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos) return bad("a bare CR in the request head");
        if (!have_request_line) {
            if (line.empty()) continue;  // empty lines before the request line are skipped
            if (auto error = parse_request_line(line, request)) return *error;
            have_request_line = true;
            continue;
        }
        if (line.empty()) {
            if (host_fields > 1 || (host_fields == 0 && request.version_minor >= 1)) {
                return bad(host_fields > 1 ? "more than one Host header"
                                           : "an HTTP/1.1 request without Host");
            }
            request.head_size = pos;
            return request;
        }
        if (auto error = check_field_line(line, host_fields)) return *error;
    }
    if (!have_request_line) {
        if (auto error = check_partial_request_line(head.substr(pos))) return *error;
    } else {
        std::string_view partial = head.substr(pos);
        if (!partial.empty() && partial.back() == '\r') partial.remove_suffix(1);  // its LF may follow
        if (partial.find('\r') != std::string_view::npos) return bad("a bare CR in the request head");
    }
    if (bytes.size() < max_head) return HttpNeedMore{};
    if (!have_request_line)
        return HttpRequestError{414, "the request line is longer than the server accepts"};
    return HttpRequestError{431, "the request head is longer than the server accepts"};
}

HttpRoute route_http_request(const HttpRequest& request) noexcept {
    HttpRoute route = HttpRoute::NotFound;
    if (request.path == "/metrics")
        route = HttpRoute::Metrics;
    else if (request.path == "/healthz")
        route = HttpRoute::Healthz;
    else if (request.path == "/readyz")
        route = HttpRoute::Readyz;
    if (route == HttpRoute::NotFound) return route;
    return request.method == "GET" || request.method == "HEAD" ? route : HttpRoute::MethodNotAllowed;
}

}  // namespace outbox::metrics

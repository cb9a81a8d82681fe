#pragma once

// A throwaway PKI for the TLS tests, made at test time with the openssl command line: a CA, a
// server certificate for 127.0.0.1 and localhost, a client certificate, and an unrelated CA.

#include <string>

namespace outbox::test {

struct TestPki {
    std::string ca_cert;        // signed the server and client certificates
    std::string server_cert;    // CN 127.0.0.1; subjectAltName IP:127.0.0.1, DNS:localhost
    std::string server_key;     // 0600
    std::string client_cert;    // CN = the client_cn given to make_test_pki (a role name for `cert`)
    std::string client_key;     // 0600: libpq refuses a key file others can read
    std::string other_ca_cert;  // an unrelated CA: verifying the server against it fails
};

// Writes the files above into `dir` (created if missing; EC P-256 keys, valid for two days).
// Throws with openssl's output when a step fails.
TestPki make_test_pki(const std::string& dir, const std::string& client_cn);

}  // namespace outbox::test

// pg::connection_failure(): what a failed connection attempt means (retry or exit 78 with the fix),
// and that libpq's message never carries the DSN's password into the error.
#include <doctest/doctest.h>

#include <string>

#include "common/error.h"
#include "pg/connection.h"

using outbox::ErrorKind;
using outbox::pg::connection_failure;

TEST_CASE("connection_failure: TLS failures that retrying cannot fix are configuration errors") {
    struct Row {
        const char* libpq;
        const char* fix;  // part of the hint
    };
    const Row rows[] = {
        {"connection to server at \"127.0.0.1\", port 5432 failed: SSL error: certificate verify failed",
         "sslrootcert"},
        {"connection to server at \"127.0.0.1\", port 5432 failed: server certificate for \"127.0.0.1\" (and "
         "1 "
         "other name) does not match host name \"db.internal\"",
         "sslrootcert"},
        {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  connection requires a valid "
         "client "
         "certificate",
         "sslcert"},
        {"private key file \"/run/credentials/x/pg-client.key\" has group or world access; file must have "
         "permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or "
         "less if owned by root",
         "chmod 0600"},
        {"could not load private key file \"/tmp/k\": unsupported", "sslkey"},
        {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf entry for host "
         "\"127.0.0.1\", user \"outbox_relay\", database \"app\", no encryption",
         "sslmode=verify-full"},
        {"connection to server at \"127.0.0.1\", port 5432 failed: server does not support SSL, but SSL was "
         "required",
         "ssl"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.libpq);
        const outbox::Error e = connection_failure(row.libpq);
        CHECK(e.kind() == ErrorKind::Config);
        CHECK(std::string(e.what()).find("retrying will not help") != std::string::npos);
        CHECK(std::string(e.what()).find(row.fix) != std::string::npos);
    }
    // A TLS connection the server cut: retried.
    CHECK(connection_failure("SSL SYSCALL error: EOF detected").kind() == ErrorKind::Transient);
}

TEST_CASE("connection_failure: libpq's quotes of a malformed DSN lose the password") {
    struct Row {
        const char* dsn;
        const char* libpq;     // what libpq 15 says for it
        const char* expected;  // what the error says instead
    };
    const Row rows[] = {
        {"postgresql://u:S3cret@[::1/db",
         "end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
         "\"postgresql://u:S3cret@[::1/db\"",
         "in URI: \"postgresql://u:***@[::1/db\""},
        {"postgresql://u:S3cret@[]/db",
         "IPv6 host address may not be empty in URI: \"postgresql://u:S3cret@[]/db\"",
         "may not be empty in URI: \"postgresql://u:***@[]/db\""},
        {"postgresql://u:S3c%zzret@h/db", "invalid percent-encoded token: \"S3c%zzret\"",
         "invalid percent-encoded token: \"***\""},
        {"postgresql://u@h/db?password=S3c%zzret", "invalid percent-encoded token: \"S3c%zzret\"",
         "invalid percent-encoded token: \"***\""},
        {"dbname='postgresql://u:S3cret@[]/db'",
         "IPv6 host address may not be empty in URI: \"postgresql://u:S3cret@[]/db\"",
         "may not be empty in URI: \"***\""},
        // Tokens that are not the password stay as they are.
        {"postgresql://u:S3cret@h/d%zzb", "invalid percent-encoded token: \"d%zzb\"",
         "invalid percent-encoded token: \"d%zzb\""},
        {"postgresql://u:S3cret@h/db?x", "missing key/value separator \"=\" in URI query parameter: \"x\"",
         "in URI query parameter: \"x\""},
    };
    for (const auto& row : rows) {
        CAPTURE(row.dsn);
        const outbox::Error e = connection_failure(row.libpq, row.dsn);
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find("S3c") == std::string::npos);
        CHECK(what.find(row.expected) != std::string::npos);
        CHECK(e.kind() == ErrorKind::Config);  // a malformed DSN: retrying cannot help
        CHECK(what.find("fix postgres.dsn") != std::string::npos);
    }
}

TEST_CASE("connection_failure: a DSN libpq cannot use is a configuration error") {
    for (const char* libpq : {
             "unterminated quoted string in connection info string",
             "missing \"=\" after \"x\" in connection info string",
             "invalid connection option \"hots\"",
             "invalid integer value \"abc\" for connection option \"port\"",
             "invalid sslmode value: \"bogus\"",
             "invalid gssencmode value: \"bogus\"",
             "invalid channel_binding value: \"bogus\"",
             "could not match 2 port numbers to 1 hosts",
             "unexpected character \"x\" at position 20 in URI (expected \":\" or \"/\"): "
             "\"postgresql://h/d\"",
         }) {
        CAPTURE(libpq);
        const outbox::Error e = connection_failure(libpq);
        CHECK(e.kind() == ErrorKind::Config);
        CHECK(std::string(e.what()).find("fix ") != std::string::npos);
    }
    CHECK(connection_failure("connection to server at \"127.0.0.1\", port 1 failed: Connection refused")
              .kind() == ErrorKind::Transient);
    CHECK(connection_failure("could not translate host name \"db\" to address: Name or service not known")
              .kind() == ErrorKind::Transient);
}

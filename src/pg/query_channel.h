#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "pg/connection.h"

namespace outbox::pg {

// A normal connection driven without blocking by the caller's poll() (DESIGN rule 3): send() a
// query string (one or more statements), poll socket() for events(), call on_ready() when the
// socket is ready, and take the results once finished() says so. One query at a time.
class QueryChannel {
public:
    // Switches `conn` to non-blocking mode; notices the server sends are collected (take_notices()).
    explicit QueryChannel(Connection conn);
    QueryChannel(const QueryChannel&) = delete;
    QueryChannel& operator=(const QueryChannel&) = delete;

    // Sends `sql` (the simple query protocol: several statements, no parameters). `what` names the
    // query in errors. Throws ServerError when it cannot be sent.
    void send(const std::string& sql, std::string_view what);
    // A query is on its way or its results are not all read yet.
    [[nodiscard]] bool busy() const noexcept { return busy_; }
    // Every result of the query is here (take_results()).
    [[nodiscard]] bool finished() const noexcept { return !busy_ && !results_.empty(); }
    // When the query was sent (busy()).
    [[nodiscard]] std::chrono::steady_clock::time_point sent_at() const noexcept { return sent_at_; }

    [[nodiscard]] int socket() const noexcept { return conn_.socket(); }
    // What to poll the socket for: always POLLIN (a connection that drops while idle is noticed),
    // POLLOUT while the query is not all sent.
    [[nodiscard]] short events() const noexcept;
    // Reads (and writes) what the socket allows. Throws ServerError(Transient) when the connection
    // is lost, and the first failing statement's error once the query finished.
    void on_ready();

    // The results of the finished query, one per statement; empties the channel.
    std::vector<ResultHandle> take_results();
    std::vector<std::string> take_notices();
    [[nodiscard]] PGconn* get() const noexcept { return conn_.get(); }

private:
    static void on_notice(void* self, const PGresult* result);

    Connection conn_;
    std::string what_;
    bool busy_ = false;
    bool flushing_ = false;
    std::chrono::steady_clock::time_point sent_at_{};
    std::vector<ResultHandle> results_;
    std::vector<std::string> notices_;
};

}  // namespace outbox::pg

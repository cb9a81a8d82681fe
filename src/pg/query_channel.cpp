#include "pg/query_channel.h"

#include <poll.h>

#include <utility>

namespace outbox::pg {

QueryChannel::QueryChannel(Connection conn) : conn_(std::move(conn)) {
    if (PQsetnonblocking(conn_.get(), 1) != 0) {
        throw ServerError(
            ErrorKind::Transient,
            "cannot switch the PostgreSQL connection to non-blocking mode: " + conn_.error_message(), "");
    }
    PQsetNoticeReceiver(conn_.get(), &QueryChannel::on_notice, this);
}

void QueryChannel::on_notice(void* self, const PGresult* result) {
    std::string text = PQresultErrorMessage(result);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    static_cast<QueryChannel*>(self)->notices_.push_back(std::move(text));
}

void QueryChannel::send(const std::string& sql, std::string_view what) {
    if (busy_) throw Error(ErrorKind::Fatal, "QueryChannel: a query is already on its way");
    results_.clear();
    what_ = what;
    if (PQsendQuery(conn_.get(), sql.c_str()) == 0) throw statement_failure(conn_.get(), nullptr, what_);
    busy_ = true;
    sent_at_ = std::chrono::steady_clock::now();
    const int flushed = PQflush(conn_.get());
    if (flushed < 0) throw statement_failure(conn_.get(), nullptr, what_);
    flushing_ = flushed == 1;
}

short QueryChannel::events() const noexcept {
    return static_cast<short>(POLLIN | (flushing_ ? POLLOUT : 0));
}

void QueryChannel::on_ready() {
    if (flushing_) {
        const int flushed = PQflush(conn_.get());
        if (flushed < 0) throw statement_failure(conn_.get(), nullptr, what_);
        flushing_ = flushed == 1;
    }
    if (PQconsumeInput(conn_.get()) == 0) {
        throw ServerError(ErrorKind::Transient,
                          (what_.empty() ? std::string("PostgreSQL connection") : what_) +
                              ": lost the connection: " + conn_.error_message(),
                          "");
    }
    if (!busy_) return;
    while (PQisBusy(conn_.get()) == 0) {
        PGresult* raw = PQgetResult(conn_.get());
        if (raw == nullptr) {  // the query is done
            busy_ = false;
            break;
        }
        results_.emplace_back(raw);
    }
    if (busy_) return;
    for (const ResultHandle& r : results_) {
        const ExecStatusType status = PQresultStatus(r.get());
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
            throw statement_failure(conn_.get(), r.get(), what_);
        }
    }
    if (results_.empty()) throw statement_failure(conn_.get(), nullptr, what_);
}

std::vector<ResultHandle> QueryChannel::take_results() {
    return std::exchange(results_, {});
}

std::vector<std::string> QueryChannel::take_notices() {
    return std::exchange(notices_, {});
}

}  // namespace outbox::pg

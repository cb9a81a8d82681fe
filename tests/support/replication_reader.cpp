#include "support/replication_reader.h"

#include <poll.h>

#include <iterator>
#include <stdexcept>
#include <variant>

#include "pgoutput/decoder.h"

namespace outbox::test {
namespace {

const char* kind_of(const pgoutput::Message& message) {
    static constexpr const char* kNames[] = {
        "Begin",  "Commit",   "Origin",  "Relation",    "Type",       "Insert",       "Update",
        "Delete", "Truncate", "Message", "StreamStart", "StreamStop", "StreamCommit", "StreamAbort"};
    static_assert(std::size(kNames) == std::variant_size_v<pgoutput::Message>);
    return kNames[message.index()];
}

}  // namespace

void ReplicationReader::turn(std::chrono::milliseconds max_wait) {
    while (auto frame = stream_.read_frame()) {
        if (const auto* keepalive = std::get_if<pgoutput::PrimaryKeepalive>(&*frame)) {
            ++keepalives_;
            if (keepalive->reply_requested) ++replies_requested_;
            if (confirm_idle_keepalives && !open_) stream_.confirm(keepalive->wal_end);
            continue;
        }
        const auto& data = std::get<pgoutput::XLogData>(*frame);
        const auto message = pgoutput::decode(data.payload);
        kinds_.emplace_back(kind_of(message));
        if (const auto* begin = std::get_if<pgoutput::Begin>(&message)) {
            if (open_) throw std::runtime_error("Begin inside an open transaction");
            open_ = DecodedTransaction{begin->xid, Lsn(), Lsn(), {}};
        } else if (const auto* rel = std::get_if<pgoutput::Relation>(&message)) {
            relations_.update(*rel);
        } else if (const auto* insert = std::get_if<pgoutput::Insert>(&message)) {
            if (!open_) throw std::runtime_error("Insert outside a transaction");
            const auto& info = relations_.get(insert->relation);
            info.check_tuple(insert->new_tuple);
            DecodedRow row;
            row.relation = info.qualified_name();
            for (std::size_t i = 0; i < info.columns.size(); ++i) {
                row.column_names.push_back(info.columns[i].name);
                const auto& v = insert->new_tuple.columns[i];
                if (v.kind == pgoutput::ColumnKind::Null) {
                    row.values[info.columns[i].name] = std::nullopt;
                } else {
                    row.values[info.columns[i].name] = std::string(v.bytes);
                }
            }
            open_->rows.push_back(std::move(row));
        } else if (const auto* origin = std::get_if<pgoutput::Origin>(&message)) {
            if (!open_) throw std::runtime_error("Origin outside a transaction");
            open_->origin = std::string(origin->name);
        } else if (const auto* logical = std::get_if<pgoutput::LogicalMessage>(&message)) {
            DecodedLogicalMessage m{logical->transactional(), logical->lsn, std::string(logical->prefix),
                                    std::string(logical->content)};
            if (m.transactional) {
                if (!open_) throw std::runtime_error("transactional logical message outside a transaction");
                open_->messages.push_back(std::move(m));
            } else {
                lone_messages_.push_back(std::move(m));
            }
        } else if (const auto* commit = std::get_if<pgoutput::Commit>(&message)) {
            if (!open_) throw std::runtime_error("Commit without Begin");
            open_->commit_lsn = commit->commit_lsn;
            open_->end_lsn = commit->end_lsn;
            transactions_.push_back(std::move(*open_));
            open_.reset();
            if (confirm_commits) stream_.confirm(commit->end_lsn);
        }
    }
    const auto now = std::chrono::steady_clock::now();
    const auto next = stream_.service(now);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now);
    wait = std::clamp(wait, std::chrono::milliseconds(0), max_wait);
    pollfd pfd{stream_.socket(), static_cast<short>(POLLIN | (stream_.wants_write() ? POLLOUT : 0)), 0};
    ::poll(&pfd, 1, static_cast<int>(wait.count()));
}

bool ReplicationReader::pump_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        turn(std::chrono::milliseconds(50));
    }
    return true;
}

void ReplicationReader::pump_for(std::chrono::milliseconds duration) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < deadline) turn(std::chrono::milliseconds(50));
}

std::vector<DecodedRow> ReplicationReader::rows() const {
    std::vector<DecodedRow> out;
    for (const auto& t : transactions_) out.insert(out.end(), t.rows.begin(), t.rows.end());
    return out;
}

}  // namespace outbox::test

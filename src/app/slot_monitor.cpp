#include "app/slot_monitor.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "pg/connection.h"

namespace outbox::app {
namespace {

constexpr int kPollIntervalMs = 5000;

}  // namespace

SlotMonitor::SlotMonitor(std::string dsn, std::optional<std::string> password, std::string slot,
                         metrics::RelayMetrics& metrics)
    : dsn_(std::move(dsn)), password_(std::move(password)), slot_(std::move(slot)), metrics_(metrics) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) throw Error(ErrorKind::Fatal, std::string("eventfd failed: ") + std::strerror(errno));
    thread_ = std::thread([this] { run(); });
}

SlotMonitor::~SlotMonitor() {
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
    ::close(stop_fd_);
}

void SlotMonitor::run() {
    std::optional<pg::Connection> conn;
    while (true) {
        try {
            if (!conn) {
                conn.emplace(
                    pg::Connection::connect_interruptible(dsn_, stop_fd_, password_, "outbox-relay-monitor"));
            }
            const auto rows = conn->query(
                "SELECT coalesce(wal_status, ''), safe_wal_size FROM pg_replication_slots WHERE slot_name = "
                "$1",
                {slot_});
            if (rows.empty()) {
                spdlog::error("replication slot \"{}\" no longer exists", slot_);
            } else {
                const std::string status = rows[0][0].value_or("");
                metrics_.set_slot_wal_status(status);
                // NULL: max_slot_wal_keep_size = -1, no limit; NaN says "none" where 0 would say "gone".
                metrics_.slot_safe_wal_size_bytes.Set(rows[0][1] ? std::stod(*rows[0][1])
                                                                 : std::numeric_limits<double>::quiet_NaN());
                if (status == "unreserved" || status == "lost") {
                    spdlog::warn(
                        "replication slot \"{}\" has wal_status = {}: WAL it needs is about to be or was "
                        "removed "
                        "(see docs/operations.md)",
                        slot_, status);
                }
            }
        } catch (const std::exception& e) {
            pollfd stop{stop_fd_, POLLIN, 0};
            if (::poll(&stop, 1, 0) > 0) return;
            // Reconnect on the next round.
            spdlog::warn("cannot read pg_replication_slots: {}", e.what());
            conn.reset();
        }
        pollfd stop{stop_fd_, POLLIN, 0};
        if (::poll(&stop, 1, kPollIntervalMs) != 0) return;  // stop requested (or poll failed)
    }
}

}  // namespace outbox::app

#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "support/process.h"

namespace outbox::test {

struct PgClusterOptions {
    // Where the cluster lives (data dir, unix socket, log). Empty: a fresh directory under
    // $TMPDIR or /tmp, removed again when the cluster is destroyed.
    std::string run_dir;
    std::chrono::milliseconds wal_sender_timeout = std::chrono::seconds(60);
    // Extra postgresql.conf settings, e.g. {"max_slot_wal_keep_size", "64MB"}.
    std::vector<std::pair<std::string, std::string>> settings;
};

// A throwaway PostgreSQL 15 cluster owned by a test: initdb, wal_level=logical, listening on
// 127.0.0.1 at a free port and on a unix socket inside the run directory. When the process
// runs as root the server runs as the `postgres` OS user (initdb and postgres refuse root).
// The postmaster is our direct child with a parent-death signal, so neither a failed
// assertion nor a crash of the test leaves a server behind.
class PgCluster {
public:
    explicit PgCluster(PgClusterOptions options = {});
    ~PgCluster();
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    enum class StopMode { Smart, Fast, Immediate };

    void start();
    void stop(StopMode mode = StopMode::Fast, std::chrono::milliseconds grace = std::chrono::seconds(30));
    void restart(StopMode mode = StopMode::Fast);
    // Sends the shutdown signal and returns at once (the test keeps serving its clients);
    // wait_stopped() then waits for the postmaster to exit.
    void begin_stop(StopMode mode);
    [[nodiscard]] bool wait_stopped(std::chrono::milliseconds timeout);
    [[nodiscard]] bool running();

    [[nodiscard]] int port() const noexcept { return port_; }
    [[nodiscard]] const std::string& run_dir() const noexcept { return run_dir_; }
    [[nodiscard]] std::string data_dir() const { return run_dir_ + "/data"; }
    [[nodiscard]] const std::string& superuser() const noexcept { return superuser_; }
    [[nodiscard]] pid_t postmaster_pid() const noexcept { return postmaster_.pid(); }

    // libpq conninfo strings for the bundled database.
    [[nodiscard]] std::string tcp_dsn(const std::string& dbname = "postgres") const;
    [[nodiscard]] std::string unix_dsn(const std::string& dbname = "postgres") const;

    pg::Connection connect(const std::string& dbname = "postgres") const;
    void exec(const std::string& sql, const std::string& dbname = "postgres") const;
    std::optional<std::string> query_value(const std::string& sql,
                                           const std::string& dbname = "postgres") const;

    [[nodiscard]] std::string log() const;

private:
    void init_cluster(const PgClusterOptions& options);
    [[nodiscard]] SpawnOptions as_server_user(std::vector<std::string> argv) const;

    std::string run_dir_;
    bool owns_run_dir_ = false;
    int port_ = 0;
    std::string superuser_;
    std::optional<uid_t> uid_;
    std::optional<gid_t> gid_;
    ChildProcess postmaster_;
};

// The directory with PostgreSQL 15's server binaries (initdb, postgres, pg_ctl).
std::string pg_bin_dir();

}  // namespace outbox::test

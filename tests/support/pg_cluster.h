#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/lsn.h"
#include "pg/connection.h"
#include "support/process.h"

namespace outbox::test {

struct PgClusterOptions {
    // Where the cluster lives (data dir, unix socket, log). Empty: a fresh directory under
    // $TMPDIR or /tmp, removed again when the cluster is destroyed.
    std::string run_dir;
    std::chrono::milliseconds wal_sender_timeout = std::chrono::seconds(60);
    // Extra postgresql.conf settings, e.g. {"max_slot_wal_keep_size", "64MB"}. A setting the
    // server version does not know is an error (checked with `postgres --describe-config`).
    std::vector<std::pair<std::string, std::string>> settings;
};

struct StandbyOptions {
    // As PgClusterOptions::run_dir.
    std::string run_dir;
    // The physical slot created on the primary for this standby; empty: "standby_<port>".
    std::string slot_name;
    // 17+: the primary's synchronized_standby_slots names this standby's slot, so logical
    // walsenders send a change only once this standby has it (what failover slots need).
    bool synchronized_standby_slots = true;
    // 17+: the standby's slot sync worker keeps failover slots synchronized. Off: only
    // sync_slots_now() (pg_sync_replication_slots()) synchronizes them.
    bool sync_replication_slots = true;
    std::chrono::milliseconds wal_sender_timeout = std::chrono::seconds(60);
    // Extra postgresql.conf settings of the standby.
    std::vector<std::pair<std::string, std::string>> settings;
};

// A throwaway PostgreSQL cluster owned by a test: initdb, wal_level=logical, listening on
// 127.0.0.1 at a free port and on a unix socket inside the run directory. The server is the
// one in pg_bin_dir(): Debian's PostgreSQL 15 unless OUTBOX_PG_BIN names another (the ctest
// version matrix runs tests against 14, 16, 17 and 18 from scripts/fetch-postgres).
// When the process runs as root the server runs as the `postgres` OS user (initdb and
// postgres refuse root). The postmaster is our direct child with a parent-death signal, so
// neither a failed assertion nor a crash of the test leaves a server behind.
class PgCluster {
public:
    explicit PgCluster(const PgClusterOptions& options = {});
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
    // The server's major version (14, 15, ... 18) and whether it knows a setting.
    [[nodiscard]] int server_major() const noexcept { return major_; }
    [[nodiscard]] bool has_setting(const std::string& name) const;

    // Appends `name = 'value'` to postgresql.conf and reloads; returns once a new session
    // sees the value (settings that need a restart: call restart() instead of waiting).
    void set(const std::string& name, const std::string& value,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // The same for several settings, with one reload.
    void set(const std::vector<std::pair<std::string, std::string>>& settings,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // Copies `source` into the data directory as `name`, owned by the server's OS user with mode
    // 0600 (what the server demands of ssl_key_file); returns the new path.
    std::string copy_to_data_dir(const std::string& source, const std::string& name) const;
    // Replaces pg_hba.conf with `rules` and reloads. The harness's own connections are TCP to
    // 127.0.0.1 as superuser() (sslmode=prefer: they use TLS when the server offers it), so
    // `rules` must let those in.
    void write_hba(const std::string& rules) const;

    // ---- replication between clusters ----

    // A streaming standby of this running cluster, in its own run directory. Cloned without
    // pg_basebackup (Debian's 15 refuses 17+ servers): a physical slot for it is created here,
    // then pg_backup_start() (14: pg_start_backup()), a file copy of the data directory,
    // pg_backup_stop() whose label and tablespace map are written into the copy, and
    // standby.signal. The standby streams through that slot (primary_slot_name,
    // primary_conninfo with dbname=, hot_standby_feedback = on; 17+: sync_replication_slots =
    // on, and this cluster's synchronized_standby_slots names the slot). Returns once this
    // cluster reports the standby streaming.
    std::unique_ptr<PgCluster> create_standby(const StandbyOptions& options = {});

    // A standby's physical slot on its primary (empty for a cluster made by initdb).
    [[nodiscard]] const std::string& primary_slot() const noexcept { return primary_slot_; }
    // pg_is_in_recovery().
    [[nodiscard]] bool in_recovery() const;
    // Standby: waits until it replayed everything `primary` had written when called.
    [[nodiscard]] bool wait_replayed(const PgCluster& primary, std::chrono::milliseconds timeout) const;
    // Standby, 17+: one round of failover-slot synchronization now. With the slot sync worker
    // on (it sleeps up to 30 s when idle, and pg_sync_replication_slots() refuses to run
    // beside it) a configuration reload wakes it; with it off, pg_sync_replication_slots().
    void sync_slots_now() const;
    // Standby, 17+: waits until logical slot `slot` is here, synced = true and not temporary
    // (only such a slot survives promotion), with confirmed_flush_lsn >= `min_confirmed` when
    // given, asking for a synchronization round each time it looks.
    [[nodiscard]] bool wait_slot_synced(const std::string& slot, std::chrono::milliseconds timeout,
                                        std::optional<Lsn> min_confirmed = std::nullopt) const;
    // Standby: pg_promote(); returns once it left recovery and accepts writes. Throws with
    // the server log when it does not within `timeout`.
    void promote(std::chrono::milliseconds timeout = std::chrono::seconds(60));

    // libpq conninfo strings for the bundled database.
    [[nodiscard]] std::string tcp_dsn(const std::string& dbname = "postgres") const;
    [[nodiscard]] std::string unix_dsn(const std::string& dbname = "postgres") const;

    pg::Connection connect(const std::string& dbname = "postgres") const;
    void exec(const std::string& sql, const std::string& dbname = "postgres") const;
    std::optional<std::string> query_value(const std::string& sql,
                                           const std::string& dbname = "postgres") const;

    [[nodiscard]] std::string log() const;

private:
    struct StandbyTag {};
    PgCluster(StandbyTag, PgCluster& primary, const StandbyOptions& options);

    void prepare_run_dir(const std::string& requested);
    void init_cluster(const PgClusterOptions& options);
    void clone_from(PgCluster& primary, const StandbyOptions& options);
    void append_conf(const std::string& lines) const;
    void write_server_file(const std::string& path, const std::string& content) const;
    [[nodiscard]] SpawnOptions as_server_user(std::vector<std::string> argv) const;

    std::string run_dir_;
    bool owns_run_dir_ = false;
    int port_ = 0;
    int major_ = 0;
    std::vector<std::string> setting_names_;  // lower case, from postgres --describe-config
    std::string superuser_;
    std::string primary_slot_;
    std::vector<std::string> standby_slots_;  // slots of this cluster's standbys
    std::optional<uid_t> uid_;
    std::optional<gid_t> gid_;
    ChildProcess postmaster_;
};

// The directory with the server binaries (initdb, pg_ctl, postgres): $OUTBOX_PG_BIN when set
// (formerly OUTBOX_PG_BINDIR, still read), else Debian's PostgreSQL 15 (/usr/lib/postgresql/15/bin).
std::string pg_bin_dir();

// The major version of the server in pg_bin_dir(), from `postgres --version` (e.g. 17).
// Throws, naming scripts/fetch-postgres, when the binaries are not there.
int pg_server_major();

}  // namespace outbox::test

#include "pg/setup.h"

#include <fmt/format.h>

#include <algorithm>

namespace outbox::pg {
namespace {

constexpr int kFailoverSlotsVersion = 170000;  // failover slots and slot synchronization

Lsn parse_lsn_or_throw(const std::optional<std::string>& text, std::string_view what) {
    if (!text) return Lsn();
    const auto lsn = Lsn::parse(*text);
    if (!lsn)
        throw Error(ErrorKind::Protocol, fmt::format("server sent an invalid LSN for {}: {}", what, *text));
    return *lsn;
}

std::string table_list(const std::vector<TableName>& tables) {
    std::string out;
    for (const auto& t : tables) {
        if (!out.empty()) out += ", ";
        out += t.quoted();
    }
    return out;
}

// 'insert', 'insert, update', ...
std::string publish_list(const ReplicationOptions& options) {
    std::string list = "insert";
    if (options.publish_updates) list += ", update";
    if (options.publish_deletes) list += ", delete";
    return list;
}

std::vector<Row> query_slot(Connection& conn, const std::string& slot) {
    const bool has_failover = conn.server_version() >= kFailoverSlotsVersion;
    return conn.query(
        fmt::format("SELECT plugin, slot_type, database, confirmed_flush_lsn::text, restart_lsn::text, "
                    "coalesce(wal_status, ''), database = current_database(), {}, active_pid::text "
                    "FROM pg_replication_slots WHERE slot_name = $1",
                    has_failover ? "failover" : "false"),
        {slot});
}

void create_slot(Connection& conn, const ReplicationOptions& options) {
    const bool failover =
        options.slot_failover.value_or(true) && conn.server_version() >= kFailoverSlotsVersion;
    // pg_create_logical_replication_slot(name, plugin, temporary, twophase, failover)
    conn.exec_params(failover
                         ? "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
                         : "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                     {options.slot}, fmt::format("cannot create replication slot \"{}\"", options.slot));
}

}  // namespace

void require_logical_wal_level(Connection& conn) {
    const auto level = conn.query_value("SHOW wal_level");
    if (level != "logical") {
        throw Error(
            ErrorKind::Config,
            fmt::format("PostgreSQL has wal_level = {}; logical replication needs wal_level = logical "
                        "(ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)",
                        level.value_or("?")));
    }
}

void require_tables(Connection& conn, const std::vector<TableName>& tables) {
    for (const auto& t : tables) {
        const auto found = conn.query_value(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2",
            {t.schema, t.name});
        if (!found)
            throw Error(ErrorKind::Config, fmt::format("outbox table {} does not exist", t.qualified()));
        if (*found != "r" && *found != "p") {
            throw Error(ErrorKind::Config,
                        fmt::format("outbox table {} is not a table (relkind {})", t.qualified(), *found));
        }
    }
}

void require_columns(Connection& conn, const ReplicationOptions& options) {
    for (const auto& t : options.tables) {
        const auto rows = conn.query(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
            "ON "
            "n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT "
            "a.attisdropped",
            {t.schema, t.name});
        std::vector<std::string> present;
        for (const auto& r : rows) present.push_back(r[0].value_or(""));
        std::string missing;
        for (const auto& [column, key] : options.required_columns) {
            if (std::find(present.begin(), present.end(), column) != present.end()) continue;
            missing += fmt::format("{}\"{}\" ({})", missing.empty() ? "" : ", ", column, key);
        }
        if (!missing.empty()) {
            throw Error(
                ErrorKind::Config,
                fmt::format("outbox table {} has no column {}; fix the configuration or the table (ALTER "
                            "TABLE {} ADD COLUMN ...)",
                            t.qualified(), missing, t.quoted()));
        }
    }
}

std::string create_publication_sql(const ReplicationOptions& options) {
    return fmt::format("CREATE PUBLICATION {} FOR TABLE {} WITH (publish = '{}')",
                       quote_identifier(options.publication), table_list(options.tables),
                       publish_list(options));
}

// Publishing UPDATEs or DELETEs of a table without a replica identity makes PostgreSQL refuse
// the application's own UPDATEs and DELETEs of it: check before the publication exists.
void require_replica_identity(Connection& conn, const ReplicationOptions& options) {
    if (!options.publish_updates && !options.publish_deletes) return;
    for (const auto& t : options.tables) {
        const auto rows = conn.query(
            "SELECT c.relreplident::text, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND "
            "(i.indisprimary OR i.indisreplident)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2",
            {t.schema, t.name});
        if (rows.empty()) continue;  // require_tables() says so
        const std::string identity = rows[0][0].value_or("");
        const bool has_index = rows[0][1] == "t";
        if (identity == "f" || ((identity == "d" || identity == "i") && has_index)) continue;
        throw Error(
            ErrorKind::Config,
            fmt::format("outbox table {} has no replica identity (no primary key), so publishing its {} "
                        "would make PostgreSQL refuse the application's own UPDATEs and DELETEs of it; add a "
                        "primary key (or ALTER TABLE {} REPLICA IDENTITY FULL), or set outbox.on_update and "
                        "outbox.on_delete to ignore",
                        t.qualified(), options.publish_updates ? "updates" : "deletes", t.quoted()));
    }
}

// Checks the publication without changing anything; false when it is missing and the relay may
// create it. Throws a Config error with the fix when it is missing (and may not be created) or
// does not cover the outbox tables' inserts.
bool check_publication(Connection& conn, const ReplicationOptions& options) {
    const std::string pub = quote_identifier(options.publication);
    const auto rows = conn.query(
        "SELECT pubinsert, puballtables, pubupdate, pubdelete FROM pg_publication WHERE pubname = $1",
        {options.publication});
    if (rows.empty()) {
        if (options.create_publication) return false;
        throw Error(ErrorKind::Config,
                    fmt::format("publication \"{}\" does not exist (postgres.create_publication is false); "
                                "create it as the owner of the outbox table: {};",
                                options.publication, create_publication_sql(options)));
    }
    const auto missing_action = [&](std::string_view action) {
        throw Error(ErrorKind::Config,
                    fmt::format("publication \"{}\" does not publish {}; fix: ALTER PUBLICATION {} "
                                "SET (publish = '{}');",
                                options.publication, action, pub, publish_list(options)));
    };
    if (rows[0][0] != "t") missing_action("inserts");
    if (options.publish_updates && rows[0][2] != "t") missing_action("updates (outbox.on_update)");
    if (options.publish_deletes && rows[0][3] != "t") missing_action("deletes (outbox.on_delete)");
    if (rows[0][1] == "t") return true;  // FOR ALL TABLES covers every outbox table
    std::vector<std::string> missing;
    for (const auto& t : options.tables) {
        const auto covered = conn.query_value(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
            {options.publication, t.schema, t.name});
        if (!covered) missing.push_back(t.quoted());
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        throw Error(
            ErrorKind::Config,
            fmt::format("publication \"{}\" does not include outbox table(s) {}; fix: ALTER PUBLICATION {} "
                        "ADD TABLE {};",
                        options.publication, list, pub, list));
    }
    return true;
}

// "17.4 (server_version_num 170004)"
std::string version_text(int version) {
    return fmt::format("{}.{} (server_version_num {})", version / 10000, version % 10000, version);
}

void refuse_standby(Connection& conn, const ServerIdentity& identity) {
    if (conn.query_value("SELECT pg_is_in_recovery()::text") == "true") {
        throw Error(
            ErrorKind::Transient,
            fmt::format("{} is a standby (in recovery); the slot is used only on the primary (list every "
                        "host in postgres.dsn: host=a,b)",
                        identity.address));
    }
}

void require_failover_support(const ReplicationOptions& options, int version) {
    if (options.slot_failover == true && version < kFailoverSlotsVersion) {
        throw Error(
            ErrorKind::Config,
            fmt::format("postgres.slot_failover is true, but PostgreSQL {} has no failover slots (17 and "
                        "later do); set slot_failover: auto or false",
                        version_text(version)));
    }
}

std::optional<ExistingSlot> find_slot(Connection& conn, const ReplicationOptions& options) {
    const auto rows = query_slot(conn, options.slot);
    if (rows.empty()) return std::nullopt;
    const Row& r = rows[0];
    if (r[1] != "logical" || r[0] != "pgoutput") {
        throw Error(
            ErrorKind::Config,
            fmt::format("replication slot \"{}\" is a {} slot with plugin {}; outbox-relay needs a logical "
                        "slot with plugin pgoutput",
                        options.slot, r[1].value_or("?"), r[0].value_or("none")));
    }
    if (r[6] != "t") {
        throw Error(
            ErrorKind::Config,
            fmt::format("replication slot \"{}\" belongs to database \"{}\", not the one in postgres.dsn",
                        options.slot, r[2].value_or("?")));
    }
    ExistingSlot slot;
    slot.state.confirmed_flush = parse_lsn_or_throw(r[3], "confirmed_flush_lsn");
    slot.state.restart_lsn = parse_lsn_or_throw(r[4], "restart_lsn");
    slot.state.wal_status = r[5].value_or("");
    slot.state.failover = r[7] == "t";
    slot.active_pid = r[8];
    if (slot.state.wal_status == "lost") {
        throw Error(
            ErrorKind::Config,
            fmt::format("replication slot \"{}\" was invalidated (wal_status = lost): PostgreSQL removed WAL "
                        "it still needed, so events in that WAL can no longer be read. outbox-relay will not "
                        "recreate the slot by itself; see docs/operations.md, \"The slot was invalidated\"",
                        options.slot));
    }
    return slot;
}

SlotState prepare_publication_and_slot(Connection& conn, const ReplicationOptions& options,
                                       const ServerIdentity& identity) {
    refuse_standby(conn, identity);
    require_logical_wal_level(conn);
    require_tables(conn, options.tables);
    require_columns(conn, options);
    require_replica_identity(conn, options);
    require_failover_support(options, conn.server_version());
    const bool publication_exists = check_publication(conn, options);
    std::optional<ExistingSlot> slot = find_slot(conn, options);
    if (!slot) {
        if (!options.create_slot) {
            throw Error(ErrorKind::Config,
                        fmt::format("replication slot \"{}\" does not exist (postgres.create_slot is false); "
                                    "create it: SELECT pg_create_logical_replication_slot({}, 'pgoutput');",
                                    options.slot, quote_literal(options.slot)));
        }
        if (options.before_creating_slot) options.before_creating_slot(identity);
    }
    // Everything is checked: create what is missing. The publication must exist before the
    // slot's starting point: pgoutput looks publications up in the catalog as of each change, and
    // one created later is "does not exist" there.
    if (!publication_exists) {
        conn.exec(create_publication_sql(options),
                  fmt::format("cannot create publication \"{}\"", options.publication));
    }
    bool created = false;
    if (!slot) {
        create_slot(conn, options);
        created = true;
        slot = find_slot(conn, options);
        if (!slot) throw Error(ErrorKind::Fatal, "replication slot vanished right after it was created");
    }
    SlotState state = slot->state;
    state.created = created;
    if (conn.server_version() >= kFailoverSlotsVersion) {
        state.synchronized_standby_slots = conn.query_value("SHOW synchronized_standby_slots").value_or("");
    }
    return state;
}

}  // namespace outbox::pg

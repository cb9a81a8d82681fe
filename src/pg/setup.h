#pragma once

// Setting up what streaming needs, over a normal connection: the checks of the server, the
// outbox tables, the publication and the slot, and creating what is missing only once every
// check passed. Each check is a function of its own so that --preflight can run them one by one.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/lsn.h"
#include "outbox/options.h"
#include "pg/connection.h"

namespace outbox::pg {

using TableName = outbox::TableName;

// Which server the stream is on, from IDENTIFY_SYSTEM and the connection.
struct ServerIdentity {
    std::string system_id;       // the cluster's system identifier: a standby shares its primary's
    std::uint32_t timeline = 0;  // grows with every promotion
    std::string database;
    int server_version = 0;  // server_version_num, e.g. 170004
    std::string address;     // host:port the DSN settled on
};

struct ReplicationOptions {
    std::string dsn;                      // libpq conninfo or URI
    std::optional<std::string> password;  // from password_file; never logged
    std::string slot = "outbox_relay";
    std::string publication = "outbox_relay";
    std::vector<TableName> tables;  // the outbox tables the publication must cover
    // Columns every outbox table must have: {column, what names it (e.g. "outbox.columns.payload")}.
    std::vector<std::pair<std::string, std::string>> required_columns;
    bool create_slot = true;
    bool create_publication = true;
    // The publication carries UPDATEs / DELETEs of the outbox tables too (on_update/on_delete
    // other than ignore), which needs a replica identity on each table.
    bool publish_updates = false;
    bool publish_deletes = false;
    // Create the slot as a failover slot (PostgreSQL 17+), which slot synchronization keeps on
    // standbys. nullopt: where the server supports it. true: also turn it on for an existing
    // slot; a Config error before 17. false: never.
    std::optional<bool> slot_failover;
    // Called when the slot is missing, before anything is created; it may throw to refuse
    // creating the slot (e.g. because this relay streamed from that slot before).
    std::function<void(const ServerIdentity&)> before_creating_slot;
    int proto_version = 1;
    bool messages = true;  // ask pgoutput for pg_logical_emit_message too
    std::chrono::milliseconds status_interval = std::chrono::seconds(10);
    // Least time between two status updates sent because the confirmed position moved.
    std::chrono::milliseconds confirm_coalesce = std::chrono::milliseconds(200);
    std::string application_name = "outbox-relay";
};

struct SlotState {
    Lsn confirmed_flush;
    Lsn restart_lsn;
    std::string wal_status;  // reserved, extended, unreserved, lost
    bool created = false;    // this run created it
    bool failover = false;   // pg_replication_slots.failover (17+; false before)
    // The primary's synchronized_standby_slots (17+): the physical slots of standbys that must
    // have WAL before logical walsenders send it. Empty: a promoted standby may lack events the
    // relay already published.
    std::string synchronized_standby_slots;
};

// The checks. Each throws Error(Config) naming the problem and its fix (Transient for a standby),
// and changes nothing.
void refuse_standby(Connection& conn, const ServerIdentity& identity);
void require_logical_wal_level(Connection& conn);
void require_tables(Connection& conn, const std::vector<TableName>& tables);
void require_columns(Connection& conn, const ReplicationOptions& options);
void require_replica_identity(Connection& conn, const ReplicationOptions& options);
void require_failover_support(const ReplicationOptions& options, int server_version);
// False when the publication is missing and may be created; throws when it is missing and may
// not be, or does not carry what the relay needs.
bool check_publication(Connection& conn, const ReplicationOptions& options);
// The slot as it is, checked (logical, pgoutput, this database, not invalidated); nullopt when
// it does not exist. `active_pid`: another connection streams from it now.
struct ExistingSlot {
    SlotState state;
    std::optional<std::string> active_pid;
};
std::optional<ExistingSlot> find_slot(Connection& conn, const ReplicationOptions& options);
// The SQL that creates the publication the relay needs.
std::string create_publication_sql(const ReplicationOptions& options);
// "17.4 (server_version_num 170004)"
std::string version_text(int server_version);

// Creates or verifies the publication and the slot over a normal connection to the server
// `identity` describes. Checks everything before it creates anything. Throws a Config error
// naming what is missing and the SQL to fix it, or that the slot was invalidated (never
// silently recreated: that would skip every event in the lost WAL); a Transient error when the
// server is a standby.
SlotState prepare_publication_and_slot(Connection& conn, const ReplicationOptions& options,
                                       const ServerIdentity& identity);

}  // namespace outbox::pg

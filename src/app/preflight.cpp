#include "app/preflight.h"

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <optional>
#include <set>

#include "app/component_options.h"
#include "app/state_file.h"
#include "common/error.h"
#include "kafka/cluster_probe.h"
#include "kafka/publisher.h"
#include "pg/connection.h"
#include "pg/poll_source.h"
#include "pg/setup.h"

namespace outbox::app {
namespace {

constexpr int kMinServerVersion = 140000;  // pgoutput's messages option

// A check's outcome: what it found, and whether that is only worth a warning.
struct Finding {
    std::string text;
    bool warning = false;
};

class Checklist {
public:
    explicit Checklist(std::FILE* out) : out_(out) {}

    // Runs `check`; an Error it throws is a failure with the error's text (which names the fix).
    void run(std::string_view name, const std::function<Finding()>& check) {
        try {
            const Finding f = check();
            print(f.warning ? "warn" : "ok", name, f.text);
            if (f.warning) ++warnings_;
        } catch (const std::exception& e) {
            print("FAIL", name, e.what());
            ++failed_;
        }
        ++total_;
    }
    void skip(std::string_view name, std::string_view why) {
        print("skip", name, why);
        ++skipped_;
    }
    [[nodiscard]] int finish() const {
        std::fprintf(out_, "preflight: %d checks, %d failed, %d warnings, %d skipped; nothing was created\n",
                     total_, failed_, warnings_, skipped_);
        return failed_ == 0 ? 0 : exit_code(ErrorKind::Config);
    }

private:
    void print(std::string_view verdict, std::string_view name, std::string_view text) {
        std::fprintf(out_, "%-5.*s %-26.*s %.*s\n", static_cast<int>(verdict.size()), verdict.data(),
                     static_cast<int>(name.size()), name.data(), static_cast<int>(text.size()), text.data());
        std::fflush(out_);
    }

    std::FILE* out_;
    int total_ = 0;
    int failed_ = 0;
    int warnings_ = 0;
    int skipped_ = 0;
};

[[noreturn]] void fail(std::string text) {
    throw Error(ErrorKind::Config, std::move(text));
}

// source: poll: what the poller needs of the table, instead of wal_level, REPLICATION, the
// publication and the slot.
void poll_checks(Checklist& list, const config::Config& config, pg::Connection& conn,
                 const pg::ReplicationOptions& options) {
    const pg::PollOptions poll = poll_options(config);
    list.run("postgres.role", [&] {
        return Finding{fmt::format("{} (source: poll needs no REPLICATION attribute)",
                                   conn.query_value("SELECT current_user").value_or("?"))};
    });
    list.run("outbox.tables", [&] {
        pg::require_tables(conn, options.tables);
        return Finding{poll.table.qualified()};
    });
    list.run("outbox.columns", [&] {
        pg::require_columns(conn, options);
        pg::require_poll_columns(conn, poll);
        return Finding{
            fmt::format("all {} configured columns present{}", options.required_columns.size(),
                        poll.published_column.empty()
                            ? "; the id is NOT NULL"
                            : "; the id is NOT NULL, " + poll.published_column + " a nullable timestamp")};
    });
    list.run("poll.privileges", [&] {
        pg::require_poll_privileges(conn, poll);
        return Finding{poll.published_column.empty()
                           ? "SELECT, UPDATE for row locks, DELETE"
                           : "SELECT, UPDATE of " + poll.published_column + " (marks and row locks)"};
    });
    std::optional<pg::PollTable> table;
    list.run("poll.table", [&] {
        table = pg::inspect_poll_table(conn, poll);
        const std::string timestamps = table->commit_timestamps
                                           ? "track_commit_timestamp on: events carry their rows' commit time"
                                           : "track_commit_timestamp off: commit time, latency and lag count "
                                             "from the poll that finds a row";
        if (!table->warnings.empty()) {
            std::string text;
            for (const auto& w : table->warnings) text += w + "; ";
            return Finding{text + timestamps, true};
        }
        return Finding{"indexes on " + poll.order_by + " and " + poll.id_column + "; " + timestamps,
                       !table->commit_timestamps};
    });
    if (!table) {
        list.skip("poll.lock", "the table could not be inspected");
        return;
    }
    list.run("poll.lock", [&] {
        if (const auto holder = pg::poll_lock_holder(conn, table->oid)) {
            return Finding{
                fmt::format("held by backend pid {}: another relay polls {}; this one would wait as a "
                            "standby",
                            *holder, poll.table.qualified()),
                true};
        }
        return Finding{fmt::format("free (advisory lock ({}, {}))", pg::kPollLockClass, table->oid)};
    });
}

}  // namespace

int run_preflight(const config::Config& config, const std::string& config_path, std::FILE* out) {
    Checklist list(out);
    list.run("config", [&] { return Finding{"valid: " + config_path}; });
    const kafka::PublisherOptions kafka_options = publisher_options(config);
    list.run("kafka.properties", [&] {
        kafka::check_properties(kafka_options);
        if (config.kafka.properties.empty()) return Finding{"none set; the relay's own are valid"};
        return Finding{fmt::format("librdkafka accepts all {}", config.kafka.properties.size())};
    });
    const bool polling = config.source == config::Source::Poll;
    std::optional<StateFile> state;
    if (polling) list.skip("state_file", "not used with source: poll");
    if (!polling)
        list.run("state_file", [&] {
            const auto path = config::state_file_path(config.postgres);
            if (!path) {
                return Finding{
                    "none: set postgres.state_file (or run with StateDirectory=) so that a lost slot "
                    "stops the relay instead of being recreated",
                    true};
            }
            state.emplace(*path);
            const std::size_t slots = state->check_without_writing();
            return Finding{fmt::format("{} ({} slot{} remembered)", *path, slots, slots == 1 ? "" : "s")};
        });

    pg::ReplicationOptions options = replication_options(config);
    std::optional<pg::Connection> conn;
    pg::ServerIdentity identity;
    list.run("postgres.connect", [&] {
        conn.emplace(pg::Connection::connect(options.dsn, pg::ReplicationMode::None, options.password,
                                             "outbox-relay-preflight", pg::TargetServer::Primary));
        identity.server_version = conn->server_version();
        identity.address = conn->server_address();
        return Finding{fmt::format("{} as {} (PostgreSQL {}.{})", identity.address,
                                   conn->query_value("SELECT current_user").value_or("?"),
                                   identity.server_version / 10000, identity.server_version % 10000)};
    });
    if (conn) {
        list.run("postgres.primary", [&] {
            pg::refuse_standby(*conn, identity);
            return Finding{"not in recovery"};
        });
        list.run("postgres.version", [&] {
            if (identity.server_version < kMinServerVersion) {
                fail(fmt::format("PostgreSQL {} is older than 14, the oldest version outbox-relay supports",
                                 pg::version_text(identity.server_version)));
            }
            return Finding{"supported (14 and later)"};
        });
    }
    if (conn && polling) {
        poll_checks(list, config, *conn, options);
    } else if (conn) {
        list.run("postgres.wal_level", [&] {
            pg::require_logical_wal_level(*conn);
            return Finding{"logical"};
        });
        list.run("postgres.role", [&] {
            const auto rows = conn->query(
                "SELECT rolname, rolreplication::text, rolsuper::text FROM pg_roles WHERE rolname = "
                "current_user");
            if (rows.empty()) fail("cannot read the role's attributes from pg_roles");
            const std::string role = rows[0][0].value_or("?");
            if (rows[0][1] != "true" && rows[0][2] != "true") {
                fail(fmt::format("role {} has no REPLICATION attribute; fix: ALTER ROLE {} REPLICATION;",
                                 role, pg::quote_identifier(role)));
            }
            return Finding{
                fmt::format("{} may replicate{}", role, rows[0][2] == "true" ? " (superuser)" : "")};
        });
        list.run("outbox.tables", [&] {
            pg::require_tables(*conn, options.tables);
            return Finding{
                fmt::format("{} table{}", options.tables.size(), options.tables.size() == 1 ? "" : "s")};
        });
        list.run("outbox.columns", [&] {
            pg::require_columns(*conn, options);
            return Finding{fmt::format("all {} configured columns present", options.required_columns.size())};
        });
        if (options.publish_updates || options.publish_deletes) {
            list.run("outbox.replica_identity", [&] {
                pg::require_replica_identity(*conn, options);
                return Finding{"present (on_update/on_delete need it)"};
            });
        }
        list.run("postgres.publication", [&] {
            if (pg::check_publication(*conn, options)) {
                return Finding{fmt::format("\"{}\" carries the outbox tables", options.publication)};
            }
            // Missing, and the relay would create it: can it? (Owner of every table and CREATE on
            // the database, or superuser.)
            bool may_create = conn->query_value(
                                  "SELECT (rolsuper OR has_database_privilege(current_database(), "
                                  "'CREATE'))::text FROM pg_roles WHERE rolname = current_user") == "true";
            for (const auto& t : options.tables) {
                may_create =
                    may_create && conn->query_value(
                                      "SELECT (pg_has_role(c.relowner, 'USAGE') OR (SELECT rolsuper FROM "
                                      "pg_roles WHERE rolname = current_user))::text FROM pg_class c JOIN "
                                      "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND "
                                      "c.relname = $2",
                                      {t.schema, t.name}) == "true";
            }
            if (!may_create) {
                fail(fmt::format(
                    "publication \"{}\" is missing and this role cannot create it (it must own the "
                    "outbox tables and have CREATE on the database); create it as the table owner: "
                    "{}; and set postgres.create_publication: false",
                    options.publication, pg::create_publication_sql(options)));
            }
            return Finding{fmt::format("\"{}\" is missing: the relay will create it", options.publication),
                           true};
        });
        std::optional<pg::ExistingSlot> slot;
        list.run("postgres.slot", [&] {
            slot = pg::find_slot(*conn, options);
            if (slot) {
                std::string text =
                    fmt::format("\"{}\" at {}, wal_status {}", options.slot,
                                slot->state.confirmed_flush.to_string(), slot->state.wal_status);
                if (slot->active_pid) {
                    return Finding{text + fmt::format("; active in pid {}: a relay would wait as a standby",
                                                      *slot->active_pid),
                                   true};
                }
                return Finding{text};
            }
            if (!options.create_slot) {
                fail(fmt::format(
                    "replication slot \"{}\" does not exist (postgres.create_slot is false); create "
                    "it: SELECT pg_create_logical_replication_slot({}, 'pgoutput');",
                    options.slot, pg::quote_literal(options.slot)));
            }
            return Finding{fmt::format("\"{}\" is missing: the relay will create it", options.slot), true};
        });
        list.run("postgres.capacity", [&] {
            const auto rows = conn->query(
                "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM "
                "pg_replication_slots), current_setting('max_wal_senders')::int - (SELECT count(*) FROM "
                "pg_stat_replication)");
            const int free_slots = std::stoi(rows.at(0).at(0).value_or("0"));
            const int free_senders = std::stoi(rows.at(0).at(1).value_or("0"));
            if (!slot && free_slots < 1) {
                fail(
                    "no free replication slot (max_replication_slots is reached): raise "
                    "max_replication_slots "
                    "and restart PostgreSQL, or drop an unused slot");
            }
            if (free_senders < 1) {
                fail(
                    "no free WAL sender (max_wal_senders is reached): raise max_wal_senders and restart "
                    "PostgreSQL");
            }
            return Finding{
                fmt::format("{} free replication slot(s), {} free WAL sender(s)", free_slots, free_senders)};
        });
        list.run("postgres.failover", [&] {
            pg::require_failover_support(options, identity.server_version);
            if (identity.server_version < 170000) {
                return Finding{
                    "no failover slots before PostgreSQL 17: after a failover the relay stops with exit 78 "
                    "(docs/operations.md, \"Failover\")",
                    true};
            }
            const std::string standby_slots =
                conn->query_value("SHOW synchronized_standby_slots").value_or("");
            const bool failover_slot = slot ? slot->state.failover : options.slot_failover.value_or(true);
            if (!failover_slot) {
                return Finding{"the slot is not a failover slot: a promoted standby will not have it", true};
            }
            if (standby_slots.empty()) {
                return Finding{
                    "failover slot, but synchronized_standby_slots is not set: a promoted standby may "
                    "lack events already published",
                    true};
            }
            return Finding{"failover slot; synchronized_standby_slots = " + standby_slots};
        });
        list.run("postgres.replication", [&] {
            pg::Connection repl =
                pg::Connection::connect(options.dsn, pg::ReplicationMode::Database, options.password,
                                        "outbox-relay-preflight", pg::TargetServer::Primary);
            const auto ident = repl.query("IDENTIFY_SYSTEM");
            if (ident.size() != 1 || ident[0].size() < 4 || !ident[0][3]) {
                fail("the replication connection is not bound to a database (add dbname to postgres.dsn)");
            }
            identity.system_id = ident[0][0].value_or("");
            identity.timeline = static_cast<std::uint32_t>(std::stoul(ident[0][1].value_or("0")));
            identity.database = *ident[0][3];
            if (!slot && state) {
                if (const auto known = state->find(identity.system_id, identity.database, options.slot)) {
                    fail(fmt::format(
                        "the slot is missing, but this relay streamed from it before (timeline {}, last "
                        "confirmed {}; state file {}): the relay would stop with exit 78 (see "
                        "docs/operations.md, \"The slot is missing\")",
                        known->timeline, known->confirmed.to_string(), state->path()));
                }
            }
            return Finding{fmt::format("system {}, timeline {}, database {}", identity.system_id,
                                       identity.timeline, identity.database)};
        });
    } else if (polling) {
        for (const char* name : {"postgres.primary", "postgres.version", "postgres.role", "outbox.tables",
                                 "outbox.columns", "poll.privileges", "poll.table", "poll.lock"}) {
            list.skip(name, "no connection");
        }
    } else {
        for (const char* name :
             {"postgres.primary", "postgres.version", "postgres.wal_level", "postgres.role", "outbox.tables",
              "outbox.columns", "postgres.publication", "postgres.slot", "postgres.capacity",
              "postgres.failover", "postgres.replication"}) {
            list.skip(name, "no connection");
        }
    }

    kafka::ClusterProbe probe;
    list.run("kafka.brokers", [&] {
        probe = kafka::probe_cluster(kafka_options, std::chrono::seconds(10));
        if (probe.error) {
            fail(fmt::format("no answer from {}: {}", config.kafka.bootstrap_servers, *probe.error));
        }
        return Finding{fmt::format("{} broker(s) answered", probe.brokers)};
    });
    if (!probe.error) {
        list.run("kafka.topics", [&] {
            std::set<std::string> wanted;
            if (config.outbox.topic_is_fixed()) wanted.insert(config.outbox.topic);
            if (config.outbox.on_invalid == outbox::OnInvalid::DeadLetter)
                wanted.insert(config.outbox.dead_letter_topic);
            std::string missing;
            for (const auto& name : wanted) {
                const auto it = probe.topics.find(name);
                if (it == probe.topics.end()) {
                    missing += (missing.empty() ? "" : ", ") + name;
                } else if (!it->second.empty()) {
                    fail(fmt::format("topic {}: {}", name, it->second));
                }
            }
            for (const auto& [name, error] : probe.topics) {
                if (!error.empty()) fail(fmt::format("topic {}: {}", name, error));
            }
            if (!missing.empty()) {
                return Finding{
                    fmt::format("{} do(es) not exist yet: created on first use only if the brokers allow "
                                "it (auto.create.topics.enable)",
                                missing),
                    true};
            }
            return Finding{fmt::format(
                "{} topic(s) visible{}", probe.topics.size(),
                config.outbox.topic_is_fixed() ? "" : "; the templated topics are checked as events arrive")};
        });
    }
    return list.finish();
}

}  // namespace outbox::app

// The replication stream against a real PostgreSQL: what committed is decoded exactly once,
// in commit order, with exact values; the slot never advances past what the client confirmed.
#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <string>
#include <vector>

#include "pg/replication_stream.h"
#include "support/outbox_table.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/replication_reader.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

// The outbox table with a column of each type the decoder must render exactly.
std::string typed_outbox_ddl() {
    return outbox_ddl(OutboxTable{
        .extra_columns = {"seq int NOT NULL", "data bytea", "uid uuid", "at timestamptz", "note text"}});
}

pg::ReplicationOptions options_for(const std::string& dsn) {
    pg::ReplicationOptions o;
    o.dsn = dsn;
    o.slot = "test_slot";
    o.publication = "test_pub";
    o.tables = {pg::TableName{"public", "outbox"}};
    o.status_interval = 100ms;
    o.confirm_coalesce = 20ms;
    return o;
}

Lsn slot_confirmed(const PgCluster& pg) {
    const auto text = pg.query_value(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'test_slot'");
    REQUIRE(text.has_value());
    return *Lsn::parse(*text);
}

Lsn insert_lsn(const PgCluster& pg) {
    return *Lsn::parse(*pg.query_value("SELECT pg_current_wal_insert_lsn()::text"));
}

std::vector<int> seqs(const std::vector<DecodedRow>& rows) {
    std::vector<int> out;
    for (const auto& r : rows) out.push_back(std::stoi(r.values.at("seq").value()));
    return out;
}

void copy_rows(pg::Connection& conn, const std::string& copy_sql, const std::string& data) {
    conn.exec(copy_sql);
    REQUIRE(PQputCopyData(conn.get(), data.data(), static_cast<int>(data.size())) == 1);
    REQUIRE(PQputCopyEnd(conn.get(), nullptr) == 1);
    pg::ResultHandle res(PQgetResult(conn.get()));
    REQUIRE(PQresultStatus(res.get()) == PGRES_COMMAND_OK);
    while (PGresult* extra = PQgetResult(conn.get())) PQclear(extra);
}

}  // namespace

TEST_CASE("replication: exactly the committed rows arrive, in commit order, with exact values") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    pg.exec("CREATE TABLE other (x int)");  // not published
    pg::ReplicationStream stream(options_for(pg.tcp_dsn()));
    stream.start();
    CHECK(stream.slot().created);
    ReplicationReader reader(stream);
    reader.confirm_commits = true;

    auto a = pg.connect();
    auto b = pg.connect();
    const std::string unicode = "Grüße, 世界 🚀 \"quoted\" \\ tab\t";
    // 1: one row with every interesting type.
    a.exec_params(
        "INSERT INTO outbox (seq, aggregatetype, aggregateid, payload, data, uid, at, note) "
        "VALUES (1, 'order', 'o-1', $1::jsonb, $2::bytea, $3::uuid, $4::timestamptz, $5)",
        {R"({"total": 12.5, "items": ["a", "b"], "name": "Grüße"})", "\\x00ff10",
         "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2024-02-29 13:14:15.123456+00", unicode});
    // 2-4: a multi-row INSERT.
    a.exec(
        "INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (2, 'order', 'o-2'), (3, 'order', "
        "'o-3'), (4, 'user', 'u-1')");
    // A rolled-back transaction and a rolled-back savepoint leave nothing.
    a.exec("BEGIN");
    a.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (100, 'order', 'rolled-back')");
    a.exec("ROLLBACK");
    a.exec("BEGIN");
    a.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (5, 'order', 'o-5')");
    a.exec("SAVEPOINT s");
    a.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (101, 'order', 'rolled-back')");
    a.exec("ROLLBACK TO SAVEPOINT s");
    a.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (6, 'order', 'o-6')");
    a.exec("COMMIT");
    // 7-9: COPY.
    copy_rows(a, "COPY outbox (seq, aggregatetype, aggregateid, note) FROM STDIN",
              "7\tcopy\tc-7\t\\N\n8\tcopy\tc-8\tline\\nbreak\n9\tcopy\tc-9\tüber\n");
    // 10: a 1 MB payload.
    const std::string big(1024 * 1024, 'x');
    a.exec_params(
        "INSERT INTO outbox (seq, aggregatetype, aggregateid, payload) VALUES (10, 'big', 'b-1', "
        "jsonb_build_object('blob', $1::text))",
        {big});
    // Two sessions interleaved: B commits first, so B's row comes first.
    a.exec("BEGIN");
    a.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (12, 'order', 'session-a')");
    b.exec("BEGIN");
    b.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (11, 'order', 'session-b')");
    a.exec("INSERT INTO other VALUES (1)");
    b.exec("COMMIT");
    a.exec("COMMIT");

    REQUIRE(reader.pump_until([&] { return reader.rows().size() >= 12; }, 30s));
    // Nothing else trickles in afterwards.
    const Lsn end = insert_lsn(pg);
    reader.pump_until([&] { return stream.received() >= end; }, 2s);
    const auto rows = reader.rows();
    CHECK(seqs(rows) == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    CHECK(reader.transactions().size() == 7);  // 1 | 2-4 | 5,6 | 7-9 | 10 | 11 | 12

    const auto& first = rows.at(0).values;
    CHECK(rows.at(0).relation == "public.outbox");
    CHECK(first.at("aggregatetype") == "order");
    CHECK(first.at("aggregateid") == "o-1");
    // jsonb's text form as the server prints it (keys sorted by length, then bytes).
    CHECK(first.at("payload") == R"({"name": "Grüße", "items": ["a", "b"], "total": 12.5})");
    CHECK(first.at("data") == "\\x00ff10");
    CHECK(first.at("uid") == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    CHECK(first.at("at") == "2024-02-29 13:14:15.123456+00");
    CHECK(first.at("note") == unicode);
    CHECK(rows.at(1).values.at("payload") == std::nullopt);
    CHECK(rows.at(1).values.at("note") == std::nullopt);
    CHECK(rows.at(6).values.at("note") == std::nullopt);
    CHECK(rows.at(7).values.at("note") == "line\nbreak");
    CHECK(rows.at(8).values.at("note") == "über");
    CHECK(rows.at(9).values.at("payload") == "{\"blob\": \"" + big + "\"}");
    CHECK(rows.at(10).values.at("aggregateid") == "session-b");
    CHECK(rows.at(11).values.at("aggregateid") == "session-a");
    // Commit order is LSN order.
    for (std::size_t i = 1; i < reader.transactions().size(); ++i) {
        CHECK(reader.transactions()[i - 1].end_lsn <= reader.transactions()[i].commit_lsn);
    }
}

TEST_CASE(
    "replication: every message type a server sends is decoded: Type, Update, Delete, Truncate, logical "
    "messages, Origin, COMMIT PREPARED") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    pg.exec("CREATE TYPE mood AS ENUM ('ok', 'sad')");
    pg.exec("ALTER TABLE outbox ADD COLUMN mood mood");
    // Every operation published (the relay's own publication publishes inserts only).
    pg.exec("CREATE PUBLICATION test_pub FOR TABLE outbox");
    // Created before the slot: on 14 a transaction that changes only catalogs still arrives
    // as an empty Begin/Commit.
    pg.exec("SELECT pg_replication_origin_create('upstream')");
    pg::ReplicationStream stream(options_for(pg.tcp_dsn()));
    stream.start();
    ReplicationReader reader(stream);
    reader.confirm_commits = true;

    auto conn = pg.connect();
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid, mood) VALUES (1, 'order', 'o-1', 'ok')");
    conn.exec("UPDATE outbox SET note = 'updated' WHERE seq = 1");
    conn.exec("DELETE FROM outbox WHERE seq = 1");
    conn.exec("TRUNCATE outbox");
    // A transactional message travels with its transaction; a non-transactional one arrives on
    // its own, even from a transaction that rolls back.
    conn.exec("BEGIN");
    conn.exec("SELECT pg_logical_emit_message(true, 'outbox', 'in transaction')");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (2, 'order', 'o-2')");
    conn.exec("COMMIT");
    conn.exec("BEGIN");
    conn.exec("SELECT pg_logical_emit_message(false, 'outbox', 'not transactional')");
    conn.exec("SELECT pg_logical_emit_message(true, 'outbox', 'rolled back')");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (100, 'order', 'rolled-back')");
    conn.exec("ROLLBACK");
    conn.exec("SELECT pg_logical_emit_message(true, 'outbox', '\\x00ff'::bytea)");
    // A transaction replayed from another server carries its origin.
    conn.exec("SELECT pg_replication_origin_session_setup('upstream')");
    conn.exec("BEGIN");
    conn.exec("SELECT pg_replication_origin_xact_setup('0/ABCDEF', now())");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (3, 'order', 'o-3')");
    conn.exec("COMMIT");
    conn.exec("SELECT pg_replication_origin_session_reset()");
    // Two-phase commit without the two_phase option: decoded at COMMIT PREPARED, never at
    // PREPARE, and a ROLLBACK PREPARED sends nothing.
    conn.exec("BEGIN");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (4, 'order', 'o-4')");
    conn.exec("PREPARE TRANSACTION 'commit_me'");
    conn.exec("BEGIN");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (101, 'order', 'rolled-back')");
    conn.exec("PREPARE TRANSACTION 'roll_me_back'");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (5, 'order', 'o-5')");
    conn.exec("ROLLBACK PREPARED 'roll_me_back'");
    conn.exec("COMMIT PREPARED 'commit_me'");
    conn.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (6, 'order', 'last')");

    REQUIRE(
        reader.pump_until([&] { return !reader.rows().empty() && seqs(reader.rows()).back() == 6; }, 30s));
    const Lsn end = insert_lsn(pg);
    reader.pump_until([&] { return stream.received() >= end; }, 2s);

    // The messages grouped by transaction, Relation and Type left out (when the server resends
    // them differs between versions); a message outside a transaction is a group of its own.
    std::vector<std::string> groups;
    std::string open;
    std::size_t types = 0;
    for (const auto& kind : reader.message_kinds()) {
        if (kind == "Relation") continue;
        if (kind == "Type") {
            ++types;
            continue;
        }
        if (kind == "Begin") {
            open = kind;
        } else if (!open.empty()) {
            open += " " + kind;
            if (kind == "Commit") {
                groups.push_back(open);
                open.clear();
            }
        } else {
            groups.push_back(kind);
        }
    }
    CHECK(groups == std::vector<std::string>{"Begin Insert Commit", "Begin Update Commit",
                                             "Begin Delete Commit", "Begin Truncate Commit",
                                             "Begin Message Insert Commit", "Message", "Begin Message Commit",
                                             "Begin Origin Insert Commit", "Begin Insert Commit",
                                             "Begin Insert Commit", "Begin Insert Commit"});
    CHECK(types >= 1);  // the enum column's type precedes its Relation
    CHECK(seqs(reader.rows()) == std::vector<int>{1, 2, 3, 5, 4, 6});
    CHECK(reader.rows().at(0).values.at("mood") == "ok");

    const auto& txns = reader.transactions();
    REQUIRE(txns.size() == 10);
    REQUIRE(txns[4].messages.size() == 1);
    CHECK(txns[4].messages[0].transactional);
    CHECK(txns[4].messages[0].prefix == "outbox");
    CHECK(txns[4].messages[0].content == "in transaction");
    REQUIRE(reader.lone_messages().size() == 1);
    CHECK_FALSE(reader.lone_messages()[0].transactional);
    CHECK(reader.lone_messages()[0].content == "not transactional");
    REQUIRE(txns[5].messages.size() == 1);
    CHECK(txns[5].messages[0].content == std::string("\x00\xff", 2));
    CHECK(txns[6].origin == "upstream");
    CHECK_FALSE(txns[7].origin.has_value());
    for (const auto& t : txns) {
        for (const auto& m : t.messages) CHECK(m.content != "rolled back");
    }
}

TEST_CASE("replication: ALTER TABLE ADD COLUMN between inserts is decoded with the new shape (unix socket)") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    pg::ReplicationStream stream(options_for(pg.unix_dsn()));
    stream.start();
    CHECK(stream.over_unix_socket());  // the session's catch-up pacing depends on it
    ReplicationReader reader(stream);
    reader.confirm_commits = true;
    pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (1, 'order', 'o-1')");
    pg.exec("ALTER TABLE outbox ADD COLUMN tenant text DEFAULT 'acme'");
    pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (2, 'order', 'o-2')");
    pg.exec(
        "INSERT INTO outbox (seq, aggregatetype, aggregateid, tenant) VALUES (3, 'order', 'o-3', 'globex')");
    pg.exec("ALTER TABLE outbox DROP COLUMN note");
    pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (4, 'order', 'o-4')");
    REQUIRE(reader.pump_until([&] { return reader.rows().size() >= 4; }, 30s));
    const auto rows = reader.rows();
    CHECK(rows[0].values.count("tenant") == 0);
    CHECK(rows[0].column_names.size() == 11);  // 6 of the outbox shape + 5 extra
    CHECK(rows[1].values.at("tenant") == "acme");
    CHECK(rows[2].values.at("tenant") == "globex");
    CHECK(rows[2].column_names.size() == 12);
    CHECK(rows[3].values.count("note") == 0);
    CHECK(rows[3].values.at("tenant") == "acme");
    CHECK(rows[3].column_names.size() == 11);
}

TEST_CASE(
    "replication: the slot never passes what the client confirmed, idle slots advance, fast stop does not "
    "hang") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    pg.exec("CREATE TABLE other (x int)");
    pg::ReplicationStream stream(options_for(pg.tcp_dsn()));
    stream.start();
    CHECK_FALSE(stream.over_unix_socket());
    const Lsn start = stream.slot().confirmed_flush;
    ReplicationReader reader(stream);  // confirms nothing by itself

    for (int i = 1; i <= 3; ++i) {
        pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (" + std::to_string(i) +
                ", 'o', 'k')");
    }
    REQUIRE(reader.pump_until([&] { return reader.transactions().size() == 3; }, 30s));
    // Received but not confirmed: status updates go out every 100 ms, the slot stays put.
    reader.pump_for(1s);
    CHECK(slot_confirmed(pg) == start);
    CHECK(stream.received() > start);

    const Lsn first_end = reader.transactions()[0].end_lsn;
    stream.confirm(first_end);
    CHECK(reader.pump_until([&] { return slot_confirmed(pg) == first_end; }, 10s));
    reader.pump_for(500ms);
    CHECK(slot_confirmed(pg) == first_end);

    // Nothing in flight and traffic only on an unpublished table: the keepalive position is
    // confirmed and the slot keeps advancing.
    const Lsn last_end = reader.transactions()[2].end_lsn;
    stream.confirm(last_end);
    reader.confirm_idle_keepalives = true;
    for (int round = 0; round < 3; ++round) {
        pg.exec("INSERT INTO other SELECT generate_series(1, 1000)");
        const Lsn target = insert_lsn(pg);
        CHECK(reader.pump_until([&] { return slot_confirmed(pg) >= target; }, 20s));
    }
    CHECK(slot_confirmed(pg) > last_end);
    // Only the three outbox transactions carry rows. 15+ skips transactions that changed nothing
    // published; 14 sends each as an empty Begin/Commit.
    const auto with_rows = std::count_if(reader.transactions().begin(), reader.transactions().end(),
                                         [](const DecodedTransaction& t) { return !t.rows.empty(); });
    CHECK(with_rows == 3);
    if (pg.server_major() >= 15) CHECK(reader.transactions().size() == 3);
    if (pg.server_major() == 14) CHECK(reader.transactions().size() == 6);

    // A fast shutdown waits for the walsender's client to confirm the end of WAL: with idle
    // keepalives confirmed it completes while the stream is connected.
    pg.begin_stop(PgCluster::StopMode::Fast);
    bool stream_ended = false;
    const bool stopped = wait_until(
        [&] {
            if (!stream_ended) {
                try {
                    reader.pump_for(20ms);
                } catch (const Error& e) {
                    CHECK(e.kind() == ErrorKind::Transient);
                    stream_ended = true;
                }
            }
            return !pg.running();
        },
        20s, 1ms);
    CHECK(stopped);
    CHECK(stream_ended);
}

TEST_CASE("replication: keepalives that request a reply are answered under a short wal_sender_timeout") {
    PgCluster pg(PgClusterOptions{.wal_sender_timeout = 2s});
    pg.exec(typed_outbox_ddl());
    auto options = options_for(pg.tcp_dsn());
    options.status_interval = 60s;  // only the replies to keepalives keep the connection alive
    pg::ReplicationStream stream(options);
    stream.start();
    ReplicationReader reader(stream);
    reader.confirm_commits = true;
    reader.confirm_idle_keepalives = true;
    // 3x the timeout with no traffic, then traffic still flows on the same connection.
    reader.pump_for(6s);
    CHECK(reader.keepalives_with_reply_requested() >= 2);
    pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid) VALUES (1, 'o', 'k')");
    CHECK(reader.pump_until([&] { return reader.rows().size() == 1; }, 10s));
    CHECK(pg.log().find("terminating walsender process due to replication timeout") == std::string::npos);
}

TEST_CASE("replication: missing publication, slot or table is a clear configuration error") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    pg.exec("CREATE TABLE audit (x int)");
    auto options = options_for(pg.tcp_dsn());
    options.create_publication = false;
    options.create_slot = false;

    auto start_error = [&](const pg::ReplicationOptions& o) -> std::string {
        pg::ReplicationStream stream(o);
        try {
            stream.start();
        } catch (const Error& e) {
            CHECK(e.kind() == ErrorKind::Config);
            return e.what();
        }
        FAIL("start() succeeded");
        return {};
    };
    std::string err = start_error(options);
    CHECK(err.find("publication \"test_pub\" does not exist") != std::string::npos);
    CHECK(err.find(
              "CREATE PUBLICATION \"test_pub\" FOR TABLE \"public\".\"outbox\" WITH (publish = 'insert')") !=
          std::string::npos);

    pg.exec("CREATE PUBLICATION test_pub FOR TABLE audit");
    err = start_error(options);
    CHECK(err.find("does not include outbox table(s) \"public\".\"outbox\"") != std::string::npos);
    CHECK(err.find("ALTER PUBLICATION \"test_pub\" ADD TABLE \"public\".\"outbox\"") != std::string::npos);

    pg.exec("ALTER PUBLICATION test_pub ADD TABLE outbox");
    err = start_error(options);
    CHECK(err.find("replication slot \"test_slot\" does not exist") != std::string::npos);
    CHECK(err.find("pg_create_logical_replication_slot('test_slot', 'pgoutput')") != std::string::npos);

    auto missing_table = options;
    missing_table.tables = {pg::TableName{"public", "nope"}};
    err = start_error(missing_table);
    CHECK(err.find("outbox table public.nope does not exist") != std::string::npos);
}

TEST_CASE("replication: a second client on an active slot gets a transient 'active' error") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    pg::ReplicationStream first(options_for(pg.tcp_dsn()));
    first.start();
    pg::ReplicationStream second(options_for(pg.tcp_dsn()));
    try {
        second.start();
        FAIL("second start() succeeded");
    } catch (const pg::ServerError& e) {
        CHECK(e.kind() == ErrorKind::Transient);
        CHECK(e.sqlstate() == "55006");
        CHECK(std::string(e.what()).find("is active for PID") != std::string::npos);
    }
}

TEST_CASE("replication: outbox-relay-dump prints decoded messages as JSON lines and stops at --endpos") {
    PgCluster pg;
    pg.exec(typed_outbox_ddl());
    const std::string dump = std::string(OUTBOX_BUILD_DIR) + "/outbox-relay-dump";
    // Create the slot first (it decodes only what commits after it exists).
    std::string out;
    pg.exec("CREATE PUBLICATION dump_pub FOR TABLE outbox WITH (publish = 'insert')");
    pg.exec("SELECT pg_create_logical_replication_slot('dump_slot', 'pgoutput')");
    pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid, note) VALUES (1, 'order', 'o-1', 'naïve')");
    pg.exec("INSERT INTO outbox (seq, aggregatetype, aggregateid, data) VALUES (2, 'order', 'o-2', '\\x01')");
    const Lsn end = insert_lsn(pg);
    const int rc = run_command(
        SpawnOptions{.argv = {dump, "--dsn", pg.tcp_dsn(), "--slot", "dump_slot", "--publication", "dump_pub",
                              "--table", "public.outbox", "--endpos", end.to_string()}},
        &out, 30s);
    CHECK(rc == 0);
    CHECK(out.find(R"("type":"Relation")") != std::string::npos);
    CHECK(out.find(R"("aggregateid":"o-1")") != std::string::npos);
    CHECK(out.find(R"("note":"naïve")") != std::string::npos);
    CHECK(out.find(R"("data":"\\x01")") != std::string::npos);
    std::size_t commits = 0;
    for (std::size_t pos = 0; (pos = out.find(R"("type":"Commit")", pos)) != std::string::npos; ++pos)
        ++commits;
    CHECK(commits == 2);
    // It confirmed what it printed: a second run starts after those transactions.
    const int rc2 = run_command(
        SpawnOptions{.argv = {dump, "--dsn", pg.tcp_dsn(), "--slot", "dump_slot", "--publication", "dump_pub",
                              "--table", "public.outbox", "--endpos", end.to_string()}},
        &out, 30s);
    CHECK(rc2 == 0);
    CHECK(out.find(R"("type":"Insert")") == std::string::npos);
}

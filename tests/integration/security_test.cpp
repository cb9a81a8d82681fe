// Least privilege and TLS to PostgreSQL, as docs/operations.md describes them. Each test reads the
// page's recipe from the page (doc_text.h) and runs it, changing only paths, addresses and the
// port, so the documentation cannot drift from what is tested: the relay streams, publishes and
// confirms, or stops with exit 78 and the fix before it creates its slot.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/doc_text.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"
#include "support/test_pki.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* kOperations = "docs/operations.md";
constexpr const char* kRoleSection = "### Least-privilege role";
constexpr const char* kTlsSection = "### TLS";
constexpr const char* kDatabase = "app";         // the database the page's recipes name
constexpr const char* kRole = "outbox_relay";    // the role the page creates
constexpr const char* kOwner = "app_owner";      // owns the outbox table and the database
constexpr const char* kDocHost = "db.internal";  // the page's server host name
constexpr const char* kDocNetwork = "10.0.0.0/8";
constexpr const char* kDocCa = "/etc/outbox-relay/pg-ca.crt";
constexpr const char* kDocClientCert = "/etc/outbox-relay/pg-client.crt";
constexpr const char* kDocServerFiles = "/etc/postgresql/tls/";

// A normal connection to the recipes' database as `user`, over TCP (sslmode=prefer: TLS when the
// server offers it).
pg::Connection connect_as(const PgCluster& pg, const std::string& user) {
    return pg::Connection::connect(
        "host=127.0.0.1 port=" + std::to_string(pg.port()) + " dbname=" + kDatabase + " user=" + user,
        pg::ReplicationMode::None, std::nullopt, "outbox-test");
}

// The page's role recipe, its two parts: what the table owner runs, then what a superuser runs.
struct RoleRecipe {
    std::string as_owner;
    std::string as_superuser;
    std::string password;  // the one the recipe gives the role
};

RoleRecipe role_recipe() {
    const std::string sql = doc_code_block(kOperations, kRoleSection, "CREATE ROLE");
    const std::string owner_lead = "-- as the owner of the outbox table";
    const std::string superuser_lead = "\n-- as a superuser";
    REQUIRE_MESSAGE(sql.rfind(owner_lead, 0) == 0, sql);
    const auto split = sql.find(superuser_lead);
    REQUIRE_MESSAGE(split != std::string::npos, sql);
    std::smatch password;
    REQUIRE(std::regex_search(sql, password, std::regex("PASSWORD '([^']+)'")));
    return {sql.substr(0, split), sql.substr(split + 1), password[1]};
}

// Runs the page's role recipe in `s` (database "app"): the outbox table and the database belong
// to kOwner, PUBLIC lost CONNECT on the database (so the recipe's GRANT CONNECT is needed), the
// owner's part runs as the owner, the rest as superuser. Returns the recipe.
RoleRecipe apply_role_recipe(RelayScenario& s) {
    s.pg.exec(std::string("CREATE ROLE ") + kOwner + " LOGIN");
    s.pg.exec(std::string("ALTER DATABASE ") + kDatabase + " OWNER TO " + kOwner);
    s.pg.exec(std::string("ALTER TABLE public.outbox OWNER TO ") + kOwner, kDatabase);
    s.pg.exec(std::string("REVOKE CONNECT ON DATABASE ") + kDatabase + " FROM PUBLIC");
    RoleRecipe recipe = role_recipe();
    connect_as(s.pg, kOwner).exec(recipe.as_owner);
    s.pg.exec(recipe.as_superuser, kDatabase);
    return recipe;
}

// A directory standing in for systemd's $CREDENTIALS_DIRECTORY, holding pg-password.
std::string credentials_dir(const RelayScenario& s, const std::string& password) {
    const std::string dir = s.pg.run_dir() + "/credentials";
    fs::create_directories(dir);
    std::ofstream(dir + "/pg-password") << password << "\n";
    fs::permissions(dir + "/pg-password", fs::perms::owner_read | fs::perms::owner_write);
    return dir;
}

// A DSN of the page's with its server host name replaced by `host` and its port (5432 or none)
// by the test server's.
std::string with_test_server(std::string dsn, const PgCluster& pg, const std::string& host) {
    const std::string doc_host = std::string("host=") + kDocHost;
    const std::string port = "port=" + std::to_string(pg.port());
    dsn = contains(dsn, "port=5432") ? substitute(dsn, {{"port=5432", port}})
                                     : substitute(dsn, {{doc_host, doc_host + " " + port}});
    return substitute(dsn, {{doc_host, "host=" + host}});
}

// "name = 'value'  # comment" lines of a postgresql.conf block.
std::vector<std::pair<std::string, std::string>> conf_settings(const std::string& block) {
    std::vector<std::pair<std::string, std::string>> settings;
    std::istringstream in(block);
    const std::regex line_re(R"(^\s*([a-z_]+)\s*=\s*('([^']*)'|[^\s#]+)\s*(#.*)?$)");
    for (std::string line; std::getline(in, line);) {
        if (line.find_first_not_of(" \t") == std::string::npos || line.front() == '#') continue;
        std::smatch m;
        REQUIRE_MESSAGE(std::regex_match(line, m, line_re), "not a postgresql.conf setting: " << line);
        settings.emplace_back(m[1], m[3].matched ? m[3].str() : m[2].str());
    }
    return settings;
}

// The server side of the page's TLS recipe: its postgresql.conf lines with the test PKI's files
// in place of /etc/postgresql/tls/ (copied into the data directory, owned by the server's OS
// user, 0600), and a pg_hba.conf of hostssl lines only: the harness's superuser and the table
// owner (the application) trusted, then the lines of `hba_block` (a block of the page's) for
// 127.0.0.1/32. Returns once TLS connections with verify-full work and TLS-less ones are
// refused.
void serve_tls(PgCluster& pg, const TestPki& pki, const std::string& hba_block) {
    pg.copy_to_data_dir(pki.server_cert, "server.crt");
    pg.copy_to_data_dir(pki.server_key, "server.key");
    pg.copy_to_data_dir(pki.ca_cert, "ca.crt");
    const std::string conf = substitute(doc_code_block(kOperations, kTlsSection, "ssl = on"),
                                        {{kDocServerFiles, pg.data_dir() + "/"}});
    const auto settings = conf_settings(conf);
    REQUIRE(settings.size() == 4);
    pg.set(settings);

    std::string rules = "local all all trust\nhostssl all " + pg.superuser() +
                        " 127.0.0.1/32 trust\nhostssl all " + kOwner + " 127.0.0.1/32 trust\n";
    std::istringstream in(hba_block);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.front() != '#')
            rules += substitute(line, {{kDocNetwork, "127.0.0.1/32"}}) + "\n";
    }
    pg.write_hba(rules);
    const std::string base = "host=127.0.0.1 port=" + std::to_string(pg.port()) + " user=" + pg.superuser() +
                             " dbname=postgres connect_timeout=10";
    const bool in_effect = wait_until(
        [&] {
            try {
                pg::Connection::connect(base + " sslmode=disable");
                return false;  // the old pg_hba.conf still lets TLS-less connections in
            } catch (const Error&) {
            }
            try {
                return pg::Connection::connect(base + " sslmode=verify-full sslrootcert=" + pki.ca_cert)
                           .query_value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "t";
            } catch (const Error&) {
                return false;
            }
        },
        30s, 50ms);
    REQUIRE_MESSAGE(in_effect, "TLS is not in effect:\n" << pg.log());
}

// How many replication slots exist: the relay's would be the only one (the publication is the
// owner's).
std::string slot_count(const RelayScenario& s) {
    return s.pg.query_value("SELECT count(*) FROM pg_replication_slots", kDatabase).value_or("?");
}

// The relay streams: rows the application commits reach Kafka and the slot confirms them.
void check_streams(RelayScenario& s) {
    connect_as(s.pg, kOwner)
        .exec(
            "INSERT INTO public.outbox (aggregatetype, aggregateid, type, payload) "
            "SELECT 'order', 'o-' || g, 'Created', '{}' FROM generate_series(1, 3) g");
    const Lsn end = s.wal_insert_lsn();
    CHECK(s.wait_for_records("outbox.event.order", 3).size() == 3);
    CHECK(wait_until([&] { return s.slot_confirmed() >= end; }, 30s, 50ms));
}

// The database user of the relay's walsender.
std::string walsender_user(const RelayScenario& s) {
    return s.pg.query_value("SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_replication").value_or("");
}

}  // namespace

TEST_CASE("security: the least-privilege role of docs/operations.md streams, publishes and confirms") {
    RelayScenario s({.dbname = kDatabase});
    const RoleRecipe recipe = apply_role_recipe(s);
    // The role has LOGIN and REPLICATION, nothing else: no privilege on the table, no membership.
    CHECK(s.pg.query_value("SELECT has_table_privilege('outbox_relay', 'public.outbox', "
                           "'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
                           kDatabase) == "f");
    CHECK(s.pg.query_value("SELECT format('%s %s %s %s %s', rolcanlogin, rolreplication, rolsuper, "
                           "rolcreaterole OR rolcreatedb, rolbypassrls) FROM pg_roles WHERE rolname = "
                           "'outbox_relay'") == "t t f f f");
    CHECK(s.pg.query_value("SELECT count(*) FROM pg_auth_members WHERE member = 'outbox_relay'::regrole") ==
          "0");
    // Its password is checked: only scram-sha-256 lets it in.
    s.pg.write_hba("local all all trust\nhost " + std::string(kDatabase) + " " + kRole +
                   " 127.0.0.1/32 scram-sha-256\nhost all " + s.pg.superuser() +
                   " 127.0.0.1/32 trust\nhost all " + kOwner + " 127.0.0.1/32 trust\n");
    CHECK(wait_until(
        [&] {
            try {
                connect_as(s.pg, kRole);  // no password
                return false;
            } catch (const Error& e) {
                return contains(e.what(), "no password supplied");
            }
        },
        10s, 20ms));

    const std::string yaml = doc_code_block(kOperations, kRoleSection, "create_publication");
    RelayConfig config{.dsn = with_test_server(doc_yaml_value(yaml, "dsn"), s.pg, "127.0.0.1"),
                       .password_file = doc_yaml_value(yaml, "password_file"),
                       .create_publication = doc_yaml_value(yaml, "create_publication") == "true",
                       .create_slot = doc_yaml_value(yaml, "create_slot") == "true"};
    CHECK(config.create_publication == false);
    RelayProcess& relay =
        s.launch_relay(config, {{"CREDENTIALS_DIRECTORY", credentials_dir(s, recipe.password)}});
    REQUIRE(relay.wait_streaming());
    CHECK(walsender_user(s) == kRole);
    check_streams(s);
    // The publication is the owner's; the relay created only its slot.
    CHECK(s.pg.query_value(
              "SELECT string_agg(pubname || ' ' || pubowner::regrole::text, ',') FROM pg_publication",
              kDatabase) == "outbox_relay app_owner");
    CHECK(s.pg.query_value("SELECT string_agg(slot_name || ' ' || plugin || ' ' || database, ',') FROM "
                           "pg_replication_slots") == "outbox_relay pgoutput app");
    CHECK(relay.terminate() == 0);
}

TEST_CASE("security: TLS to PostgreSQL with sslmode=verify-full streams") {
    RelayScenario s({.dbname = kDatabase});
    const RoleRecipe recipe = apply_role_recipe(s);
    const TestPki pki = make_test_pki(s.pg.run_dir() + "/pki", kRole);
    serve_tls(s.pg, pki, doc_code_block(kOperations, kTlsSection, "scram-sha-256"));

    const std::string yaml = doc_code_block(kOperations, kTlsSection, "password_file");
    const std::string dsn =
        substitute(with_test_server(doc_yaml_value(yaml, "dsn"), s.pg, "127.0.0.1"), {{kDocCa, pki.ca_cert}});
    CHECK(contains(dsn, "sslmode=verify-full"));
    RelayProcess& relay = s.launch_relay(
        {.dsn = dsn, .password_file = doc_yaml_value(yaml, "password_file"), .create_publication = false},
        {{"CREDENTIALS_DIRECTORY", credentials_dir(s, recipe.password)}});
    REQUIRE(relay.wait_streaming());
    CHECK(walsender_user(s) == kRole);
    CHECK(s.pg.query_value("SELECT bool_and(ssl) FROM pg_stat_replication JOIN pg_stat_ssl USING (pid)") ==
          "t");
    check_streams(s);
    CHECK(relay.terminate() == 0);
}

TEST_CASE(
    "security: a PostgreSQL certificate from another CA or for another host name exits 78 with the fix, no "
    "slot created") {
    RelayScenario s({.dbname = kDatabase});
    const RoleRecipe recipe = apply_role_recipe(s);
    const TestPki pki = make_test_pki(s.pg.run_dir() + "/pki", kRole);
    serve_tls(s.pg, pki, doc_code_block(kOperations, kTlsSection, "scram-sha-256"));
    const std::string yaml = doc_code_block(kOperations, kTlsSection, "password_file");
    const std::map<std::string, std::string> env{
        {"CREDENTIALS_DIRECTORY", credentials_dir(s, recipe.password)}};
    const std::string doc_dsn = doc_yaml_value(yaml, "dsn");

    {
        INFO("the server's certificate checked against another CA");
        const std::string log = s.expect_config_exit(
            {.dsn = substitute(with_test_server(doc_dsn, s.pg, "127.0.0.1"), {{kDocCa, pki.other_ca_cert}}),
             .password_file = "pg-password",
             .create_publication = false},
            env);
        CHECK(contains(log, "certificate verify failed"));
        CHECK(contains(log, "retrying will not help"));
        CHECK(contains(log, "sslrootcert"));
        CHECK_FALSE(contains(log, "retrying in"));
    }
    {
        INFO("the right CA, but the DSN's host name is not in the certificate");
        const std::string log = s.expect_config_exit(
            {.dsn = substitute(with_test_server(doc_dsn, s.pg, std::string(kDocHost) + " hostaddr=127.0.0.1"),
                               {{kDocCa, pki.ca_cert}}),
             .password_file = "pg-password",
             .create_publication = false},
            env);
        CHECK(contains(log, "does not match host name \"db.internal\""));
        CHECK(contains(log, "retrying will not help"));
        CHECK_FALSE(contains(log, "retrying in"));
    }
    CHECK(slot_count(s) == "0");
}

TEST_CASE(
    "security: client certificate authentication to PostgreSQL streams, a key file others can read or no "
    "certificate exits 78") {
    RelayScenario s({.dbname = kDatabase});
    apply_role_recipe(s);
    const TestPki pki = make_test_pki(s.pg.run_dir() + "/pki", kRole);
    serve_tls(s.pg, pki, doc_code_block(kOperations, kTlsSection, "10.0.0.0/8    cert"));
    const std::string creds = s.pg.run_dir() + "/credentials";
    fs::create_directories(creds);
    fs::copy_file(pki.client_key, creds + "/pg-client.key");
    const std::map<std::string, std::string> env{{"CREDENTIALS_DIRECTORY", creds}};
    const std::string yaml = doc_code_block(kOperations, kTlsSection, "sslkey=");
    const std::string dsn = substitute(with_test_server(doc_yaml_value(yaml, "dsn"), s.pg, "localhost"),
                                       {{kDocCa, pki.ca_cert}, {kDocClientCert, pki.client_cert}});
    CHECK(contains(dsn, "sslkey=${CREDENTIALS_DIRECTORY}/pg-client.key"));

    {
        INFO("no client certificate");
        const std::string log = s.expect_config_exit(
            {.dsn = substitute(dsn, {{" sslcert=" + pki.client_cert, ""},
                                     {" sslkey=${CREDENTIALS_DIRECTORY}/pg-client.key", ""}}),
             .create_publication = false},
            env);
        CHECK(contains(log, "connection requires a valid client certificate"));
        CHECK(contains(log, "retrying will not help"));
        CHECK_FALSE(contains(log, "retrying in"));
    }
    {
        INFO("the key file readable by others");
        fs::permissions(creds + "/pg-client.key", fs::perms::owner_read | fs::perms::owner_write |
                                                      fs::perms::group_read | fs::perms::others_read);
        const std::string log = s.expect_config_exit({.dsn = dsn, .create_publication = false}, env);
        CHECK(contains(log, "has group or world access"));
        CHECK(contains(log, "retrying will not help"));
        CHECK(contains(log, "chmod 0600"));
        CHECK_FALSE(contains(log, "retrying in"));
    }
    CHECK(slot_count(s) == "0");

    fs::permissions(creds + "/pg-client.key", fs::perms::owner_read | fs::perms::owner_write);
    RelayProcess& relay = s.launch_relay({.dsn = dsn, .create_publication = false}, env);
    REQUIRE(relay.wait_streaming());
    CHECK(walsender_user(s) == kRole);
    CHECK(
        s.pg.query_value("SELECT string_agg(client_dn, ',') FROM pg_stat_replication JOIN pg_stat_ssl USING "
                         "(pid)") == "/CN=outbox_relay");
    check_streams(s);
    CHECK(relay.terminate() == 0);
}

TEST_CASE(
    "security: a connection without TLS to a hostssl-only PostgreSQL exits 78 with the pg_hba and sslmode "
    "fix, "
    "no slot created") {
    RelayScenario s({.dbname = kDatabase});
    const RoleRecipe recipe = apply_role_recipe(s);
    const TestPki pki = make_test_pki(s.pg.run_dir() + "/pki", kRole);
    serve_tls(s.pg, pki, doc_code_block(kOperations, kTlsSection, "scram-sha-256"));
    const std::string yaml = doc_code_block(kOperations, kTlsSection, "password_file");
    const std::string dsn =
        substitute(with_test_server(doc_yaml_value(yaml, "dsn"), s.pg, "127.0.0.1"),
                   {{"sslmode=verify-full", "sslmode=disable"}, {" sslrootcert=" + std::string(kDocCa), ""}});
    const std::string log =
        s.expect_config_exit({.dsn = dsn, .password_file = "pg-password", .create_publication = false},
                             {{"CREDENTIALS_DIRECTORY", credentials_dir(s, recipe.password)}});
    CHECK(contains(log,
                   "no pg_hba.conf entry for host \"127.0.0.1\", user \"outbox_relay\", database \"app\""));
    CHECK(contains(log, "no encryption"));
    CHECK(contains(log, "retrying will not help"));
    CHECK(contains(log, "sslmode=verify-full"));
    CHECK(contains(log, "hostssl"));
    CHECK_FALSE(contains(log, "retrying in"));
    CHECK(slot_count(s) == "0");
}

// What an operator relies on: metrics and health endpoints, systemd notifications, secrets
// kept out of logs.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "support/http_client.h"
#include "support/kcat.h"
#include "support/mock_kafka.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

// The relay as these tests run it: no Kafka headers, metrics served on `metrics_listen` ("": none).
RelayConfig operations_config(const std::string& metrics_listen = "") {
    return RelayConfig{.headers = {}, .metrics_listen = metrics_listen};
}

}  // namespace

TEST_CASE("operations: /metrics, /healthz and /readyz tell what the relay is doing") {
    RelayScenario s;
    PgCluster& pg = s.pg;
    const int port = free_tcp_port();
    RelayProcess& relay = s.streaming_relay(operations_config("127.0.0.1:" + std::to_string(port)));
    for (int i = 0; i < 25; ++i) {
        pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, payload) VALUES ('order', 'o-" +
                std::to_string(i) + "', '{}')");
    }
    pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, payload) VALUES (NULL, 'bad', '{}')");
    std::string metrics;
    REQUIRE(wait_until(
        [&] {
            metrics = http_get(port, "/metrics").body;
            const auto published =
                metric_sample(metrics, "outbox_relay_events_published_total", "topic=\"outbox.event.order\"");
            const auto dead =
                metric_sample(metrics, "outbox_relay_events_dead_lettered_total", "reason=\"null_value\"");
            // Transactions are counted at their Commit, which an event's acknowledgement may precede.
            const auto transactions = metric_sample(metrics, "outbox_relay_transactions_total");
            return published && *published == 25 && dead && *dead == 1 && transactions && *transactions >= 26;
        },
        30s, 100ms));
    CHECK(metric_sample(metrics, "outbox_relay_wal_received_bytes_total") > 0);
    CHECK(metric_sample(metrics, "outbox_relay_postgres_connected") == 1);
    CHECK(metric_sample(metrics, "outbox_relay_kafka_up") == 1);
    CHECK(metric_sample(metrics, "outbox_relay_confirmed_lsn") > 0);
    CHECK(metric_sample(metrics, "outbox_relay_commit_to_ack_seconds_count") == 25);
    CHECK(metric_sample(metrics, "outbox_relay_build_info", "version=\"") == 1);
    CHECK(metrics.find("outbox_relay_reconnects_total{target=\"kafka\"} 0") != std::string::npos);
    // The slot's status is polled every 5 s.
    CHECK(wait_until(
        [&] {
            metrics = http_get(port, "/metrics").body;
            return metric_sample(metrics, "outbox_relay_slot_wal_status", "status=\"reserved\"") == 1;
        },
        15s, 200ms));
    // Idle: lag returns to zero.
    CHECK(wait_until(
        [&] {
            metrics = http_get(port, "/metrics").body;
            return metric_sample(metrics, "outbox_relay_lag_bytes") == 0 &&
                   metric_sample(metrics, "outbox_relay_inflight_events") == 0;
        },
        20s, 200ms));
    const auto health = http_get(port, "/healthz");
    CHECK(health.status == 200);
    CHECK(http_get(port, "/readyz").status == 200);

    // promtool (Debian's prometheus package) checks the exposition format and naming.
    const std::string file = pg.run_dir() + "/metrics.txt";
    std::ofstream(file) << metrics;
    std::string out;
    const int rc = run_command(
        SpawnOptions{.argv = {"sh", "-c", "promtool check metrics < " + file}, .stderr_path = "=stdout"},
        &out, 30s);
    INFO(out);
    CHECK(rc == 0);

    // /readyz follows PostgreSQL: not ready while the server is down.
    pg.stop();
    CHECK(wait_until([&] { return http_get(port, "/readyz").status == 503; }, 20s, 100ms));
    CHECK(http_get(port, "/healthz").status == 200);  // alive, reconnecting
    pg.start();
    CHECK(wait_until([&] { return http_get(port, "/readyz").status == 200; }, 40s, 200ms));
    CHECK(metric_sample(http_get(port, "/metrics").body, "outbox_relay_reconnects_total",
                        "target=\"postgres\"") >= 1);
    CHECK(relay.terminate() == 0);
}

TEST_CASE("operations: systemd gets READY=1, periodic WATCHDOG=1, RELOADING=1 around SIGHUP and STOPPING=1") {
    RelayScenario s;
    const std::string socket_path = s.pg.run_dir() + "/notify.sock";
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::vector<std::string> messages;
    auto drain = [&] {
        char buf[4096];
        while (true) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) break;
            messages.emplace_back(buf, static_cast<std::size_t>(n));
        }
    };
    auto count = [&](const std::string& text) {
        return std::count_if(messages.begin(), messages.end(),
                             [&](const std::string& m) { return m.find(text) != std::string::npos; });
    };
    RelayProcess& relay =
        s.launch_relay(operations_config(), {{"NOTIFY_SOCKET", socket_path}, {"WATCHDOG_USEC", "400000"}});
    CHECK(wait_until(
        [&] {
            drain();
            return count("READY=1") >= 1 && count("WATCHDOG=1") >= 3;
        },
        30s));

    // SIGHUP re-reads the file: RELOADING=1, then READY=1; the log level applies at once.
    RelayConfig reloaded = s.config(operations_config());
    reloaded.log_level = "debug";
    reloaded.log_format = "json";
    std::ofstream(relay.config_path(), std::ios::trunc) << reloaded.yaml();
    ::kill(relay.pid(), SIGHUP);
    CHECK(wait_until(
        [&] {
            drain();
            return count("RELOADING=1") == 1 && count("READY=1") >= 2;
        },
        20s));
    CHECK(relay.wait_for_log("SIGHUP: reloaded", 10s));
    CHECK(relay.wait_for_log("\"level\":\"info\",\"msg\":\"SIGHUP: reloaded", 10s));  // now JSON lines
    // A broken file keeps the running configuration.
    std::ofstream(relay.config_path(), std::ios::trunc) << "postgres: [\n";
    ::kill(relay.pid(), SIGHUP);
    CHECK(relay.wait_for_log("SIGHUP: keeping the running configuration", 10s));
    CHECK(relay.running());
    relay.terminate();
    drain();
    CHECK(count("STOPPING=1") == 1);
    // READY before the first STOPPING, and watchdog pings about every 200 ms while running.
    const auto ready =
        std::find_if(messages.begin(), messages.end(), [](const auto& m) { return m == "READY=1"; });
    const auto stopping =
        std::find_if(messages.begin(), messages.end(), [](const auto& m) { return m == "STOPPING=1"; });
    CHECK(ready < stopping);
    ::close(fd);
}

TEST_CASE("operations: passwords never reach a log line") {
    RelayScenario s;
    PgCluster& pg = s.pg;
    const std::string secret = "S3cr3t-Pa55word-xyz";
    pg.exec("CREATE ROLE relay_user WITH LOGIN REPLICATION PASSWORD '" + secret + "'");
    pg.exec("ALTER TABLE outbox OWNER TO relay_user");
    pg.exec("GRANT CREATE ON DATABASE postgres TO relay_user");  // CREATE PUBLICATION needs it
    pg.exec("ALTER SYSTEM SET password_encryption = 'scram-sha-256'");
    // Require the password for relay_user over TCP.
    std::ofstream(pg.data_dir() + "/pg_hba.conf", std::ios::trunc)
        << "local all all trust\nhost all relay_user 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 "
           "trust\n";
    pg.exec("SELECT pg_reload_conf()");
    const std::string password_file = pg.run_dir() + "/pg-password";
    std::ofstream(password_file) << secret << "\n";
    const std::string dsn_with_password =
        "postgresql://relay_user:" + secret + "@127.0.0.1:" + std::to_string(pg.port()) + "/postgres";
    RelayConfig config = operations_config();
    config.dsn = dsn_with_password;
    config.status_interval = std::nullopt;
    config.log_level = "debug";
    RelayProcess& relay = s.streaming_relay(config);
    pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, payload) VALUES ('order', 'o-1', '{}')");
    CHECK(wait_until(
        [&] { return kcat_consume_all(s.kafka.bootstrap(), "outbox.event.order", 5s).size() == 1; }, 20s,
        200ms));
    relay.terminate();

    // The same with the password in a file and a wrong one in the DSN: a failed login is logged.
    RelayConfig config2 = config;
    config2.dsn = "host=127.0.0.1 port=" + std::to_string(pg.port()) +
                  " user=relay_user dbname=postgres password=wrong-" + secret;
    config2.password_file = password_file;
    config2.log_format = "json";
    RelayProcess& relay2 = s.streaming_relay(config2);  // password_file wins over the DSN
    relay2.terminate();

    const std::string log = relay.log();
    CHECK(log.find("relay_user:***@") != std::string::npos);
    CHECK(log.find(secret) == std::string::npos);
    CHECK(log.find("postgresql://relay_user:***@127.0.0.1") != std::string::npos);
    // Also --check-config's summary.
    std::string out;
    run_command(SpawnOptions{.argv = {relay_binary(), "--config", relay.config_path(), "--check-config"},
                             .stderr_path = "=stdout"},
                &out, 30s);
    CHECK(out.find("configuration OK") != std::string::npos);
    CHECK(out.find(secret) == std::string::npos);
}

TEST_CASE(
    "operations: secrets never reach a log line: libpq and librdkafka errors, --check-config, text and JSON "
    "logs, the start-up line") {
    RelayScenario s;
    PgCluster& pg = s.pg;
    // Distinct secrets, so that a leak names its source; none has a character JSON would escape.
    const std::string pg_secret = "Pg-S3cret-4711";        // relay_user's password
    const std::string wrong_secret = "Wrong-S3cret-1234";  // a wrong password
    const std::string mangled_secret = "Mangled-S3cret";   // a password in a DSN libpq cannot parse
    const std::string sasl_secret = "Sasl-S3cret-0815";    // kafka.properties.sasl.password
    const std::string key_secret = "Key-S3cret-2342";      // kafka.properties.ssl.key.password
    const auto leaked = [&](const std::string& text) {
        std::string found;
        for (const auto& secret : {pg_secret, wrong_secret, mangled_secret, sasl_secret, key_secret}) {
            if (contains(text, secret)) found += secret + " ";
        }
        return found;
    };
    pg.exec("CREATE ROLE relay_user WITH LOGIN REPLICATION PASSWORD '" + pg_secret + "'");
    pg.exec("ALTER TABLE outbox OWNER TO relay_user");
    pg.exec("GRANT CREATE ON DATABASE postgres TO relay_user");  // CREATE PUBLICATION needs it
    pg.write_hba(
        "local all all trust\nhost all relay_user 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 "
        "trust\n");
    const std::string port = std::to_string(pg.port());
    const std::string uri_user = "postgresql://relay_user:";
    const std::string conninfo = "host=127.0.0.1 port=" + port + " dbname=postgres user=relay_user";
    const std::vector<std::pair<std::string, std::string>> kafka_secrets{{"sasl.password", sasl_secret},
                                                                         {"ssl.key.password", key_secret}};
    // librdkafka's SASL against the mock broker, which has no SASL handshake: an authentication
    // error on every connection; its debug log dumps the configuration too.
    std::vector<std::pair<std::string, std::string>> sasl = kafka_secrets;
    sasl.insert(sasl.end(), {{"security.protocol", "SASL_PLAINTEXT"},
                             {"sasl.mechanisms", "PLAIN"},
                             {"sasl.username", "relay"},
                             {"debug", "security,broker,conf"}});

    struct Run {
        std::string name;
        std::string dsn;
        std::vector<std::pair<std::string, std::string>> kafka;
        std::vector<std::string> expected;  // in the log
        std::string shown_dsn;              // the DSN as the start-up line shows it (in part)
        bool exits_78;                      // else it keeps running, retrying or streaming
    };
    const std::vector<Run> runs{
        {"wrong password in a URI",
         uri_user + wrong_secret + "@127.0.0.1:" + port + "/postgres",
         kafka_secrets,
         {"password authentication failed"},
         "postgresql://relay_user:***@127.0.0.1:" + port,
         true},
        {"wrong password in a key/value DSN",
         conninfo + " password='" + wrong_secret + "'",
         kafka_secrets,
         {"password authentication failed"},
         "user=relay_user password=***",
         true},
        {"unreachable server",
         uri_user + pg_secret + "@127.0.0.1:" + std::to_string(free_tcp_port()) + "/postgres",
         kafka_secrets,
         {"Connection refused", "retrying in"},
         "postgresql://relay_user:***@127.0.0.1:",
         false},
        {"malformed URI, quoted whole by libpq",
         uri_user + mangled_secret + "@[::1:" + port + "/postgres",
         kafka_secrets,
         {"in URI: ", "fix postgres.dsn"},
         "postgresql://relay_user:***@[::1:",
         true},
        {"undecodable password, quoted by libpq",
         uri_user + mangled_secret + "%zz@127.0.0.1:" + port + "/postgres",
         kafka_secrets,
         {"invalid percent-encoded token", "fix postgres.dsn"},
         "postgresql://relay_user:***@",
         true},
        {"Kafka SASL failing, librdkafka debug log",
         conninfo + " password=" + pg_secret,
         sasl,
         {"SASL authentication", "sasl.password = [redacted]", kStreamingLine},
         "user=relay_user password=***",
         false},
    };
    for (const auto& run : runs) {
        for (const std::string format : {"text", "json"}) {
            CAPTURE(run.name);
            CAPTURE(format);
            std::string dir = pg.run_dir() + "/secrets-" + std::to_string(&run - runs.data()) + "-" + format;
            std::filesystem::create_directories(dir);
            RelayConfig config = operations_config();
            config.dsn = run.dsn;
            config.kafka_properties = run.kafka;
            config.log_level = "debug";
            config.log_format = format;
            RelayProcess& relay = s.launch_relay(config, {}, dir);
            if (run.exits_78) {
                CHECK(relay.wait_exit(30s) == std::optional<int>(78));
            } else {
                for (const auto& text : run.expected) CHECK(relay.wait_for_log(text, 30s));
                relay.terminate();
            }
            const std::string log = relay.log();
            for (const auto& text : run.expected) CHECK(contains(log, text));
            CHECK(contains(log, "starting: config "));
            CHECK(contains(log, run.shown_dsn));
            CHECK(leaked(log).empty());
            if (format == "json") {
                std::istringstream lines(log);
                for (std::string line; std::getline(lines, line);) {
                    CAPTURE(line);
                    CHECK((line.rfind("{", 0) == 0 && line.back() == '}'));
                }
            }
        }
    }

    // --check-config: the summary, and errors beside the secrets.
    RelayConfig config = s.config(operations_config());
    config.dsn = conninfo + " password='" + pg_secret + "'";
    config.kafka_properties = sasl;
    const std::string path = pg.run_dir() + "/secrets-check.yaml";
    const auto check_config = [&](const std::string& yaml, int expected_rc) {
        std::ofstream(path, std::ios::trunc) << yaml;
        std::string out;
        CHECK(run_command(SpawnOptions{.argv = {relay_binary(), "--config", path, "--check-config"},
                                       .stderr_path = "=stdout"},
                          &out, 30s) == expected_rc);
        CHECK(leaked(out).empty());
        return out;
    };
    const std::string summary = check_config(config.yaml(), 0);
    CHECK(contains(summary, "configuration OK"));
    CHECK(contains(summary, "password=***"));
    CHECK(contains(summary, "sasl.password: ***"));
    CHECK(contains(summary, "ssl.key.password: ***"));
    config.kafka_properties.emplace_back("acks", "1");  // refused
    CHECK(contains(check_config(config.yaml(), 78), "kafka.properties.acks"));
    config.kafka_properties.pop_back();
    std::string unclosed = config.yaml();  // the DSN's closing quote missing
    unclosed.erase(unclosed.find(pg_secret + "'\"") + pg_secret.size() + 1, 1);
    CHECK(contains(check_config(unclosed, 78), path));
}

TEST_CASE("operations: a real Prometheus server scrapes the relay while events flow") {
    RelayScenario s;
    PgCluster& pg = s.pg;
    const int relay_port = free_tcp_port();
    RelayProcess& relay = s.streaming_relay(operations_config("127.0.0.1:" + std::to_string(relay_port)));

    const std::string dir = pg.run_dir() + "/prometheus";
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "rule_files: [\"" OUTBOX_SOURCE_DIR
           "/prometheus/alerts.yml\"]\n"
           "scrape_configs:\n  - job_name: outbox-relay\n    static_configs:\n"
           "      - targets: [\"127.0.0.1:"
        << relay_port << "\"]\n";
    const int prom_port = free_tcp_port();
    SpawnOptions opts{.argv = {"prometheus", "--config.file=" + dir + "/prometheus.yml",
                               "--storage.tsdb.path=" + dir + "/data",
                               "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                      .stdout_path = dir + "/prometheus.log",
                      .stderr_path = "=stdout",
                      .parent_death_signal = SIGKILL};
    ChildProcess prometheus(opts);

    int inserted = 0;
    auto query = [&](const std::string& promql) {
        std::string path = "/api/v1/query?query=";
        for (char c : promql) {
            if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
                path += c;
            } else {
                char hex[4];
                std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
                path += hex;
            }
        }
        return http_get(prom_port, path).body;
    };
    // Events keep flowing while Prometheus scrapes; it sees the counter grow.
    std::string answer;
    const bool seen = wait_until(
        [&] {
            pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, payload) VALUES ('order', 'o-" +
                    std::to_string(inserted++) + "', '{}')");
            answer = query("sum(outbox_relay_events_published_total) > 0");
            return answer.find("\"status\":\"success\"") != std::string::npos &&
                   answer.find("\"result\":[]") == std::string::npos;
        },
        60s, 250ms);
    INFO(answer);
    INFO(read_file(dir + "/prometheus.log"));
    CHECK(seen);
    CHECK(query("up{job=\"outbox-relay\"}").find("\"value\":[") != std::string::npos);
    // The shipped rules load (a rule file that fails to parse is reported by /api/v1/rules).
    const std::string rules = http_get(prom_port, "/api/v1/rules").body;
    CHECK(rules.find("OutboxRelayDown") != std::string::npos);
    prometheus.stop(SIGTERM, 10s);
    CHECK(relay.terminate() == 0);
}

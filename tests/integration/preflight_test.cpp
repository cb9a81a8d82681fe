// outbox-relay --preflight: one line per check against the real PostgreSQL and Kafka, nothing
// created, exit 0 or 78.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

struct Preflight {
    int exit_code = -1;
    std::string output;
};

Preflight run_preflight(const RelayScenario& s, const RelayConfig& config, const std::string& name) {
    const std::string path = s.pg.run_dir() + "/" + name + ".yaml";
    std::ofstream(path) << s.config(config).yaml();
    Preflight p;
    p.exit_code = run_command(SpawnOptions{.argv = {relay_binary(), "--config", path, "--preflight"},
                                           .env_set = {{"STATE_DIRECTORY", s.pg.run_dir()}},
                                           .stderr_path = "=stdout"},
                              &p.output, 60s);
    MESSAGE("outbox-relay --preflight (" << name << "), exit " << p.exit_code << ":\n" << p.output);
    return p;
}

// The line of check `name`, or "".
std::string line_of(const std::string& output, const std::string& name) {
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.size() > 6 && line.compare(6, name.size() + 1, name + " ") == 0) return line;
    }
    return "";
}

void check_nothing_created(const RelayScenario& s) {
    CHECK(s.pg.query_value("SELECT count(*) FROM pg_replication_slots") == std::optional<std::string>("0"));
    CHECK(s.pg.query_value("SELECT count(*) FROM pg_publication") == std::optional<std::string>("0"));
}

}  // namespace

TEST_CASE(
    "preflight: a healthy set-up passes every check, warns what the relay will create, creates nothing") {
    RelayScenario s;
    const Preflight p = run_preflight(s, {}, "healthy");
    CHECK(p.exit_code == 0);
    for (const char* check :
         {"config", "kafka.properties", "state_file", "postgres.connect", "postgres.primary",
          "postgres.version", "postgres.wal_level", "postgres.role", "outbox.tables", "outbox.columns",
          "postgres.capacity", "postgres.replication", "kafka.brokers"}) {
        CAPTURE(check);
        CHECK(line_of(p.output, check).rfind("ok ", 0) == 0);
    }
    CHECK(line_of(p.output, "postgres.publication").rfind("warn", 0) == 0);
    CHECK(contains(line_of(p.output, "postgres.slot"), "is missing: the relay will create it"));
    CHECK(contains(p.output, "0 failed"));
    CHECK(contains(p.output, "nothing was created"));
    check_nothing_created(s);
    CHECK_FALSE(std::ifstream(s.pg.run_dir() + "/outbox_relay.state").good());  // not even the state file
}

TEST_CASE("preflight: a broken set-up lists every failure with its fix and exits 78, creating nothing") {
    RelayScenario s;
    s.pg.exec("CREATE ROLE plain LOGIN");
    RelayConfig config{
        .dsn = "host=127.0.0.1 port=" + std::to_string(s.pg.port()) + " dbname=postgres user=plain",
        .headers = {"type", "trace_id"},
        .bootstrap_servers = "127.0.0.1:1"};  // no broker there
    const Preflight p = run_preflight(s, config, "broken");
    CHECK(p.exit_code == 78);
    CHECK(line_of(p.output, "postgres.role").rfind("FAIL", 0) == 0);
    CHECK(contains(line_of(p.output, "postgres.role"), "ALTER ROLE \"plain\" REPLICATION;"));
    CHECK(contains(line_of(p.output, "outbox.columns"), "has no column \"trace_id\" (outbox.headers)"));
    CHECK(contains(line_of(p.output, "postgres.publication"), "cannot create it"));
    CHECK(line_of(p.output, "postgres.replication").rfind("FAIL", 0) == 0);
    CHECK(line_of(p.output, "kafka.brokers").rfind("FAIL", 0) == 0);
    CHECK(line_of(p.output, "postgres.wal_level").rfind("ok ", 0) == 0);  // the rest still ran
    check_nothing_created(s);
}

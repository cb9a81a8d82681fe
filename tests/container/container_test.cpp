// The container image against a throwaway PostgreSQL and the mock Kafka broker: run by
// scripts/container-test, which builds the image with its own Docker daemon and passes
//   DOCKER_HOST             that daemon's socket
//   OUTBOX_DOCKER           the docker client to use
//   OUTBOX_CONTAINER_IMAGE  the image it built (e.g. outbox-relay:test)
//   OUTBOX_GIT_COMMIT       what it passed as --build-arg OUTBOX_GIT_COMMIT
// The container runs as docs/operations.md ("Containers") says: --network host (to reach the
// servers on 127.0.0.1), --stop-timeout 45, --cap-drop ALL --read-only, the config bind-mounted, a
// named volume on the state directory.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/lsn.h"
#include "support/http_client.h"
#include "support/kcat.h"
#include "support/process.h"
#include "support/relay_process.h"
#include "support/relay_scenario.h"
#include "support/wait.h"

using namespace std::chrono_literals;
using namespace outbox;
using namespace outbox::test;

namespace {

std::string required_env(const char* name) {
    const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
    REQUIRE_MESSAGE((value != nullptr && *value != '\0'),
                    name << " is not set: run this test through scripts/container-test");
    return value;
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

struct CommandResult {
    int rc = -1;
    std::string out;  // stdout, and stderr with Output::Both
};

enum class Output { Stdout, Both };

// Runs the docker client; never throws on a non-zero exit (the caller checks rc). With
// Output::Stdout, stderr (e.g. the daemon's "IPv4 forwarding is disabled" warning) goes to the
// test's own stderr.
CommandResult docker(const std::vector<std::string>& args, Output output = Output::Both,
                     std::chrono::milliseconds timeout = 60s) {
    static const std::string binary = required_env("OUTBOX_DOCKER");
    SpawnOptions options;
    options.argv = {binary};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    if (output == Output::Both) options.stderr_path = "=stdout";
    CommandResult result;
    result.rc = run_command(options, &result.out, timeout);
    return result;
}

// `docker inspect --format FORMAT NAME`, trimmed; "" when it fails.
std::string inspect(const std::string& name, const std::string& format) {
    const CommandResult r = docker({"inspect", "--format", format, name}, Output::Stdout);
    return r.rc == 0 ? trimmed(r.out) : "";
}

// The container and its state volume, removed whatever happens.
class ContainerGuard {
public:
    ContainerGuard(std::string name, std::string volume) : name_(std::move(name)), volume_(std::move(volume)) {}
    ~ContainerGuard() {
        try {
            docker({"rm", "--force", name_});
            docker({"volume", "rm", "--force", volume_});
        } catch (...) {  // NOLINT(bugprone-empty-catch): the private daemon is stopped anyway
        }
    }
    ContainerGuard(const ContainerGuard&) = delete;
    ContainerGuard& operator=(const ContainerGuard&) = delete;

private:
    std::string name_;
    std::string volume_;
};

void insert_orders(const RelayScenario& s, int first, int count, const std::string& type) {
    s.pg.exec("INSERT INTO outbox (aggregatetype, aggregateid, type, payload) "
              "SELECT 'order', 'o-' || (g % 7), '" + type + "', json_build_object('n', g)::jsonb "
              "FROM generate_series(" + std::to_string(first) + ", " + std::to_string(first + count - 1) + ") g");
}

// The payloads' "n" values of `records`, as a set (duplicates collapse).
std::set<std::string> payloads(const std::vector<KafkaRecord>& records) {
    std::set<std::string> out;
    for (const auto& r : records) out.insert(r.value.value_or(""));
    return out;
}

}  // namespace

TEST_CASE("container: the image relays events as a non-root user, turns healthy, keeps its state "
          "on the volume and drains on docker stop") {
    const auto t0 = std::chrono::steady_clock::now();
    const auto at = [&] {  // "t+12.3 s": when a step finished, for the test's output
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        std::ostringstream text;
        text << "t+" << ms.count() / 1000 << "." << ms.count() % 1000 / 100 << " s: ";
        return text.str();
    };
    const std::string image = required_env("OUTBOX_CONTAINER_IMAGE");
    const std::string commit = required_env("OUTBOX_GIT_COMMIT");
    required_env("DOCKER_HOST");

    // --- the image as built: its user, state volume and health check.
    CHECK(inspect(image, "{{.Config.User}}") == "outbox-relay");
    CHECK(contains(inspect(image, "{{json .Config.Volumes}}"), "\"/var/lib/outbox-relay\""));
    CHECK(contains(inspect(image, "{{json .Config.Env}}"), "\"STATE_DIRECTORY=/var/lib/outbox-relay\""));
    CHECK(contains(inspect(image, "{{json .Config.Healthcheck.Test}}"), "curl -fsS"));
    CHECK(contains(inspect(image, "{{json .Config.Env}}"), "\"OUTBOX_HEALTHCHECK_URL=http://127.0.0.1:9187/healthz\""));

    // --- PostgreSQL, the mock broker and the outbox table on 127.0.0.1; the config for the container.
    RelayScenario s(RelayScenarioOptions{.brokers = 1});
    const int metrics_port = free_tcp_port();
    const std::string config_path = s.pg.run_dir() + "/container.yaml";
    {
        std::ofstream out(config_path);
        out << s.config({.metrics_listen = "127.0.0.1:" + std::to_string(metrics_port)}).yaml();
    }
    REQUIRE(::chmod(config_path.c_str(), 0644) == 0);  // the container's user reads it

    const std::string name = "outbox-relay-test-" + std::to_string(::getpid());
    const std::string volume = name + "-state";
    ContainerGuard guard(name, volume);
    const CommandResult run = docker({"run", "--detach", "--name", name, "--network", "host", "--stop-timeout", "45",
                                      "--cap-drop", "ALL", "--read-only",
                                      "--env", "OUTBOX_HEALTHCHECK_URL=http://127.0.0.1:" +
                                                   std::to_string(metrics_port) + "/healthz",
                                      "--volume", config_path + ":/etc/outbox-relay/outbox-relay.yaml:ro",
                                      "--volume", volume + ":/var/lib/outbox-relay", image});
    REQUIRE_MESSAGE(run.rc == 0, run.out);
    MESSAGE(at() << "started: docker run --network host --stop-timeout 45 --cap-drop ALL --read-only ... " << image);
    const auto logs = [&] { return docker({"logs", name}).out; };

    // --- events flow.
    REQUIRE_MESSAGE(wait_until([&] { return contains(logs(), kStreamingLine); }, 60s, 200ms), logs());
    const std::string start_logs = logs();
    CHECK_MESSAGE(contains(start_logs, "state file /var/lib/outbox-relay/outbox_relay.state"), start_logs);
    // "outbox-relay 0.1.0 (git <commit>)": the build argument reached --version.
    const CommandResult version = docker({"exec", name, "outbox-relay", "--version"}, Output::Stdout);
    CHECK(version.rc == 0);
    CHECK_MESSAGE(contains(version.out, "(git " + commit + ")"), version.out);
    for (int txn = 0; txn < 4; ++txn) insert_orders(s, txn * 10, 10, "Created");
    const std::vector<KafkaRecord> first = s.wait_for_records("outbox.event.order", 40);
    CHECK(first.size() == 40);
    CHECK(payloads(first).size() == 40);
    MESSAGE(at() << "events flow: " << first.size() << " records in outbox.event.order, e.g. key "
                            << first.front().key.value_or("<null>") << " value " << first.front().value.value_or(""));

    // --- not root: the image's user for `docker exec`, and the relay process itself (seen from the host).
    const CommandResult uid = docker({"exec", name, "id", "-u"}, Output::Stdout);
    REQUIRE(uid.rc == 0);
    CHECK(trimmed(uid.out) != "0");
    const std::string host_pid = inspect(name, "{{.State.Pid}}");
    REQUIRE(!host_pid.empty());
    std::string uid_line;
    {
        std::istringstream status(read_file("/proc/" + host_pid + "/status"));
        for (std::string line; std::getline(status, line);)
            if (line.rfind("Uid:", 0) == 0) uid_line = line;
    }
    std::istringstream uids(uid_line.substr(4));
    int real = -1;
    int effective = -1;
    uids >> real >> effective;
    CHECK(real > 0);
    CHECK(effective > 0);
    MESSAGE(at() << "user: docker exec id -u = " << trimmed(uid.out) << "; relay (host pid " << host_pid << ") " << uid_line);

    // --- the HEALTHCHECK (curl /healthz every 15 s) turns healthy.
    std::string health;
    CHECK_MESSAGE(wait_until(
                      [&] {
                          health = inspect(name, "{{.State.Health.Status}}");
                          return health == "healthy";
                      },
                      60s, 250ms),
                  "health " << health << "; " << inspect(name, "{{json .State.Health}}"));
    MESSAGE(at() << "health: " << health);

    // --- the state file is on the volume.
    CHECK(inspect(name, "{{range .Mounts}}{{if eq .Destination \"/var/lib/outbox-relay\"}}{{.Type}} "
                        "{{.Name}}{{end}}{{end}}") == "volume " + volume);
    const CommandResult state = docker({"exec", name, "cat", "/var/lib/outbox-relay/outbox_relay.state"});
    CHECK_MESSAGE(state.rc == 0, state.out);
    CHECK_MESSAGE(contains(state.out, std::string(" ") + kRelaySlot + " "), state.out);
    CHECK_MESSAGE(!contains(logs(), "no state file"), logs());

    // --- docker stop drains: events in flight (Kafka answers after 3 s) are acknowledged and
    // confirmed before the relay exits 0, within the 45 s stop timeout.
    const Lsn confirmed_before = s.slot_confirmed();
    s.kafka.set_rtt(1, 3000);
    const auto inside = s.pg.query_value(
        "WITH ins AS (INSERT INTO outbox (aggregatetype, aggregateid, type, payload) "
        "SELECT 'order', 'o-' || (g % 7), 'Drained', json_build_object('n', g)::jsonb "
        "FROM generate_series(1000, 1099) g RETURNING 1) "
        "SELECT pg_current_wal_insert_lsn()::text FROM (SELECT count(*) FROM ins) c");
    REQUIRE(inside.has_value());
    const auto in_drained_txn = Lsn::parse(*inside);  // a position inside that transaction
    REQUIRE(in_drained_txn.has_value());
    double inflight = 0;
    REQUIRE_MESSAGE(wait_until(
                        [&] {
                            const HttpResponse r = http_get(metrics_port, "/metrics");
                            inflight = metric_sample(r.body, "outbox_relay_inflight_events").value_or(0);
                            return inflight > 0;
                        },
                        30s),
                    logs());
    const auto stop_started = std::chrono::steady_clock::now();
    const CommandResult stop = docker({"stop", name}, Output::Both, 90s);  // the container's --stop-timeout 45
    const auto stop_took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                 stop_started);
    s.kafka.set_rtt(1, 0);
    CHECK_MESSAGE(stop.rc == 0, stop.out);
    const std::string exit_code = inspect(name, "{{.State.ExitCode}}");
    const std::string all_logs = logs();
    CHECK_MESSAGE(exit_code == "0", all_logs);
    CHECK(stop_took < 45s);
    CHECK_MESSAGE(contains(all_logs, "stopped; confirmed"), all_logs);
    const Lsn confirmed_after = s.slot_confirmed();
    CHECK(confirmed_after > *in_drained_txn);
    CHECK(*in_drained_txn > confirmed_before);
    const std::vector<KafkaRecord> all = s.wait_for_records("outbox.event.order", 140);
    CHECK(all.size() == 140);  // every event once: a clean drain sends nothing twice
    CHECK(payloads(all).size() == 140);
    MESSAGE(at() << "docker stop: " << inflight << " events in flight, stopped after " << stop_took.count()
                            << " ms, exit code " << exit_code << ", slot confirmed " << confirmed_before.to_string()
                            << " -> " << confirmed_after.to_string() << "; " << all.size() << " records in Kafka");
    const auto stopped_line = all_logs.find("stopped; confirmed");
    if (stopped_line != std::string::npos)
        MESSAGE(at() << "log: " << all_logs.substr(stopped_line, all_logs.find('\n', stopped_line) - stopped_line));

    // --- the state outlives the container: the volume keeps it for the next one (read on the host,
    // where the volume lives; a container to read it would cost a copy of the image with vfs).
    REQUIRE(docker({"rm", name}).rc == 0);
    const std::string volume_dir = trimmed(docker({"volume", "inspect", "--format", "{{.Mountpoint}}", volume},
                                                  Output::Stdout).out);
    REQUIRE(!volume_dir.empty());
    const std::string kept = trimmed(read_file(volume_dir + "/outbox_relay.state"));
    // "slot <system identifier> <database> <slot> <timeline> <last confirmed LSN>": never behind the slot.
    const auto kept_lsn = Lsn::parse(kept.substr(kept.rfind(' ') + 1));
    REQUIRE_MESSAGE(kept_lsn.has_value(), kept);
    CHECK(*kept_lsn >= confirmed_after);
    MESSAGE(at() << "state file on the volume after docker rm: " << kept.substr(kept.rfind('\n') + 1));
}

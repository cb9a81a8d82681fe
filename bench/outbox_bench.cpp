// outbox-bench: helper programs for bench/run (see bench/README.md).
//
//   outbox-bench wait-slot  --dsn D --slot S --lsn X/Y --t0-ns N [--pid P] [--timeout S]
//       Polls pg_replication_slots until confirmed_flush_lsn >= X/Y. Prints one line
//       "elapsed_s=... cpu_s=... hwm_kb=..." (CPU and VmHWM of --pid read at that moment).
//   outbox-bench poller     --dsn D --bootstrap B --table T [--batch N] [--expect N] [--timeout S]
//       Polling publisher at the relay's durability: SELECT ... ORDER BY seq LIMIT n FOR UPDATE
//       SKIP LOCKED, produce all (idempotent, acks=all), wait for every ack, DELETE, COMMIT.
//   outbox-bench live-load  --dsn D --aggtype A --rate R --seconds S [--table T]
//       Inserts into T (default public.outbox) at a fixed rate (1 ms ticks; the rows due in a tick
//       form one transaction). Prints "sent=... seconds=... rate=...".
//   outbox-bench consume-latency --bootstrap B --topic T --expect N [--timeout S] [--idle-exit-ms M]
//                                [--since-file F]
//       Consumes T from the beginning; per record: Kafka timestamp (producer create time, ms) minus
//       the outbox-commit-time header, and local receive time minus that header. Prints quantiles.
//       With --since-file, records committed before the unix time in microseconds that F holds
//       (written by bench/run when the measured load starts; read when the first record arrives
//       after it appears) are warm-up: counted as skipped=, not measured, not part of --expect.
//   outbox-bench free-port
//
// Bounded everywhere: every loop has a deadline; errors exit non-zero with a message.
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "outbox-bench: %s\n", msg.c_str());
    std::exit(2);
}

struct Args {
    std::map<std::string, std::string> kv;
    std::string get(const std::string& k, const std::string& def = "\x01") const {
        auto it = kv.find(k);
        if (it != kv.end()) return it->second;
        if (def == "\x01") die("missing --" + k);
        return def;
    }
    long long num(const std::string& k, long long def) const {
        auto it = kv.find(k);
        return it == kv.end() ? def : std::stoll(it->second);
    }
};

Args parse(int argc, char** argv, int from) {
    Args a;
    for (int i = from; i < argc; ++i) {
        std::string k = argv[i];
        if (k.rfind("--", 0) != 0 || i + 1 >= argc) die("bad argument " + k);
        a.kv[k.substr(2)] = argv[++i];
    }
    return a;
}

PGconn* connect(const std::string& dsn) {
    PGconn* c = PQconnectdb(dsn.c_str());
    if (PQstatus(c) != CONNECTION_OK) die(std::string("connect: ") + PQerrorMessage(c));
    return c;
}

PGresult* exec(PGconn* c, const std::string& sql, PGresult* ok_or_die = nullptr) {
    (void)ok_or_die;
    PGresult* r = PQexec(c, sql.c_str());
    auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        die("query failed: " + sql + ": " + PQerrorMessage(c));
    return r;
}

std::uint64_t parse_lsn(const std::string& s) {
    unsigned hi = 0, lo = 0;
    if (std::sscanf(s.c_str(), "%X/%X", &hi, &lo) != 2) die("bad LSN " + s);
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

std::int64_t now_unix_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t realtime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// utime+stime (s) and VmHWM (kB) of a process.
void proc_cost(long pid, double& cpu_s, long& hwm_kb) {
    cpu_s = -1;
    hwm_kb = -1;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (std::getline(stat, line)) {
        auto p = line.rfind(')');
        std::istringstream in(line.substr(p + 2));
        std::vector<std::string> f;
        std::string x;
        while (in >> x) f.push_back(x);
        // fields after ')' start at field 3 (state); utime is field 14, stime 15.
        if (f.size() > 13) {
            const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
            cpu_s = (std::stod(f[11]) + std::stod(f[12])) / hz;
        }
    }
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) hwm_kb = std::stol(line.substr(6));
    }
}

int cmd_wait_slot(const Args& a) {
    const std::string dsn = a.get("dsn");
    const std::string slot = a.get("slot");
    const std::uint64_t target = parse_lsn(a.get("lsn"));
    const long long t0 = a.num("t0-ns", realtime_ns());
    const long pid = static_cast<long>(a.num("pid", 0));
    const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout", 600));
    PGconn* c = connect(dsn);
    const std::string sql =
        "SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = '" +
        slot + "'";
    while (Clock::now() < deadline) {
        PGresult* r = exec(c, sql);
        if (PQntuples(r) != 1) die("no slot " + slot);
        const std::uint64_t lsn = parse_lsn(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (lsn >= target) {
            const double elapsed = static_cast<double>(realtime_ns() - t0) / 1e9;
            double cpu = -1;
            long hwm = -1;
            if (pid > 0) proc_cost(pid, cpu, hwm);
            std::printf("elapsed_s=%.4f cpu_s=%.3f hwm_kb=%ld\n", elapsed, cpu, hwm);
            PQfinish(c);
            return 0;
        }
        if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0)
            die("process " + std::to_string(pid) + " is gone");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    die("timeout waiting for slot " + slot + " to reach " + a.get("lsn"));
}

// ---------------------------------------------------------------- Kafka producer (poller)
struct DrState {
    long long delivered = 0;
    long long failed = 0;
    std::string first_error;
};

void dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* st = static_cast<DrState*>(opaque);
    if (m->err) {
        if (st->failed++ == 0) st->first_error = rd_kafka_err2str(m->err);
    } else {
        ++st->delivered;
    }
}

void set(rd_kafka_conf_t* conf, const char* k, const std::string& v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
        die(std::string(k) + ": " + err);
}

int cmd_poller(const Args& a) {
    const std::string dsn = a.get("dsn");
    const std::string table = a.get("table");
    const long long batch = a.num("batch", 1000);
    const long long expect = a.num("expect", 0);
    const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout", 900));

    DrState st;
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", a.get("bootstrap"));
    set(conf, "enable.idempotence", "true");
    set(conf, "acks", "all");
    set(conf, "linger.ms", a.get("linger-ms", "5"));
    set(conf, "message.timeout.ms", "60000");
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die(std::string("rd_kafka_new: ") + err);

    PGconn* c = connect(dsn);
    const std::string select_sql =
        "SELECT seq, id::text, aggregatetype, aggregateid, type, payload::text FROM " + table +
        " ORDER BY seq LIMIT " + std::to_string(batch) + " FOR UPDATE SKIP LOCKED";
    long long total = 0;
    const auto t0 = Clock::now();
    std::map<std::string, rd_kafka_topic_t*> topics;
    while (Clock::now() < deadline) {
        PQclear(exec(c, "BEGIN"));
        PGresult* r = exec(c, select_sql);
        const int n = PQntuples(r);
        if (n == 0) {
            PQclear(r);
            PQclear(exec(c, "COMMIT"));
            if (expect == 0 || total >= expect) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        std::string seqs = "{";
        const long long before = st.delivered;
        for (int i = 0; i < n; ++i) {
            if (i) seqs += ',';
            seqs += PQgetvalue(r, i, 0);
            const std::string topic = std::string("outbox.event.") + PQgetvalue(r, i, 2);
            const char* key = PQgetvalue(r, i, 3);
            const char* value = PQgetvalue(r, i, 5);
            const char* id = PQgetvalue(r, i, 1);
            const char* type = PQgetvalue(r, i, 4);
            for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key, std::strlen(key)),
                    RD_KAFKA_V_VALUE(const_cast<char*>(value), std::strlen(value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADER("id", id, static_cast<ssize_t>(std::strlen(id))),
                    RD_KAFKA_V_HEADER("type", type, static_cast<ssize_t>(std::strlen(type))), RD_KAFKA_V_END);
                if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("produce: ") + rd_kafka_err2str(e));
                rd_kafka_poll(rk, 10);
            }
        }
        PQclear(r);
        seqs += '}';
        // Wait for every acknowledgement of this batch (bounded).
        while (rd_kafka_outq_len(rk) > 0 && Clock::now() < deadline) rd_kafka_flush(rk, 1000);
        if (st.failed > 0) die("delivery failed: " + st.first_error);
        if (st.delivered - before != n) die("not all deliveries acknowledged before the deadline");
        const char* params[1] = {seqs.c_str()};
        PGresult* d = PQexecParams(c, ("DELETE FROM " + table + " WHERE seq = ANY($1::bigint[])").c_str(), 1,
                                   nullptr, params, nullptr, nullptr, 0);
        if (PQresultStatus(d) != PGRES_COMMAND_OK) die(std::string("delete: ") + PQerrorMessage(c));
        PQclear(d);
        PQclear(exec(c, "COMMIT"));
        total += n;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (expect > 0 && total < expect) die("poller timed out after " + std::to_string(total) + " events");
    std::printf("events=%lld elapsed_s=%.4f rate=%.0f\n", total, secs, static_cast<double>(total) / secs);
    rd_kafka_destroy(rk);
    PQfinish(c);
    return 0;
}

// ---------------------------------------------------------------- live load
int cmd_live_load(const Args& a) {
    PGconn* c = connect(a.get("dsn"));
    const std::string aggtype = a.get("aggtype");
    const double rate = static_cast<double>(a.num("rate", 1000));
    const double seconds = static_cast<double>(a.num("seconds", 20));
    const std::string table = a.get("table", "public.outbox");
    if (table.empty() || table.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.") != std::string::npos)
        die("--table: a plain [schema.]table name expected, got " + table);
    const std::string sql =
        "INSERT INTO " + table + " (id, aggregatetype, aggregateid, type, payload) "
        "SELECT gen_random_uuid(), $1, (floor(random()*1000))::int::text, 'OrderCreated', "
        "jsonb_build_object('orderId', g, 'customerId', 'c-' || (g % 977), 'amount', 42.5, 'currency', "
        "'EUR', "
        "'status', 'CREATED', 'note', repeat('x', 100)) FROM generate_series(1, $2::int) g";
    PGresult* p = PQprepare(c, "ins", sql.c_str(), 2, nullptr);
    if (PQresultStatus(p) != PGRES_COMMAND_OK) die(std::string("prepare: ") + PQerrorMessage(c));
    PQclear(p);
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    long long sent = 0, txns = 0;
    auto next = t0;
    while (Clock::now() < end) {
        const double el = std::chrono::duration<double>(Clock::now() - t0).count();
        const long long due = static_cast<long long>(el * rate) - sent;
        if (due > 0) {
            const std::string n = std::to_string(due);
            const char* params[2] = {aggtype.c_str(), n.c_str()};
            PGresult* r = PQexecPrepared(c, "ins", 2, params, nullptr, nullptr, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) die(std::string("insert: ") + PQerrorMessage(c));
            PQclear(r);
            sent += due;
            ++txns;
        }
        next += std::chrono::milliseconds(1);
        std::this_thread::sleep_until(next);
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("sent=%lld txns=%lld seconds=%.3f rate=%.0f\n", sent, txns, secs,
                static_cast<double>(sent) / secs);
    PQfinish(c);
    return 0;
}

// ---------------------------------------------------------------- consumer latency
// "YYYY-MM-DDTHH:MM:SS.ffffffZ" -> unix microseconds.
std::int64_t parse_commit_time(const char* s, std::size_t n) {
    std::string t(s, n);
    std::tm tm{};
    int us = 0;
    if (std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &us) < 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(timegm(&tm)) * 1'000'000 + us;
}

double quantile(std::vector<double>& v, double q) {
    if (v.empty()) return NAN;
    const std::size_t i =
        std::min(v.size() - 1,
                 static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - (q > 0 ? 1 : 0));
    return v[i];
}

volatile std::sig_atomic_t g_term = 0;
void on_term(int) {
    g_term = 1;
}

int cmd_consume(const Args& a) {
    const std::string topic = a.get("topic");
    const long long expect = a.num("expect", 0);
    const auto deadline = Clock::now() + std::chrono::seconds(a.num("timeout", 120));
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", a.get("bootstrap"));
    set(conf, "group.id", "outbox-bench-" + std::to_string(getpid()));
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    set(conf, "fetch.wait.max.ms", "5");
    set(conf, "fetch.error.backoff.ms", "10");
    set(conf, "topic.metadata.refresh.interval.ms", "1000");
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die(std::string("consumer: ") + err);
    rd_kafka_poll_set_consumer(rk);
    // Assign every partition from the beginning (no group coordination: nothing to wait for).
    int partitions = 0;
    while (partitions == 0 && Clock::now() < deadline) {
        rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                partitions = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(t);
        if (partitions == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (partitions == 0) die("no metadata for topic " + topic);
    rd_kafka_topic_partition_list_t* tl = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p)
        rd_kafka_topic_partition_list_add(tl, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, tl) != RD_KAFKA_RESP_ERR_NO_ERROR) die("assign failed");
    rd_kafka_topic_partition_list_destroy(tl);
    std::signal(SIGTERM, on_term);
    // Tell bench/run we are consuming (it starts the load after this line).
    std::printf("ready partitions=%d\n", partitions);
    std::fflush(stdout);
    const auto idle_exit = std::chrono::milliseconds(a.num("idle-exit-ms", 5000));
    const std::string since_file = a.get("since-file", "");
    std::int64_t since_us = since_file.empty() ? 0 : -1;  // -1: not known yet (still warming up)
    std::int64_t absent_at_us = 0;  // the cut-off file was missing at this time: it is later
    auto last_msg = Clock::now();
    std::vector<double> append_ms, recv_ms;
    long long seen = 0, skipped = 0;
    while (!g_term && Clock::now() < deadline && (expect == 0 || seen < expect)) {
        if (seen > 0 && Clock::now() - last_msg > idle_exit) break;
        rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        const std::int64_t recv_us = now_unix_us();
        rd_kafka_headers_t* h = nullptr;
        const void* val = nullptr;
        std::size_t len = 0;
        std::int64_t commit_us = -1;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(h, "outbox-commit-time", &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
            commit_us = parse_commit_time(static_cast<const char*>(val), len);
        // The cut-off is written before the measured load starts. Read after the record arrived: if it
        // is still missing, the record was committed before it, i.e. during the warm-up. Re-read only
        // for records committed after the last miss.
        if (since_us < 0 && (commit_us <= 0 || commit_us >= absent_at_us)) {
            const std::int64_t t = now_unix_us();
            std::ifstream f(since_file);
            long long v = 0;
            if (f >> v && v > 0)
                since_us = v;
            else
                absent_at_us = t;
        }
        if (since_us < 0 || (since_us > 0 && commit_us > 0 && commit_us < since_us)) {
            ++skipped;
            rd_kafka_message_destroy(m);
            continue;
        }
        last_msg = Clock::now();
        ++seen;
        {
            rd_kafka_timestamp_type_t tt;
            const std::int64_t ts_ms = rd_kafka_message_timestamp(m, &tt);
            if (commit_us > 0) {
                if (ts_ms > 0) append_ms.push_back(static_cast<double>(ts_ms * 1000 - commit_us) / 1000.0);
                recv_ms.push_back(static_cast<double>(recv_us - commit_us) / 1000.0);
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    std::sort(append_ms.begin(), append_ms.end());
    std::sort(recv_ms.begin(), recv_ms.end());
    std::printf(
        "seen=%lld skipped=%lld ts_p50_ms=%.2f ts_p99_ms=%.2f ts_max_ms=%.2f recv_p50_ms=%.2f "
        "recv_p99_ms=%.2f "
        "recv_max_ms=%.2f\n",
        seen, skipped, quantile(append_ms, 0.5), quantile(append_ms, 0.99),
        append_ms.empty() ? NAN : append_ms.back(), quantile(recv_ms, 0.5), quantile(recv_ms, 0.99),
        recv_ms.empty() ? NAN : recv_ms.back());
    return (expect > 0 && seen < expect) ? 1 : 0;
}

int cmd_free_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("bind");
    socklen_t l = sizeof sa;
    getsockname(s, reinterpret_cast<sockaddr*>(&sa), &l);
    std::printf("%d\n", ntohs(sa.sin_port));
    close(s);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        die("usage: outbox-bench wait-slot|poller|live-load|consume-latency|free-port [--key value]...");
    const std::string cmd = argv[1];
    const Args a = parse(argc, argv, 2);
    if (cmd == "wait-slot") return cmd_wait_slot(a);
    if (cmd == "poller") return cmd_poller(a);
    if (cmd == "live-load") return cmd_live_load(a);
    if (cmd == "consume-latency") return cmd_consume(a);
    if (cmd == "free-port") return cmd_free_port();
    die("unknown command " + cmd);
}

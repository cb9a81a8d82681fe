// outbox-relay-dump: streams a logical replication slot with pgoutput and prints every decoded
// message as one JSON object per line. Confirms a transaction's end LSN once its lines are
// written to stdout, like pg_recvlogical does for its output file.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <string_view>

#include "app/dump_json.h"
#include "common/error.h"
#include "common/version.h"
#include "pg/replication_stream.h"
#include "pgoutput/decoder.h"

namespace {

using namespace outbox;

constexpr const char* kUsage =
    "Usage: outbox-relay-dump --dsn CONNINFO --table SCHEMA.TABLE [OPTIONS]\n"
    "\n"
    "Streams a logical replication slot (pgoutput) and prints each decoded message as a JSON line.\n"
    "\n"
    "  --dsn CONNINFO          libpq connection string or URI (password: PGPASSWORD or ~/.pgpass)\n"
    "  --slot NAME             replication slot (default outbox_relay_dump)\n"
    "  --publication NAME      publication (default outbox_relay_dump)\n"
    "  --table SCHEMA.TABLE    table the publication must cover; repeatable\n"
    "  --create                create the publication and the slot if they do not exist\n"
    "  --proto-version N       pgoutput protocol version (default 1)\n"
    "  --endpos LSN            stop once everything up to LSN was printed\n"
    "  --status-interval MS    standby status interval in milliseconds (default 10000)\n"
    "  --keepalives            also print keepalive frames\n"
    "  --no-confirm            never confirm anything (the slot does not advance)\n"
    "  --version, --help\n";

struct DumpOptions {
    pg::ReplicationOptions replication;
    std::optional<Lsn> endpos;
    bool keepalives = false;
    bool confirm = true;
};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "outbox-relay-dump: %s\n\n%s", message.c_str(), kUsage);
    std::exit(64);
}

pg::TableName parse_table(std::string_view text) {
    pg::TableName table;
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) {
        table.name = text;
    } else {
        table.schema = text.substr(0, dot);
        table.name = text.substr(dot + 1);
    }
    if (table.schema.empty() || table.name.empty()) usage_error("bad --table value: " + std::string(text));
    return table;
}

DumpOptions parse_args(int argc, char** argv) {
    DumpOptions o;
    o.replication.slot = "outbox_relay_dump";
    o.replication.publication = "outbox_relay_dump";
    o.replication.create_slot = false;
    o.replication.create_publication = false;
    o.replication.application_name = "outbox-relay-dump";
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (arg == "--version") {
            std::printf("outbox-relay-dump %s\n", kVersion);
            std::exit(0);
        } else if (arg == "--dsn") {
            o.replication.dsn = value();
        } else if (arg == "--slot") {
            o.replication.slot = value();
        } else if (arg == "--publication") {
            o.replication.publication = value();
        } else if (arg == "--table") {
            o.replication.tables.push_back(parse_table(value()));
        } else if (arg == "--create") {
            o.replication.create_slot = true;
            o.replication.create_publication = true;
        } else if (arg == "--proto-version") {
            const std::string v = value();
            if (v != "1" && v != "2") usage_error("--proto-version must be 1 or 2");
            o.replication.proto_version = std::stoi(v);
        } else if (arg == "--endpos") {
            const std::string v = value();
            o.endpos = Lsn::parse(v);
            if (!o.endpos) usage_error("--endpos needs an LSN like 0/16B3748, got " + v);
        } else if (arg == "--status-interval") {
            const std::string v = value();
            char* end = nullptr;
            const long ms = std::strtol(v.c_str(), &end, 10);
            if (end == v.c_str() || *end != '\0' || ms <= 0)
                usage_error("--status-interval needs milliseconds > 0");
            o.replication.status_interval = std::chrono::milliseconds(ms);
        } else if (arg == "--keepalives") {
            o.keepalives = true;
        } else if (arg == "--no-confirm") {
            o.confirm = false;
        } else {
            usage_error("unknown option " + std::string(arg));
        }
    }
    if (o.replication.dsn.empty()) usage_error("--dsn is required");
    if (o.replication.tables.empty()) usage_error("at least one --table is required");
    return o;
}

void write_line(const std::string& line) {
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() || std::fputc('\n', stdout) == EOF) {
        throw Error(ErrorKind::Fatal, std::string("cannot write to stdout: ") + std::strerror(errno));
    }
}

void flush_stdout() {
    if (std::fflush(stdout) != 0)
        throw Error(ErrorKind::Fatal, std::string("cannot write to stdout: ") + std::strerror(errno));
}

int run(const DumpOptions& options) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    const int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) throw Error(ErrorKind::Fatal, "signalfd failed");

    pg::ReplicationStream stream(options.replication);
    stream.start();
    std::fprintf(stderr, "outbox-relay-dump: streaming slot \"%s\" from %s\n",
                 options.replication.slot.c_str(), stream.slot().confirmed_flush.to_string().c_str());

    pgoutput::RelationCache relations;
    bool in_transaction = false;
    bool in_stream_block = false;
    std::set<std::uint32_t> open_streamed;  // streamed transactions not yet committed or aborted
    bool done = false;
    while (!done) {
        while (!done) {
            auto frame = stream.read_frame();
            if (!frame) break;
            if (const auto* keepalive = std::get_if<pgoutput::PrimaryKeepalive>(&*frame)) {
                if (options.keepalives) write_line(app::keepalive_to_json(*keepalive));
                // Idle is not stuck: with nothing open, everything before the server's WAL end
                // has been printed, so the slot may advance past WAL of other tables.
                if (!in_transaction && open_streamed.empty()) {
                    flush_stdout();
                    if (options.confirm) stream.confirm(keepalive->wal_end);
                    if (options.endpos && keepalive->wal_end >= *options.endpos) done = true;
                }
                continue;
            }
            const auto& data = std::get<pgoutput::XLogData>(*frame);
            const pgoutput::Message message = pgoutput::decode(data.payload, in_stream_block);
            if (const auto* rel = std::get_if<pgoutput::Relation>(&message)) relations.update(*rel);
            write_line(app::message_to_json(message, relations, data));
            if (std::holds_alternative<pgoutput::Begin>(message)) {
                in_transaction = true;
            } else if (const auto* start = std::get_if<pgoutput::StreamStart>(&message)) {
                in_stream_block = true;
                open_streamed.insert(start->xid.value());
            } else if (std::holds_alternative<pgoutput::StreamStop>(message)) {
                in_stream_block = false;
            } else if (const auto* abort = std::get_if<pgoutput::StreamAbort>(&message)) {
                if (abort->subxid == abort->xid) open_streamed.erase(abort->xid.value());
            } else {
                Lsn end;
                if (const auto* commit = std::get_if<pgoutput::Commit>(&message)) {
                    in_transaction = false;
                    end = commit->end_lsn;
                } else if (const auto* scommit = std::get_if<pgoutput::StreamCommit>(&message)) {
                    open_streamed.erase(scommit->xid.value());
                    end = scommit->end_lsn;
                }
                if (end.is_valid()) {
                    // Confirm only what is written out.
                    flush_stdout();
                    if (options.confirm && open_streamed.empty()) stream.confirm(end);
                    if (options.endpos && end >= *options.endpos) done = true;
                }
            }
        }
        if (done) break;
        const auto now = std::chrono::steady_clock::now();
        const auto next = stream.service(now);
        const auto wait_ms =
            std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1);
        pollfd fds[2] = {
            {stream.socket(), static_cast<short>(POLLIN | (stream.wants_write() ? POLLOUT : 0)), 0},
            {sigfd, POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(std::min<long>(wait_ms, 60'000))) < 0 && errno != EINTR) {
            throw Error(ErrorKind::Fatal, std::string("poll failed: ") + std::strerror(errno));
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            (void)!::read(sigfd, &info, sizeof info);
            std::fprintf(stderr, "outbox-relay-dump: signal %u, finishing\n", info.ssi_signo);
            done = true;
        }
    }
    flush_stdout();
    stream.finish();
    std::fprintf(stderr, "outbox-relay-dump: stopped; confirmed %s\n",
                 stream.confirmed().to_string().c_str());
    ::close(sigfd);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const DumpOptions options = parse_args(argc, argv);
    try {
        return run(options);
    } catch (const outbox::Error& e) {
        std::fprintf(stderr, "outbox-relay-dump: %s error: %s\n",
                     std::string(outbox::to_string(e.kind())).c_str(), e.what());
        return outbox::exit_code(e.kind());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "outbox-relay-dump: error: %s\n", e.what());
        return 70;
    }
}

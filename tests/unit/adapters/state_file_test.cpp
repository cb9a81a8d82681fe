// app::StateFile: the slots the relay streamed from, kept across restarts.

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "app/state_file.h"
#include "common/error.h"

using namespace outbox;
using namespace outbox::app;

namespace {

// A fresh directory under $TMPDIR, removed at scope exit.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "state-file-test-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Config);
        return e.what();
    }
    FAIL("expected an error");
    return {};
}

}  // namespace

TEST_CASE("state file: remembered slots are found again by system, database and slot") {
    TempDir dir;
    const StateFile state(dir.file("relay.state"));
    CHECK_FALSE(state.find("7000", "app", "outbox_relay"));  // no file yet
    state.check_usable();
    state.remember({"7000", "app", "outbox_relay", 1, Lsn(0x16B374D848)});
    state.remember({"7000", "my db", "outbox_relay", 2, Lsn(0x100)});
    state.remember({"8000", "app", "outbox_relay", 1, Lsn(0x200)});
    state.remember({"7000", "app", "outbox_relay", 3, Lsn(0x16B374D900)});  // replaces the first

    const auto known = StateFile(dir.file("relay.state")).find("7000", "app", "outbox_relay");
    REQUIRE(known);
    CHECK(known->timeline == 3);
    CHECK(known->confirmed == Lsn(0x16B374D900));
    const auto spaced = state.find("7000", "my db", "outbox_relay");
    REQUIRE(spaced);
    CHECK(spaced->confirmed == Lsn(0x100));
    CHECK(state.find("8000", "app", "outbox_relay"));
    CHECK_FALSE(state.find("7000", "app", "other_slot"));
    CHECK_FALSE(state.find("9000", "app", "outbox_relay"));

    const std::string text = read(dir.file("relay.state"));
    CHECK(text.find("slot 7000 app outbox_relay 3 16/B374D900\n") != std::string::npos);
    CHECK(text.find("slot 7000 my%20db outbox_relay 2 0/100\n") != std::string::npos);
    CHECK(text.rfind("# outbox-relay", 0) == 0);
    CHECK_FALSE(std::filesystem::exists(dir.file("relay.state.tmp")));
}

TEST_CASE("state file: a malformed line or an unusable path is a configuration error naming it") {
    TempDir dir;
    std::ofstream(dir.file("bad.state")) << "# comment\nslot 7000 app outbox_relay 1 0/100\nslot 7000 app\n";
    const StateFile bad(dir.file("bad.state"));
    const std::string error = error_of([&] { (void)bad.find("7000", "app", "outbox_relay"); });
    CHECK(error.find("bad.state:3: expected \"slot <system id> <database> <slot> <timeline> <LSN>\"") !=
          std::string::npos);
    std::ofstream(dir.file("lsn.state")) << "slot 7000 app outbox_relay 1 nonsense\n";
    CHECK(error_of([&] { StateFile(dir.file("lsn.state")).check_usable(); }).find("lsn.state:1:") !=
          std::string::npos);

    const StateFile nowhere(dir.file("missing-dir/relay.state"));
    CHECK(error_of([&] { nowhere.check_usable(); }).find("missing-dir/relay.state") != std::string::npos);
}

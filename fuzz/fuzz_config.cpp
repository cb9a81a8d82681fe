// libFuzzer target: YAML text -> config::load_config_string (yaml-cpp, strict validation,
// ${ENV} expansion, durations, sizes, names, listen addresses, Kafka property policy), then
// describe() and mask_dsn() on what loaded. outbox::Error(Config) is the expected answer to a
// bad file; any other exception (YAML::Exception escaping, std::out_of_range, bad_alloc...), a
// sanitizer report or a broken invariant (std::abort) is a finding.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/error.h"
#include "config/config.h"
#include "config/secrets.h"
#include "finding.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Variables the dictionary's ${...} references can find: set, empty, and one that is unset.
    ::setenv("FUZZ_TOPIC", "outbox.events", 1);
    ::setenv("FUZZ_DSN", "host=db dbname=app password=s3cret", 1);
    ::setenv("FUZZ_SIZE", "16MB", 1);
    ::setenv("FUZZ_EMPTY", "", 1);
    ::unsetenv("FUZZ_UNSET");
    ::setenv("CREDENTIALS_DIRECTORY", "/run/credentials/fuzz", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    outbox::config::Config config;
    try {
        config = outbox::config::load_config_string(yaml, "fuzz.yaml");
    } catch (const outbox::Error& e) {
        if (e.kind() != outbox::ErrorKind::Config) finding("a loader error that is not ErrorKind::Config");
        if (std::string_view(e.what()).find("fuzz.yaml") == std::string_view::npos)
            finding("a loader error that does not name the file");
        return 0;
    }
    // What loaded is valid by the loader's own rules (config.h).
    if (config.outbox.tables.empty()) finding("no outbox table");
    if (config.limits.max_inflight_events == 0 || config.limits.max_inflight_bytes == 0)
        finding("a zero in-flight limit");
    if (config.postgres.status_interval.count() <= 0) finding("status_interval <= 0");
    (void)outbox::config::describe(config);
    (void)outbox::config::mask_dsn(config.postgres.dsn);
    return 0;
}

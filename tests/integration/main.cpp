#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

namespace outbox::test {
// harness_selftest.cpp: starts the test servers in a directory, then aborts (see there).
int run_crash_probe(const char* run_dir);
}  // namespace outbox::test

int main(int argc, char** argv) {
    if (const char* dir = std::getenv("OUTBOX_CRASH_PROBE_DIR"); dir != nullptr && *dir != '\0') {
        return outbox::test::run_crash_probe(dir);
    }
    doctest::Context context(argc, argv);
    return context.run();
}

#pragma once

// A broken invariant in a fuzz target: one line on stderr, "<target>: finding: <what> <detail>"
// (the target is the binary's name), then abort(), which libFuzzer reports as a crash and saves
// the input for. scripts/fuzz prints these lines from a failing target's log.

#include <cerrno>  // program_invocation_short_name (glibc)
#include <cstdio>
#include <cstdlib>

[[noreturn]] inline void finding(const char* what, const char* detail = "") {
    std::fprintf(stderr, "%s: finding: %s%s%s\n", program_invocation_short_name, what,
                 *detail != '\0' ? " " : "", detail);
    std::abort();
}

#define FUZZ_CHECK(cond)                       \
    do {                                       \
        if (!(cond)) finding("check: " #cond); \
    } while (0)

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/lsn.h"

namespace outbox::app {

// A slot this relay streamed from, as the state file remembers it.
struct KnownSlot {
    std::string system_id;  // the cluster's system identifier (a standby shares its primary's)
    std::string database;
    std::string slot;
    std::uint32_t timeline = 0;  // when the relay last streamed from it
    Lsn confirmed;               // the last position the relay confirmed (at most a few seconds old)
};

// The slots this relay has streamed from (postgres.state_file; docs/operations.md, "The state
// file"), so that one that goes missing (a failover to a server without it, a DROP) stops the
// relay instead of being created anew at the current position, which would skip every event
// committed in between. One line per (system, database, slot):
//   slot <system_id> <database, %-escaped> <slot> <timeline> <confirmed LSN>
// Updates rewrite the file atomically (temporary file, fsync, rename) under an flock, so relays
// sharing a state directory do not lose each other's lines.
class StateFile {
public:
    explicit StateFile(std::string path);

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    // Throws Error(Config) naming the path when the file cannot be created, read or written, or
    // a line is malformed (naming the line).
    void check_usable() const;
    // The same without creating or changing anything (for --preflight): the file parses if it
    // exists, and its directory is writable. Returns how many slots it lists.
    std::size_t check_without_writing() const;
    [[nodiscard]] std::optional<KnownSlot> find(const std::string& system_id, const std::string& database,
                                                const std::string& slot) const;
    // Synced: the new file is on disk before remember() returns (fsync of the file and its
    // directory). Unsynced: only the rename's atomicity; after a power loss the file may hold the
    // previous position, never a torn one. A crash of the process loses nothing either way.
    enum class Durability { Synced, Unsynced };
    // Adds or replaces the line of `known`'s system, database and slot.
    void remember(const KnownSlot& known, Durability durability = Durability::Synced) const;

private:
    [[nodiscard]] std::vector<KnownSlot> read(int fd) const;

    std::string path_;
};

}  // namespace outbox::app

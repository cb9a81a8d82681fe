#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/lsn.h"
#include "pgoutput/messages.h"

namespace outbox::pgoutput {

// Owned copy of a Relation message's column: the frame it was decoded from goes away.
struct ColumnInfo {
    std::string name;
    std::uint32_t type_oid = 0;
    std::int32_t type_modifier = -1;
    bool is_key = false;  // part of the replica identity

    bool operator==(const ColumnInfo&) const = default;
};

// Owned copy of a Relation message: the schema rows of that relation are decoded against.
struct RelationInfo {
    RelationId id;
    std::string namespace_name;
    std::string name;
    ReplicaIdentity replica_identity = ReplicaIdentity::Default;
    std::vector<ColumnInfo> columns;  // same order as the values of a row's Tuple

    static RelationInfo from(const Relation& relation);

    // "namespace.name", for messages and routing.
    [[nodiscard]] std::string qualified_name() const;

    // Position of the column called `column_name`, if there is one.
    [[nodiscard]] std::optional<std::size_t> column_index(std::string_view column_name) const noexcept;

    // Throws DecodeError unless `tuple` has exactly one value per column: a row is only
    // meaningful against the schema it was sent with, and values are matched by position.
    void check_tuple(const Tuple& tuple) const;

    bool operator==(const RelationInfo&) const = default;
};

// The schemas announced by Relation messages, by relation id. pgoutput sends a Relation
// before the first row of a table in a session and again after every schema change
// (ALTER TABLE mid-stream), so each one replaces what was known. A new replication session
// starts with an empty cache: the server resends every Relation it needs.
class RelationCache {
public:
    // Stores (or replaces) the schema in `relation` and returns the stored copy.
    const RelationInfo& update(const Relation& relation);

    // The schema for a row's relation; throws DecodeError (ErrorKind::Protocol)
    // "row for unknown relation id N" if no Relation message announced it.
    // The reference stays valid until the next update() of the same id or clear().
    [[nodiscard]] const RelationInfo& get(RelationId id) const;

    [[nodiscard]] const RelationInfo* find(RelationId id) const noexcept;
    [[nodiscard]] bool contains(RelationId id) const noexcept { return find(id) != nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return relations_.size(); }
    void clear() noexcept { relations_.clear(); }

private:
    std::unordered_map<std::uint32_t, RelationInfo> relations_;
};

}  // namespace outbox::pgoutput

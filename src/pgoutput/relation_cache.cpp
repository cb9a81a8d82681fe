#include "pgoutput/relation_cache.h"

#include "pgoutput/reader.h"

namespace outbox::pgoutput {

RelationInfo RelationInfo::from(const Relation& relation) {
    RelationInfo info;
    info.id = relation.id;
    info.namespace_name = std::string(relation.namespace_name);
    info.name = std::string(relation.name);
    info.replica_identity = relation.replica_identity;
    info.columns.reserve(relation.columns.size());
    for (const RelationColumn& column : relation.columns) {
        info.columns.push_back(
            ColumnInfo{std::string(column.name), column.type_oid, column.type_modifier, column.is_key()});
    }
    return info;
}

std::string RelationInfo::qualified_name() const {
    return namespace_name + "." + name;
}

std::optional<std::size_t> RelationInfo::column_index(std::string_view column_name) const noexcept {
    for (std::size_t i = 0; i < columns.size(); ++i) {
        if (columns[i].name == column_name) return i;
    }
    return std::nullopt;
}

void RelationInfo::check_tuple(const Tuple& tuple) const {
    if (tuple.columns.size() == columns.size()) return;
    throw DecodeError("row for relation " + qualified_name() + " (id " + std::to_string(id.value()) +
                      ") has " + std::to_string(tuple.columns.size()) +
                      " columns, its Relation message announced " + std::to_string(columns.size()));
}

const RelationInfo& RelationCache::update(const Relation& relation) {
    // Replace, never keep the first mapping: a schema change resends the Relation.
    const auto stored = relations_.insert_or_assign(relation.id.value(), RelationInfo::from(relation));
    return stored.first->second;
}

const RelationInfo& RelationCache::get(RelationId id) const {
    if (const RelationInfo* info = find(id)) return *info;
    throw DecodeError("row for unknown relation id " + std::to_string(id.value()));
}

const RelationInfo* RelationCache::find(RelationId id) const noexcept {
    const auto it = relations_.find(id.value());
    return it == relations_.end() ? nullptr : &it->second;
}

}  // namespace outbox::pgoutput

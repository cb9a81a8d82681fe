#include "support/outbox_table.h"

namespace outbox::test {

std::string outbox_ddl(const OutboxTable& table) {
    const std::string routing = table.routing_not_null ? " text NOT NULL" : " text";
    std::string ddl = std::string("CREATE TABLE ") + (table.if_not_exists ? "IF NOT EXISTS " : "") +
                      table.name + " (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype" +
                      routing + ", aggregateid" + routing + ", type" + routing +
                      ", payload jsonb, created_at timestamptz NOT NULL DEFAULT now()";
    for (const auto& column : table.extra_columns) ddl += ", " + column;
    return ddl + ")";
}

}  // namespace outbox::test

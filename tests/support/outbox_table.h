#pragma once

#include <string>
#include <vector>

// The outbox table every test creates: Debezium's outbox shape (id, aggregatetype, aggregateid,
// type, payload) plus created_at. One definition, so that a test that needs something else says
// what it adds instead of writing its own CREATE TABLE.

namespace outbox::test {

struct OutboxTable {
    std::string name = "outbox";  // raw SQL name, may be schema-qualified ("billing.outbox")
    bool if_not_exists = false;
    // NOT NULL on aggregatetype, aggregateid and type, as a service's own table would have it (the
    // demo). Tests leave them nullable so that they can insert rows the relay must reject.
    bool routing_not_null = false;
    // Column definitions appended after the standard ones, e.g. {"seq int NOT NULL", "note text"}.
    std::vector<std::string> extra_columns;
};

// CREATE TABLE for `table`. The id defaults to gen_random_uuid(), so inserts may leave it out.
std::string outbox_ddl(const OutboxTable& table = {});

}  // namespace outbox::test

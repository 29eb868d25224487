#pragma once

#include <string>
#include <vector>

namespace capaudit {

// The SQL that takes the database from version i to i+1, entry i; as many
// entries as kSchemaVersion (docs/schema.md lists them).
const std::vector<std::string>& schema_migrations();

}  // namespace capaudit

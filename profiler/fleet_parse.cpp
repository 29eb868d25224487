// Reading an export line back: every key the schema has is checked for its
// type and range before anything reaches the database, so a damaged or
// hand-edited file is refused by line, with what is wrong.
#include "fleet.h"

#include <nlohmann/json.hpp>

#include <limits>

namespace capaudit {
namespace {

using nlohmann::json;

bool fail(std::string* err, std::string message) {
  *err = std::move(message);
  return false;
}

const json* field(const json& j, const char* key, std::string* err) {
  auto it = j.find(key);
  if (it == j.end()) {
    fail(err, std::string("missing \"") + key + "\"");
    return nullptr;
  }
  return &*it;
}

bool get_string(const json& j, const char* key, std::string* out, std::string* err) {
  const json* v = field(j, key, err);
  if (!v) return false;
  if (!v->is_string()) return fail(err, std::string("\"") + key + "\" is not a string");
  *out = v->get<std::string>();
  return true;
}

bool get_bool(const json& j, const char* key, bool* out, std::string* err) {
  const json* v = field(j, key, err);
  if (!v) return false;
  if (!v->is_boolean()) return fail(err, std::string("\"") + key + "\" is not true or false");
  *out = v->get<bool>();
  return true;
}

// Counts go into PostgreSQL's bigint: beyond it is no count a host made.
bool get_count(const json& j, const char* key, uint64_t* out, std::string* err) {
  const json* v = field(j, key, err);
  if (!v) return false;
  if (!v->is_number_unsigned() ||
      v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail(err, std::string("\"") + key + "\" is not a count (an integer from 0 to 2^63-1)");
  *out = v->get<uint64_t>();
  return true;
}

bool get_time(const json& j, const char* key, int64_t* out, std::string* err) {
  uint64_t t = 0;
  if (!field(j, key, err)) return false;
  if (!get_count(j, key, &t, err)) return fail(err, std::string("\"") + key + "\" is not a time (unix seconds)");
  *out = static_cast<int64_t>(t);
  return true;
}

bool valid_capability(std::string_view name) {
  if (name.size() < 5 || name.size() > 64 || name.substr(0, 4) != "cap_") return false;
  for (char c : name.substr(4))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace

bool valid_host_id(std::string_view id) {
  if (id.empty() || id.size() > 255) return false;
  for (char c : id)
    if (c <= ' ' || c > '~') return false;
  return true;
}

bool valid_sha256(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool parse_fleet_line(std::string_view text, FleetLine* line, std::string* err) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(err, "not JSON");
  if (!j.is_object()) return fail(err, "not a JSON object");
  FleetLine l;
  std::string schema;
  if (!get_string(j, "schema", &schema, err)) return false;
  if (schema != kExportSchema)
    return fail(err, "schema \"" + schema + "\" is not " + kExportSchema + " (a newer capaudit wrote it?)");
  if (!get_string(j, "host_id", &l.host_id, err)) return false;
  if (!valid_host_id(l.host_id)) return fail(err, "\"host_id\" must be 1 to 255 printable characters, no spaces");
  if (!get_time(j, "exported_at", &l.exported_at, err)) return false;

  const json* sha = field(j, "sha256", err);
  if (!sha) return false;
  if (sha->is_string()) {
    l.sha256 = sha->get<std::string>();
    if (!valid_sha256(*l.sha256)) return fail(err, "\"sha256\" is not 64 lower-case hex digits");
  } else if (sha->is_null()) {
    if (!get_string(j, "no_sha256", &l.no_sha256, err)) return false;
  } else {
    return fail(err, "\"sha256\" is neither a string nor null");
  }
  if (!get_string(j, "path", &l.path, err)) return false;
  if (l.path.empty() || l.path.front() != '/') return fail(err, "\"path\" is not an absolute path");

  if (!get_string(j, "capability", &l.capability, err)) return false;
  if (!valid_capability(l.capability)) return fail(err, "\"capability\" is not a capability name (cap_...)");
  std::string verdict;
  if (!get_string(j, "verdict", &verdict, err)) return false;
  if (verdict != "granted" && verdict != "denied") return fail(err, "\"verdict\" is not \"granted\" or \"denied\"");
  l.granted = verdict == "granted";
  const json* audit = field(j, "audit", err);
  if (!audit) return false;
  if (audit->is_boolean()) l.audit = audit->get<bool>() ? Audit::Yes : Audit::No;
  else if (audit->is_null()) l.audit = Audit::Unknown;
  else return fail(err, "\"audit\" is not true, false or null");

  if (!get_count(j, "count", &l.count, err)) return false;
  if (!get_time(j, "first_seen", &l.first_seen, err) || !get_time(j, "last_seen", &l.last_seen, err)) return false;
  if (!get_bool(j, "required", &l.required, err)) return false;
  const json* replaced = field(j, "replaced_by", err);
  if (!replaced) return false;
  if (replaced->is_string()) {
    l.replaced_by = replaced->get<std::string>();
    if (!valid_capability(l.replaced_by)) return fail(err, "\"replaced_by\" is not a capability name (cap_...)");
  } else if (!replaced->is_null()) {
    return fail(err, "\"replaced_by\" is neither a capability name nor null");
  }
  if (!get_string(j, "reason", &l.reason, err)) return false;
  // PostgreSQL's text holds no NUL: refused here, by line, not by the server.
  for (const std::string* s : {&l.path, &l.reason, &l.no_sha256})
    if (s->find('\0') != std::string::npos) return fail(err, "a string holds a NUL character");
  *line = std::move(l);
  return true;
}

}  // namespace capaudit

// The contract's JSON: report --json, recommend --format json, profile
// --json. And the verification object, written here and read back here
// when recommend meets a stored verified set.
#include "render.h"

#include "capnames.h"

#include <optional>
#include <utility>

namespace capaudit {
namespace {

using nlohmann::json;

json opt_string(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

json opt_cap(const std::optional<int>& cap) { return cap ? json(cap_name(*cap)) : json(nullptr); }

json check_to_json(const CheckDecision& c) {
  json j;
  j["capability"] = cap_name(c.cap);
  j["verdict"] = c.granted ? "granted" : "denied";
  j["audit"] = c.audit == Audit::Unknown ? json(nullptr) : json(c.audit == Audit::Yes);
  j["final_verdict"] = c.final_verdict == FinalVerdict::Unknown ? json(nullptr)
                       : c.final_verdict == FinalVerdict::Granted ? json("granted")
                                                                  : json("denied");
  j["count"] = c.count;
  j["required"] = c.required;
  j["reason"] = c.reason;
  j["origins"] = c.origins;
  j["uids"] = c.uids;
  j["euids"] = c.euids;
  j["first_seen"] = c.first_seen;
  j["last_seen"] = c.last_seen;
  j["only_other_user_ns"] = c.only_other_user_ns;
  j["replaced_by"] = opt_cap(c.replaced_by);
  j["verified"] = verification_name(c.verified);
  return j;
}

// The stored object was written by to_json below, or by an older capaudit,
// or damaged: names must be capabilities this build knows.
std::optional<int> cap_of(const json& name, std::string* err) {
  std::optional<int> c = name.is_string() ? cap_from_name(name.get<std::string>()) : std::nullopt;
  if (!c) *err = "unknown capability " + name.dump();
  return c;
}

Verification verification_from_name(const std::string& name) {
  return name == "needed"    ? Verification::ConfirmedNeeded
         : name == "dropped" ? Verification::DroppedByRun
                             : Verification::Unverified;
}

bool verdict_from_json(const json& e, CapabilityVerdict* cv, std::string* err, std::string_view what) {
  if (!e.is_object()) {
    *err = std::string(what) + " is malformed";
    return false;
  }
  auto c = cap_of(e.value("capability", json()), err);
  if (!c) return false;
  cv->cap = *c;
  cv->verified = verification_from_name(e.value("verified", "unverified"));
  cv->runs = e.value("runs", 0);
  cv->reason = e.value("reason", "");
  if (e.contains("replaced_by") && !e["replaced_by"].is_null()) {
    auto n = cap_of(e["replaced_by"], err);
    if (!n) return false;
    cv->replaced_by = *n;
  }
  return true;
}

[[noreturn]] void throw_malformed(const json& j, const std::string& err) {
  throw json::other_error::create(501, err, &j);
}

}  // namespace

std::string verification_name(Verification v) {
  switch (v) {
    case Verification::ConfirmedNeeded: return "needed";
    case Verification::DroppedByRun: return "dropped";
    case Verification::Unverified: break;
  }
  return "unverified";
}

void to_json(json& j, const CapabilityVerdict& cv) {
  j = {{"capability", cap_name(cv.cap)},
       {"verified", verification_name(cv.verified)},
       {"runs", cv.runs},
       {"reason", cv.reason},
       {"replaced_by", opt_cap(cv.replaced_by)}};
}

void from_json(const json& j, CapabilityVerdict& cv) {
  std::string err;
  CapabilityVerdict out;
  if (!verdict_from_json(j, &out, &err, "capability verdict")) throw_malformed(j, err);
  cv = std::move(out);
}

void to_json(json& j, const VerificationInfo& v) {
  j = {{"runs", v.runs},
       {"baseline_ok", v.baseline_ok},
       {"compare_output", v.compare_output},
       {"created", v.created},
       {"observed", cap_names(v.observed)},
       {"capabilities", v.capabilities},
       {"note", v.note.empty() ? json(nullptr) : json(v.note)}};
}

bool verification_from_json(const json& j, VerificationInfo* out, std::string* err, std::string_view what) {
  if (!j.is_object() || !j.contains("observed") || !j.contains("capabilities") || !j["observed"].is_array() ||
      !j["capabilities"].is_array()) {
    *err = std::string(what) + " is malformed";
    return false;
  }
  VerificationInfo v;
  v.runs = j.value("runs", 0);
  v.baseline_ok = j.value("baseline_ok", false);
  v.compare_output = j.value("compare_output", false);
  v.created = j.value("created", int64_t{0});
  if (j.contains("note") && j["note"].is_string()) v.note = j["note"].get<std::string>();
  for (const auto& n : j["observed"]) {
    auto c = cap_of(n, err);
    if (!c) return false;
    v.observed.push_back(*c);
  }
  for (const auto& e : j["capabilities"]) {
    CapabilityVerdict cv;
    if (!verdict_from_json(e, &cv, err, what)) return false;
    v.capabilities.push_back(std::move(cv));
  }
  *out = std::move(v);
  return true;
}

void from_json(const json& j, VerificationInfo& v) {
  std::string err;
  if (!verification_from_json(j, &v, &err)) throw_malformed(j, err);
}

json verification_to_json(const VerificationInfo& v) { return json(v); }

json binary_to_json(const BinaryDecision& b) {
  json checks = json::array();
  for (const CheckDecision& c : b.checks) checks.push_back(check_to_json(c));
  std::string setcap = setcap_text(b.capabilities);
  json j;
  j["path"] = b.path;
  j["display_name"] = b.display_name;
  if (b.row && b.path.empty() && !b.row->key.comm.empty()) j["comm"] = b.row->key.comm;
  j["capabilities"] = cap_names(b.capabilities);
  j["setcap"] = setcap.empty() ? json(nullptr) : json(setcap);
  j["checks"] = std::move(checks);
  j["warnings"] = b.warnings;
  j["held"] = cap_set_names(b.held_effective);
  j["file_caps"] = opt_string(b.file_caps);
  j["setuid"] = b.setuid_root;
  j["seen_non_root_euid"] = b.seen_non_root_euid;
  j["profiled"] = b.profiled;
  auto [first, last] = seen_span(b);
  j["first_seen"] = first;
  j["last_seen"] = last;
  j["sha256"] = b.row ? opt_string(b.row->sha256) : json(nullptr);
  j["source"] = b.verified_set() ? "verified" : "observed";
  j["verification"] = b.verification ? json(*b.verification) : json(nullptr);
  return j;
}

json to_json(const Analysis& a) {
  json binaries = json::array();
  for (const BinaryDecision& b : a.binaries) binaries.push_back(binary_to_json(b));
  return json{{"binaries", std::move(binaries)}};
}

void write_json(std::ostream& out, const Analysis& a) {
  // Byte for byte what to_json(a).dump(2) writes, one binary at a time: a
  // whole database as one JSON tree cost more to build and free than the
  // analysis itself.
  constexpr auto kReplace = json::error_handler_t::replace;
  if (a.binaries.empty()) {
    out << to_json(a).dump(2, ' ', false, kReplace) << "\n";
    return;
  }
  out << "{\n  \"binaries\": [\n";
  std::string nested;
  for (size_t i = 0; i < a.binaries.size(); i++) {
    const std::string text = binary_to_json(a.binaries[i]).dump(2, ' ', false, kReplace);
    // Two levels deeper; JSON strings hold no raw newline, so every line
    // break is the serializer's.
    nested.assign("    ");
    size_t from = 0;
    for (size_t nl = text.find('\n'); nl != std::string::npos; from = nl + 1, nl = text.find('\n', from)) {
      nested.append(text, from, nl + 1 - from);
      nested.append("    ");
    }
    nested.append(text, from, std::string::npos);
    nested.append(i + 1 < a.binaries.size() ? ",\n" : "\n");
    out << nested;
  }
  out << "  ]\n}\n";
}

}  // namespace capaudit

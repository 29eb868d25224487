#include "rules.h"

#include "capaudit.h"
#include "capnames.h"
#include "kallsyms.h"
#include "rules_json.h"  // generated at configure time from profiler/rules.json

#include <fnmatch.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace capaudit {
namespace {

using nlohmann::json;

std::optional<RuleKind> kind_from_name(std::string_view s) {
  for (RuleKind k : {RuleKind::Probe, RuleKind::NoNewPrivs, RuleKind::Requirement, RuleKind::Alternative,
                     RuleKind::CheckedFirst}) {
    if (rule_kind_name(k) == s) return k;
  }
  return std::nullopt;
}

bool any_matches(const std::vector<std::string>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return fnmatch(p.c_str(), name.c_str(), 0) == 0; });
}

bool any_matches(const std::vector<std::string>& patterns, std::string_view name) {
  return any_matches(patterns, std::string(name));
}

// The function names of a stack's frames, worked out on first use and then
// shared by every rule that looks: a report runs the whole table over each
// of tens of thousands of stacks.
class FrameFunctions {
 public:
  explicit FrameFunctions(const std::vector<std::string>& frames) : frames_(frames) {}
  const std::vector<std::string>& get() {
    if (!done_) {
      fns_.reserve(frames_.size());
      for (const std::string& f : frames_) fns_.push_back(frame_function(f));
      done_ = true;
    }
    return fns_;
  }

 private:
  const std::vector<std::string>& frames_;
  std::vector<std::string> fns_;
  bool done_ = false;
};

constexpr std::pair<ArgClass, std::string_view> kArgClasses[] = {
    {ArgClass::SetidHeld, "setid_held"},   {ArgClass::SetidNotHeld, "setid_not_held"},
    {ArgClass::Write, "write"},            {ArgClass::Read, "read"},
    {ArgClass::ModeSetgid, "mode_setgid"}, {ArgClass::ModeNoSetgid, "mode_no_setgid"},
    {ArgClass::Lookup, "lookup"},          {ArgClass::Unknown, "unknown"},
};

bool matches_with(const Rule& r, int cap, std::string_view origin, FrameFunctions& fns, bool insetid,
                  const CallEvidence& call) {
  if (!r.caps.empty() && std::find(r.caps.begin(), r.caps.end(), cap) == r.caps.end()) return false;
  if (!r.arg.empty() && std::none_of(r.arg.begin(), r.arg.end(), [&](ArgClass c) { return arg_in_class(c, call); }))
    return false;
  if (insetid && r.insetid) return true;
  if (!r.origins.empty() && !any_matches(r.origins, origin)) return false;
  if (r.via.empty()) return true;
  // The origin is a frame too (tests and callers may pass only the origin).
  if (!origin.empty() && any_matches(r.via, origin)) return true;
  const auto& names = fns.get();
  return std::any_of(names.begin(), names.end(), [&](const std::string& fn) { return any_matches(r.via, fn); });
}

// Errors name the table, the rule (index and, once known, name) and the key,
// so a typo in a hand-edited table is found without reading the parser.
class RuleParser {
 public:
  RuleParser(const std::string& table, size_t index, const json& j) : table_(table), index_(index), j_(j) {}

  std::optional<Rule> parse(std::string* err) {
    if (!j_.is_object()) return fail(err, "", "a rule must be an object");
    static const std::set<std::string, std::less<>> kKeys = {
        "name", "kind", "caps", "origins", "via", "narrow", "narrow_first", "keep_when_granted", "insetid", "arg",
        "reason"};
    Rule r;
    if (!string_key("name", true, &r.name, err)) return std::nullopt;
    name_ = r.name;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!kKeys.contains(it.key())) return fail(err, it.key(), "unknown key");
    }
    std::string kind;
    if (!string_key("kind", true, &kind, err)) return std::nullopt;
    auto k = kind_from_name(kind);
    if (!k) return fail(err, "kind", "unknown kind '" + kind + "' (probe, no_new_privs, requirement, alternative, checked_first)");
    r.kind = *k;
    if (!string_key("reason", true, &r.reason, err)) return std::nullopt;
    if (r.reason.empty()) return fail(err, "reason", "must not be empty");

    std::vector<std::string> cap_names;
    if (!string_list("caps", &cap_names, err)) return std::nullopt;
    for (const std::string& n : cap_names) {
      auto cap = cap_from_name(n);
      if (!cap) return fail(err, "caps", "unknown capability '" + n + "'");
      r.caps.push_back(*cap);
    }
    if (!string_list("origins", &r.origins, err)) return std::nullopt;
    if (!string_list("via", &r.via, err)) return std::nullopt;
    std::vector<std::string> arg_names;
    if (!string_list("arg", &arg_names, err)) return std::nullopt;
    if (j_.contains("arg") && arg_names.empty()) return fail(err, "arg", "must name at least one class");
    for (const std::string& n : arg_names) {
      auto c = arg_class_from_name(n);
      if (!c) {
        std::string known;
        for (const auto& [_, name] : kArgClasses) known += (known.empty() ? "" : ", ") + std::string(name);
        return fail(err, "arg", "unknown class '" + n + "' (" + known + ")");
      }
      r.arg.push_back(*c);
    }
    if (!bool_key("narrow_first", &r.narrow_first, err)) return std::nullopt;
    if (!bool_key("keep_when_granted", &r.keep_when_granted, err)) return std::nullopt;
    if (!bool_key("insetid", &r.insetid, err)) return std::nullopt;

    std::string narrow;
    if (!string_key("narrow", false, &narrow, err)) return std::nullopt;
    if (r.kind == RuleKind::Alternative) {
      if (narrow.empty()) return fail(err, "narrow", "an alternative needs the narrower capability");
      auto cap = cap_from_name(narrow);
      if (!cap) return fail(err, "narrow", "unknown capability '" + narrow + "'");
      if (r.caps.empty()) return fail(err, "caps", "an alternative needs the wide capability it replaces");
      if (std::find(r.caps.begin(), r.caps.end(), *cap) != r.caps.end())
        return fail(err, "narrow", "the narrow capability is also one of the rule's caps");
      r.narrow = *cap;
    } else {
      if (!narrow.empty()) return fail(err, "narrow", "only an alternative has a narrower capability");
      if (j_.contains("narrow_first")) return fail(err, "narrow_first", "only an alternative has narrow_first");
    }
    if (r.kind != RuleKind::CheckedFirst && j_.contains("keep_when_granted"))
      return fail(err, "keep_when_granted", "only a checked_first rule has keep_when_granted");
    return r;
  }

 private:
  std::nullopt_t fail(std::string* err, const std::string& key, const std::string& what) const {
    error(err, key, what);
    return std::nullopt;
  }

  bool error(std::string* err, const std::string& key, const std::string& what) const {
    if (err) {
      std::string at = table_ + ": rule " + std::to_string(index_);
      if (!name_.empty()) at += " ('" + name_ + "')";
      if (!key.empty()) at += ", key '" + key + "'";
      *err = at + ": " + what;
    }
    return false;
  }

  bool string_key(const char* key, bool required, std::string* out, std::string* err) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return required ? error(err, key, "missing") : true;
    }
    if (!it->is_string()) return error(err, key, "must be a string");
    *out = it->get<std::string>();
    if (required && out->empty()) return error(err, key, "must not be empty");
    return true;
  }

  bool bool_key(const char* key, bool* out, std::string* err) const {
    auto it = j_.find(key);
    if (it == j_.end()) return true;
    if (!it->is_boolean()) return error(err, key, "must be true or false");
    *out = it->get<bool>();
    return true;
  }

  bool string_list(const char* key, std::vector<std::string>* out, std::string* err) const {
    auto it = j_.find(key);
    if (it == j_.end()) return true;
    if (!it->is_array()) return error(err, key, "must be a list of strings");
    for (const json& v : *it) {
      if (!v.is_string() || v.get<std::string>().empty())
        return error(err, key, "must be a list of non-empty strings");
      out->push_back(v.get<std::string>());
    }
    return true;
  }

  const std::string& table_;
  size_t index_;
  const json& j_;
  std::string name_;
};

}  // namespace

std::optional<ArgClass> arg_class_from_name(std::string_view s) {
  for (const auto& [c, name] : kArgClasses)
    if (name == s) return c;
  return std::nullopt;
}

std::string_view arg_class_name(ArgClass c) {
  for (const auto& [k, name] : kArgClasses)
    if (k == c) return name;
  return "unknown";
}

bool arg_in_class(ArgClass c, const CallEvidence& e) {
  const uint32_t family = CA_ARG_FAMILY(e.arg);
  const bool io = family == CA_ARGF_OPEN || family == CA_ARGF_RW;
  switch (c) {
    case ArgClass::SetidHeld: return family == CA_ARGF_SETID && (e.arg & CA_ARG_SETID_HELD);
    case ArgClass::SetidNotHeld: return family == CA_ARGF_SETID && !(e.arg & CA_ARG_SETID_HELD);
    case ArgClass::Write: return io && (e.arg & CA_ARG_WRITE);
    case ArgClass::Read: return io && !(e.arg & CA_ARG_WRITE);
    case ArgClass::ModeSetgid: return family == CA_ARGF_CHMOD && (e.arg & CA_ARG_MODE_SETGID);
    case ArgClass::ModeNoSetgid: return family == CA_ARGF_CHMOD && !(e.arg & CA_ARG_MODE_SETGID);
    case ArgClass::Lookup: return family == CA_ARGF_LOOKUP;
    case ArgClass::Unknown: return family == CA_ARGF_NONE && !e.syscall_known;
  }
  return false;
}

std::string_view rule_kind_name(RuleKind k) {
  switch (k) {
    case RuleKind::Probe: return "probe";
    case RuleKind::NoNewPrivs: return "no_new_privs";
    case RuleKind::Requirement: return "requirement";
    case RuleKind::Alternative: return "alternative";
    case RuleKind::CheckedFirst: return "checked_first";
  }
  return "unknown";
}

std::optional<Rules> Rules::parse(std::string_view json_text, const std::string& name, std::string* err) {
  json doc;
  try {
    doc = json::parse(json_text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    if (err) *err = name + ": " + e.what();
    return std::nullopt;
  }
  if (!doc.is_object() || !doc.contains("rules") || !doc["rules"].is_array()) {
    if (err) *err = name + ": expected an object with a \"rules\" list";
    return std::nullopt;
  }
  Rules rules;
  std::set<std::string> names;
  const json& list = doc["rules"];
  for (size_t i = 0; i < list.size(); ++i) {
    auto rule = RuleParser(name, i, list[i]).parse(err);
    if (!rule) return std::nullopt;
    if (!names.insert(rule->name).second) {
      if (err) *err = name + ": rule " + std::to_string(i) + " ('" + rule->name + "'), key 'name': duplicate name";
      return std::nullopt;
    }
    rules.rules_.push_back(std::move(*rule));
  }
  return rules;
}

const Rules& Rules::builtin() {
  static const Rules rules = [] {
    std::string err;
    auto parsed = parse(kBuiltinRulesJson, "built-in rules.json", &err);
    if (!parsed) {
      // The unit tests parse the same text, so this only fires on a broken build.
      spdlog::critical("{}", err);
      std::abort();
    }
    return std::move(*parsed);
  }();
  return rules;
}

bool Rules::matches(const Rule& r, int cap, std::string_view origin, const std::vector<std::string>& frames,
                    bool insetid, const CallEvidence& call) {
  FrameFunctions fns(frames);
  return matches_with(r, cap, origin, fns, insetid, call);
}

const Rule* Rules::match(int cap, std::string_view origin, const std::vector<std::string>& frames,
                         bool insetid, const CallEvidence& call) const {
  FrameFunctions fns(frames);
  for (const Rule& r : rules_) {
    if (matches_with(r, cap, origin, fns, insetid, call)) return &r;
  }
  return nullptr;
}

std::vector<const Rule*> Rules::match_all(int cap, std::string_view origin, const std::vector<std::string>& frames,
                                          bool insetid, const CallEvidence& call) const {
  FrameFunctions fns(frames);
  std::vector<const Rule*> out;
  for (const Rule& r : rules_) {
    if (matches_with(r, cap, origin, fns, insetid, call)) out.push_back(&r);
  }
  return out;
}

}  // namespace capaudit

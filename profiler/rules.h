// Classification rules: kernel origin of a check -> what it means for the
// minimal set. The table itself is data (profiler/rules.json, embedded at
// build time; docs/rules.md explains each kind); the engine only reads it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capaudit {

enum class RuleKind {
  Probe,         // the kernel only asks; never a requirement
  NoNewPrivs,    // a real failure, but the fix is no_new_privs, not a capability
  Requirement,   // needed when granted, even though the kernel does not audit it
  Alternative,   // a narrower capability would do (see narrow / narrow_first)
  CheckedFirst,  // asked before the unprivileged path: a grant alone proves nothing
};

// What the syscall asked for at the check (ca_check_key.arg, classified in
// the kernel), as the classes a rule's `arg` names (docs/rules.md).
enum class ArgClass {
  SetidHeld,     // set*id: the unprivileged path would give the same credentials
  SetidNotHeld,  // set*id: some id asked for needs the capability (setgroups: always)
  Write,         // open for writing, or a write(2)-family call
  Read,          // open read-only, or a read(2)-family call
  ModeSetgid,    // chmod family: the new mode has S_ISGID
  ModeNoSetgid,  // chmod family: it has not
  Lookup,        // stat/readlink/chdir family: a path walk that only searches directories
  Unknown,       // no syscall known at the check (outside one, or a kernel without bpf_task_pt_regs)
};

// The call a check was made in: its classified arguments and whether the
// syscall was known at all.
struct CallEvidence {
  uint32_t arg = 0;
  bool syscall_known = true;
  auto operator<=>(const CallEvidence&) const = default;
};

std::optional<ArgClass> arg_class_from_name(std::string_view s);
std::string_view arg_class_name(ArgClass c);
bool arg_in_class(ArgClass c, const CallEvidence& e);

struct Rule {
  std::string name;                  // short id, shown in reasons
  RuleKind kind = RuleKind::Probe;
  std::vector<int> caps;             // capabilities it applies to; empty: any
  std::vector<std::string> origins;  // fnmatch patterns on the origin function; empty: any
  std::vector<std::string> via;      // fnmatch patterns, one must match some frame; empty: none needed
  std::optional<int> narrow;         // Alternative: the narrower capability
  bool narrow_first = false;         // Alternative: the kernel asks narrow before wide
  bool keep_when_granted = true;     // CheckedFirst: keep (unverified) or drop
  bool insetid = false;              // also matches any check made with CAP_OPT_INSETID, whatever its origin
  std::vector<ArgClass> arg;         // the call is in one of these classes; empty: any call
  std::string reason;                // why, for people
};

class Rules {
 public:
  // The table shipped with capaudit (profiler/rules.json).
  static const Rules& builtin();
  // Parses a rules table; nullopt with *err naming the rule and key at fault.
  static std::optional<Rules> parse(std::string_view json_text, const std::string& name, std::string* err);

  // First rule that matches, in table order. `frames` are symbolised
  // ("func+0x1f"); `via` patterns are matched against their function names.
  const Rule* match(int cap, std::string_view origin, const std::vector<std::string>& frames,
                    bool insetid = false, const CallEvidence& call = {}) const;
  // Every rule that matches, in table order: an alternative applies only when
  // its narrow capability was asked too, so the engine may skip to the next.
  std::vector<const Rule*> match_all(int cap, std::string_view origin, const std::vector<std::string>& frames,
                                     bool insetid = false, const CallEvidence& call = {}) const;
  static bool matches(const Rule& r, int cap, std::string_view origin, const std::vector<std::string>& frames,
                      bool insetid = false, const CallEvidence& call = {});
  const std::vector<Rule>& all() const { return rules_; }

 private:
  std::vector<Rule> rules_;
};

std::string_view rule_kind_name(RuleKind k);

}  // namespace capaudit

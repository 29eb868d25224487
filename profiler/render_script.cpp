// recommend --format script: the nightly setcap script. Root runs it, and
// its input (paths of programs users ran) is attacker-influenced, so it
// only ever narrows privilege, re-verifies each file when it runs, and
// never lets a path become shell syntax.
#include "render.h"

#include "capnames.h"
#include "display.h"
#include "identity.h"
#include "store.h"
#include "time_util.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

namespace capaudit {

namespace {

// Functions every active line relies on; they re-check, at the time the
// script runs, what the generator checked when writing it.
constexpr const char* kPrologue = R"sh(set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077
LC_ALL=C
export LC_ALL

capaudit_skip() {
  printf 'capaudit: skipped %s: %s\n' "$1" "$2" >&2
}

# Only root may be able to change the file or any directory above it;
# otherwise someone else could swap it between the check and the change.
capaudit_root_only() {
  set -- "$1" "$(stat -c '%u %a' -- "$1")"
  case "$2" in
    "0 "*) ;;
    *) return 1 ;;
  esac
  [ $(( 0${2#0 } & 022 )) -eq 0 ]
}

# capaudit_trusted FILE SHA256: FILE is still the observed regular file,
# owned by root, and it and every directory above it writable only by root.
capaudit_trusted() {
  if [ ! -f "$1" ] || [ -L "$1" ]; then
    capaudit_skip "$1" "not a regular file"; return 1
  fi
  if ! capaudit_root_only "$1"; then
    capaudit_skip "$1" "not owned by root or writable by others"; return 1
  fi
  capaudit_dir=${1%/*}
  while [ -n "$capaudit_dir" ]; do
    if [ -L "$capaudit_dir" ] || ! capaudit_root_only "$capaudit_dir"; then
      capaudit_skip "$1" "directory $capaudit_dir is writable by someone other than root"; return 1
    fi
    capaudit_dir=${capaudit_dir%/*}
  done
  if ! capaudit_root_only /; then
    capaudit_skip "$1" "/ is writable by someone other than root"; return 1
  fi
  capaudit_sum=$(sha256sum < "$1") || { capaudit_skip "$1" "cannot read"; return 1; }
  if [ "${capaudit_sum%% *}" != "$2" ]; then
    capaudit_skip "$1" "changed since it was observed (SHA-256 differs)"; return 1
  fi
  return 0
}
)sh";

// Units whose processes the checks came from: cgroup v2 ids are the
// inode numbers of the cgroup directories.
std::map<uint64_t, std::string> service_cgroups() {
  std::map<uint64_t, std::string> out;
  // Pure cgroup v2, or the unified hierarchy of a hybrid layout.
  for (const char* root : {"/sys/fs/cgroup/system.slice", "/sys/fs/cgroup/unified/system.slice"}) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(root, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!name.ends_with(".service")) continue;
      struct stat st {};
      if (stat(it->path().c_str(), &st) == 0) out[st.st_ino] = name;
    }
  }
  return out;
}

std::string caps_list(std::vector<int> caps) {
  sort_caps_by_name(caps);
  return cap_list_text(caps, " ", "");
}

struct Entry {
  std::string path;
  std::vector<std::string> comments;  // each one line, already safe
  std::vector<std::string> commands;  // active lines, paths quoted
  std::string sha256;
};

// Decides one binary: active lines, or comments saying why not.
Entry decide(const BinaryDecision& b, const std::map<uint64_t, std::string>& services) {
  Entry e;
  e.path = b.path;
  std::string shown = quote_for_display(b.path.empty() ? b.display_name : b.path);
  std::string want = b.capabilities.empty() ? "no capabilities" : caps_list(b.capabilities);
  auto comment = [&](const std::string& why) { e.comments.push_back("# " + shown + ": " + why); };

  if (b.path.empty() || b.path[0] != '/') {
    comment("no usable path (kernel thread or unresolved executable); nothing to do");
    return e;
  }
  if (has_control_bytes(b.path)) {
    comment("path contains control characters; not touched (recommended: " + want + ")");
    return e;
  }
  std::string err;
  auto now = read_file_identity(b.path, &err);
  if (!now) {
    comment("cannot be read now (" + quote_for_display(err) + "); not touched");
    return e;
  }
  bool setuid_root = (now->mode & S_ISUID) && now->owner_uid == 0;
  bool has_caps = !now->file_caps.empty();
  if (!setuid_root && !has_caps) {
    // Giving file capabilities to a program root runs would widen what
    // every other user can do with it.
    std::string advice = "neither setuid-root nor file capabilities: never given capabilities";
    std::set<std::string> units;
    for (const auto& c : b.checks)
      for (uint64_t cg : c.cgroup_ids)
        if (auto it = services.find(cg); it != services.end()) units.insert(it->second);
    comment(advice);
    for (const auto& u : units) {
      std::string caps = b.capabilities.empty() ? "" : caps_list(b.capabilities);
      e.comments.push_back("#   runs as " + quote_for_display(u) + ": in its unit, AmbientCapabilities=" + caps +
                           " and CapabilityBoundingSet=" + caps);
    }
    return e;
  }
  if (!b.row || !b.row->sha256) {
    comment("no SHA-256 was recorded when it was observed; not touched");
    return e;
  }
  if (*b.row->sha256 != now->sha256) {
    comment("changed since it was observed (SHA-256 differs); profile it again");
    return e;
  }
  if (now->owner_uid != 0 || (now->mode & 022)) {
    comment("not owned by root or writable by others; not touched");
    return e;
  }
  if (!b.seen_non_root_euid) {
    comment("seen only with euid 0, so ownership checks root skips were not seen; profile it with: "
            "capaudit profile --user nobody --db DB -- " + shell_quote(b.path));
    return e;
  }
  if (b.self_inspections > 0 && !b.verified_set()) {
    // Such a program may refuse to start without a capability the kernel never checked.
    comment("it asked the kernel which capabilities it holds: not narrowed without a set verified by "
            "capaudit profile --minimize --db DB -- " + shell_quote(b.path));
    return e;
  }
  if (has_caps && !setuid_root) {
    for (int c : b.capabilities)
      if (std::find(now->file_caps.begin(), now->file_caps.end(), c) == now->file_caps.end()) {
        comment("would need " + cap_name(c) + ", which it does not hold today: narrow-only, not touched");
        return e;
      }
    if (b.capabilities == now->file_caps && now->file_caps_effective) {
      comment("already holds exactly " + want);
      return e;
    }
  }
  e.sha256 = now->sha256;
  e.comments.push_back("# " + shown + ": " + (setuid_root ? "setuid-root" : "file capabilities " + now->file_caps_text) +
                       " -> " + want);
  if (setuid_root) e.commands.push_back("chmod u-s " + shell_quote(b.path));
  if (!b.capabilities.empty())
    e.commands.push_back("setcap " + shell_quote(setcap_text(b.capabilities)) + " " + shell_quote(b.path));
  else if (has_caps)
    e.commands.push_back("setcap -r " + shell_quote(b.path));
  return e;
}

}  // namespace

int print_setcap_script(std::ostream& out, const Analysis& a, Store& store) {
  out << "#!/bin/sh\n"
      << "# capaudit setcap script, generated " << format_utc(time(nullptr)) << " from " << quote_for_display(store.path()) << "\n"
      << "# Review, then run as root. It only narrows privilege: each active line\n"
      << "# re-checks that the file is the one observed before changing it.\n\n"
      << kPrologue << "\n";
  auto services = service_cgroups();
  int active = 0;
  for (const auto& b : a.binaries) {
    Entry e = decide(b, services);
    for (const auto& c : e.comments) out << c << "\n";
    if (!e.commands.empty()) {
      active++;
      out << "if capaudit_trusted " << shell_quote(e.path) << " " << shell_quote(e.sha256) << "; then\n";
      for (const auto& c : e.commands) out << "  " << c << " || capaudit_skip " << shell_quote(e.path) << " 'failed'\n";
      out << "fi\n";
    }
    out << "\n";
  }
  out << "# " << active << " binaries narrowed, " << a.binaries.size() - static_cast<size_t>(active)
      << " left as they are.\n";
  return out ? 0 : 1;
}

}  // namespace capaudit

// files: setuid/setgid binaries and files with capabilities, like
// `find DIR -perm /6000` plus `getcap -r DIR`, with what the daemon saw.
#include "commands.h"

#include "capnames.h"
#include "identity.h"
#include "text.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

namespace capaudit {
namespace {

namespace fs = std::filesystem;

struct Found {
  std::string path;
  struct stat st {};
  std::optional<FileIdentity> identity;  // for the decoded capabilities and hash
};

bool has_file_caps(const std::string& path) {
  return lgetxattr(path.c_str(), "security.capability", nullptr, 0) > 0;
}

bool interesting(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return false;
  return (st.st_mode & (S_ISUID | S_ISGID)) || has_file_caps(path);
}

std::string user_name(uid_t uid) {
  struct passwd pw {};
  struct passwd* res = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return res->pw_name;
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  struct group gr {};
  struct group* res = nullptr;
  char buf[4096];
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res) return res->gr_name;
  return std::to_string(gid);
}

std::string mode_text(mode_t m) {
  std::string s = "-rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (!(m & (1u << (8 - i)))) s[1 + i] = '-';
  }
  if (m & S_ISUID) s[3] = (m & S_IXUSR) ? 's' : 'S';
  if (m & S_ISGID) s[6] = (m & S_IXGRP) ? 's' : 'S';
  if (m & S_ISVTX) s[9] = (m & S_IXOTH) ? 't' : 'T';
  return s;
}

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::vector<std::string> privileges(const Found& f) {
  std::vector<std::string> out;
  if (f.st.st_mode & S_ISUID) out.push_back("setuid " + user_name(f.st.st_uid));
  if (f.st.st_mode & S_ISGID) out.push_back("setgid " + group_name(f.st.st_gid));
  if (f.identity && !f.identity->file_caps_text.empty()) out.push_back("caps " + f.identity->file_caps_text);
  else if (has_file_caps(f.path)) out.push_back("caps (unreadable)");
  return out;
}

std::vector<std::string> path_dirs() {
  std::vector<std::string> out;
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "";
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    // A relative entry ("" or ".") means the current directory; that is not a
    // place privileged binaries are installed, and walking it would surprise.
    if (!dir.empty() && dir.front() == '/') out.emplace_back(dir);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return out;
}

class Walker {
 public:
  // Like find: the starting point is followed if it is a symlink (find -H),
  // nothing below it is.
  bool walk(const std::string& start, bool report_missing) {
    struct stat st {};
    if (stat(start.c_str(), &st) != 0) {
      if (report_missing)
        std::cerr << "capaudit: " << quote_for_display(start) << ": " << std::strerror(errno) << "\n";
      return !report_missing;
    }
    std::error_code ec;
    fs::path root = fs::canonical(start, ec);
    if (ec) root = start;
    if (!roots_.insert(root.string()).second) return true;  // /bin -> /usr/bin, already walked
    if (!S_ISDIR(st.st_mode)) {
      consider(root.string());
      return true;
    }
    bool ok = true;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      std::cerr << "capaudit: " << quote_for_display(start) << ": " << ec.message() << "\n";
      return false;
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        std::cerr << "capaudit: " << quote_for_display(it->path().string()) << ": " << ec.message() << "\n";
        ok = false;
        ec.clear();
        continue;
      }
      std::error_code sec;
      if (it->is_symlink(sec)) continue;
      if (it->is_regular_file(sec)) consider(it->path().string());
    }
    return ok;
  }

  std::map<std::string, Found>& found() { return found_; }

 private:
  void consider(const std::string& path) {
    if (found_.contains(path)) return;
    Found f;
    f.path = path;
    if (lstat(path.c_str(), &f.st) != 0 || !interesting(path, f.st)) return;
    std::string err;
    f.identity = read_file_identity(path, &err);
    if (!f.identity) std::cerr << "capaudit: " << escape_for_display(err) << "\n";
    found_.emplace(path, std::move(f));
  }

  std::set<std::string> roots_;
  std::map<std::string, Found> found_;
};

// What the database recommends per path; nullopt when there is no usable database.
struct Seen {
  std::vector<Observation> observations;
  Analysis analysis;
  std::map<std::string, const BinaryDecision*> by_path;
};

// *damaged: the database exists but could not be read whole; the listing
// goes on without it and the command then fails.
std::optional<Seen> load_seen(const std::string& db, bool* damaged) {
  struct stat st {};
  if (stat(db.c_str(), &st) != 0) return std::nullopt;  // no daemon here: nothing to show
  std::string err;
  auto store = Store::open(db, &err, /*readonly=*/true);
  if (!store) {
    std::cerr << "capaudit: not showing what was seen: " << escape_for_display(err) << "\n";
    return std::nullopt;
  }
  Seen s;
  auto observations = load_observations(*store, std::nullopt, &err);
  if (!observations) {
    std::cerr << "capaudit: not showing what was seen: " << escape_for_display(err) << "\n";
    *damaged = true;
    return std::nullopt;
  }
  s.observations = std::move(*observations);
  s.analysis = analyze(s.observations, Rules::builtin());
  for (const BinaryDecision& b : s.analysis.binaries) {
    if (!b.path.empty()) s.by_path[b.path] = &b;
  }
  return s;
}

std::string seen_text(const BinaryDecision* b) {
  if (!b) return "not seen";
  std::string text = b->capabilities.empty() ? "none needed" : setcap_text(b->capabilities);
  if (!b->seen_non_root_euid) text += " (seen as root only)";
  return text;
}

}  // namespace

int cmd_files(const FilesArgs& args) {
  bool explicit_dirs = !args.dirs.empty();
  std::vector<std::string> dirs = explicit_dirs ? args.dirs : path_dirs();
  Walker walker;
  bool ok = true;
  for (const std::string& d : dirs) ok = walker.walk(d, explicit_dirs) && ok;

  bool damaged = false;
  std::optional<Seen> seen = load_seen(args.db, &damaged);
  if (damaged) ok = false;
  auto seen_for = [&](const std::string& path) -> const BinaryDecision* {
    auto it = seen->by_path.find(path);
    return it == seen->by_path.end() ? nullptr : it->second;
  };

  if (args.json) {
    using nlohmann::json;
    json files = json::array();
    for (const auto& [path, f] : walker.found()) {
      json j;
      j["path"] = path;
      j["mode"] = octal_mode(f.st.st_mode);
      j["mode_text"] = mode_text(f.st.st_mode);
      j["owner"] = user_name(f.st.st_uid);
      j["owner_uid"] = f.st.st_uid;
      j["group"] = group_name(f.st.st_gid);
      j["owner_gid"] = f.st.st_gid;
      j["setuid"] = (f.st.st_mode & S_ISUID) != 0;
      j["setgid"] = (f.st.st_mode & S_ISGID) != 0;
      j["setuid_root"] = (f.st.st_mode & S_ISUID) && f.st.st_uid == 0;
      j["setgid_root"] = (f.st.st_mode & S_ISGID) && f.st.st_gid == 0;
      bool caps = f.identity && !f.identity->file_caps_text.empty();
      j["file_caps"] = caps ? json(f.identity->file_caps_text) : json(nullptr);
      j["sha256"] = f.identity ? json(f.identity->sha256) : json(nullptr);
      if (seen) {
        const BinaryDecision* b = seen_for(path);
        if (b) {
          std::string setcap = setcap_text(b->capabilities);
          j["observed"] = {{"capabilities", cap_names(b->capabilities)},
                           {"setcap", setcap.empty() ? json(nullptr) : json(setcap)},
                           {"seen_non_root_euid", b->seen_non_root_euid},
                           {"warnings", b->warnings}};
        } else {
          j["observed"] = nullptr;
        }
      }
      files.push_back(std::move(j));
    }
    json out{{"files", std::move(files)}, {"database", seen ? json(args.db) : json(nullptr)}};
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::vector<std::string> header = {"PATH", "MODE", "OWNER", "PRIVILEGE"};
    if (seen) header.push_back("RECOMMENDED (FROM " + quote_for_display(args.db) + ")");
    TextTable table(header);
    for (const auto& [path, f] : walker.found()) {
      // Built apart: clang before 16 cannot capture a structured binding.
      std::string privs = join(privileges(f), ", ");
      std::vector<std::string> row = {quote_for_display(path), mode_text(f.st.st_mode),
                                      quote_for_display(user_name(f.st.st_uid)) + ":" +
                                          quote_for_display(group_name(f.st.st_gid)),
                                      escape_for_display(privs)};
      if (seen) row.push_back(seen_text(seen_for(path)));
      table.add(std::move(row));
    }
    if (walker.found().empty()) std::cout << "no setuid, setgid or capability-carrying files found\n";
    else table.print(std::cout);
  }
  if (!std::cout.flush()) return 1;
  return ok ? 0 : 1;
}

}  // namespace capaudit

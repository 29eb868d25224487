#include "real_programs.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

namespace capaudit::e2e::real {

std::string set_text(const CapSet& s) {
  std::string out = "{";
  for (auto& c : s) out += (out.size() > 1 ? "," : "") + c;
  return out + "}";
}

std::string build_dir() { return std::filesystem::path(capaudit_bin()).parent_path().string(); }

namespace {

std::string tail(const std::string& text, size_t n = 300) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

bool root_run(const std::vector<std::string>& argv, std::string* err) {
  ProcessResult r = run(argv);
  if (r.exit_code == 0) return true;
  std::string line;
  for (auto& a : argv) line += a + " ";
  *err += line + "failed: " + tail(r.err) + "\n";
  return false;
}

}  // namespace

Env::Env() {
  // As a login as nobody would have them: a PATH with root's private
  // directories (ctest inherits them) makes every exec search them, granted
  // CAP_DAC_READ_SEARCH and failed, and a HOME of /root the same for every
  // configuration file a program looks for.
  if (const char* v = getenv("PATH")) saved_path_ = v;
  if (const char* v = getenv("HOME")) saved_home_ = v;
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  setenv("HOME", "/nonexistent", 1);
  std::string tag = std::to_string(getpid());
  netns_a_ = "capaudit-rp-" + tag + "-a";
  netns_b_ = "capaudit-rp-" + tag + "-b";
  // Two namespaces joined by a veth pair, so that arping has a neighbour.
  bool ok = root_run({"ip", "netns", "add", netns_a_}, &error_) && root_run({"ip", "netns", "add", netns_b_}, &error_) &&
            root_run({"ip", "-n", netns_a_, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns",
                      netns_b_},
                     &error_) &&
            root_run({"ip", "-n", netns_a_, "addr", "add", "10.9.9.1/24", "dev", "veth0"}, &error_) &&
            root_run({"ip", "-n", netns_b_, "addr", "add", "10.9.9.2/24", "dev", "veth1"}, &error_) &&
            root_run({"ip", "-n", netns_a_, "link", "set", "veth0", "up"}, &error_) &&
            root_run({"ip", "-n", netns_b_, "link", "set", "veth1", "up"}, &error_) &&
            root_run({"ip", "-n", netns_b_, "link", "set", "lo", "up"}, &error_);
  (void)ok;
  // A root process another user may not signal or renice; its own name so
  // that killall matches it alone.
  sleeper_name_ = "rpsleep" + tag;
  if (sleeper_name_.size() > 15) sleeper_name_.resize(15);
  std::string sleeper = copy_binary("/bin/sleep", sleeper_name_);
  sleeper_ = fork();
  if (sleeper_ == 0) {
    execl(sleeper.c_str(), sleeper_name_.c_str(), "600", static_cast<char*>(nullptr));
    _exit(127);
  }
}

Env::~Env() {
  if (sleeper_ > 0) {
    kill(sleeper_, SIGKILL);
    waitpid(sleeper_, nullptr, 0);
  }
  run({"ip", "netns", "del", netns_a_});
  run({"ip", "netns", "del", netns_b_});
  // An immutable file left by a failed chattr run would keep TempDir.
  run({"chattr", "-R", "-f", "-i", dir()});
  setenv("PATH", saved_path_.c_str(), 1);
  setenv("HOME", saved_home_.c_str(), 1);
}

bool Env::ready(std::string* why) const {
  if (!error_.empty()) *why = error_;
  if (sleeper_ <= 0) *why += "could not start the sleeper\n";
  return why->empty();
}

std::string Env::make_file(const std::string& name, uid_t uid, gid_t gid, mode_t mode, const std::string& text) const {
  std::string path = file(name);
  unlink(path.c_str());
  std::ofstream(path) << text;
  if (chown(path.c_str(), uid, gid) != 0 || chmod(path.c_str(), mode) != 0)
    ADD_FAILURE() << "cannot set owner/mode of " << path;
  return path;
}

std::string Env::copy_binary(const std::string& from, const std::string& name) const {
  std::string to = file(name);
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec || chmod(to.c_str(), 0755) != 0) ADD_FAILURE() << "cannot copy " << from << ": " << ec.message();
  return to;
}

ProcessResult Env::in_netns(const std::vector<std::string>& argv) const {
  std::vector<std::string> full = {"nsenter", "--net=" + netns_path()};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full);
}

namespace {

std::vector<std::string> prefix(const Program& p, const Env& env) {
  if (!p.in_netns) return {};
  return {"nsenter", "--net=" + env.netns_path()};
}

}  // namespace

bool works_holding(const Program& p, const Env& env, const CapSet& caps, std::string* why) {
  if (p.prepare) p.prepare(env);
  std::string list = "-all";
  for (auto& c : caps) list += ",+" + c.substr(4);  // setpriv wants names without cap_
  std::vector<std::string> argv = prefix(p, env);
  for (const std::string& a : {std::string("setpriv"), std::string("--reuid=65534"), std::string("--regid=65534"),
                               std::string("--clear-groups"), "--inh-caps=" + list, "--ambient-caps=" + list,
                               std::string("--")})
    argv.push_back(a);
  argv.insert(argv.end(), p.argv.begin(), p.argv.end());
  ProcessResult r = run(argv, p.stdin_text, env.dir());
  if (r.exit_code != 0) {
    *why = "exit " + std::to_string(r.exit_code) + (r.signal ? " signal " + std::to_string(r.signal) : "") + ": " +
           tail(r.err);
    return false;
  }
  if (!p.stdout_has.empty() && r.out.find(p.stdout_has) == std::string::npos) {
    *why = "exit 0 but standard output lacks " + p.stdout_has + ": " + tail(r.out);
    return false;
  }
  if (p.effect && !p.effect(env, why)) {
    *why = "exit 0 but " + *why;
    return false;
  }
  return true;
}

bool prove_minimal(const Program& p, const Env& env, std::string* why) {
  std::string w;
  if (!works_holding(p, env, p.needs, &w)) {
    *why = "fails holding exactly " + set_text(p.needs) + ": " + w;
    return false;
  }
  for (auto& c : p.needs) {
    CapSet fewer = p.needs;
    fewer.erase(c);
    if (works_holding(p, env, fewer, &w)) {
      *why = "still works without " + c + " (holding " + set_text(fewer) + ")";
      return false;
    }
  }
  return true;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Exact: return "exact";
    case Verdict::Alternative: return "alt";
    case Verdict::Over: return "over";
    case Verdict::Broken: return "BROKEN";
    case Verdict::NoReport: return "no-report";
  }
  return "?";
}

Recommendation recommend(const Program& p, const Env& env, bool minimize) {
  Recommendation rec;
  if (p.prepare) p.prepare(env);
  std::string name = p.name;
  std::replace_if(name.begin(), name.end(), [](char c) { return !isalnum(static_cast<unsigned char>(c)); }, '_');
  std::string out = env.file("profile-" + name + (minimize ? "-min" : "") + ".json");
  unlink(out.c_str());
  std::vector<std::string> argv = prefix(p, env);
  for (const char* a : {"profile", "--user", "nobody", "--json", "--output"}) argv.push_back(a);
  argv.insert(argv.begin() + static_cast<long>(prefix(p, env).size()), capaudit_bin());
  argv.push_back(out);
  if (minimize) {
    argv.push_back("--minimize");
    if (p.compare_output) argv.push_back("--compare-output");
  }
  argv.push_back("--");
  if (minimize && !p.minimize_script.empty())
    argv.insert(argv.end(), {"/bin/sh", "-c", p.minimize_script});
  else
    argv.insert(argv.end(), p.argv.begin(), p.argv.end());
  rec.run = run(argv, p.stdin_text, env.dir());
  rec.report = nlohmann::json::parse(read_file(out), nullptr, false);
  if (!rec.report.is_object() || !rec.report.contains("binaries") || rec.report["binaries"].empty()) {
    rec.why = "capaudit exit " + std::to_string(rec.run.exit_code) + ": " + tail(rec.run.err);
    return rec;
  }
  // Ambient capabilities pass to the whole tree: the tree is given the union.
  for (auto& b : rec.report["binaries"])
    for (auto& c : b["capabilities"]) rec.caps.insert(c.get<std::string>());
  if (rec.caps == p.needs) {
    rec.verdict = Verdict::Exact;
    return rec;
  }
  std::string w;
  if (works_holding(p, env, rec.caps, &w)) {
    rec.verdict = Verdict::Alternative;
    for (auto& c : rec.caps) {
      CapSet fewer = rec.caps;
      fewer.erase(c);
      if (works_holding(p, env, fewer, &w)) {
        rec.verdict = Verdict::Over;
        rec.why = "works without " + c;
        break;
      }
    }
  } else {
    rec.verdict = Verdict::Broken;
    std::string lacks;
    for (auto& c : p.needs)
      if (!rec.caps.count(c)) lacks += (lacks.empty() ? "" : ",") + c;
    rec.why = "holding " + set_text(rec.caps) + " (lacks " + lacks + "): " + w;
  }
  return rec;
}

bool kept_unverified(const nlohmann::json& report, const std::string& cap) {
  bool seen = false;
  for (auto& b : report["binaries"]) {
    for (auto& c : b["checks"]) {
      if (c.value("capability", "") != cap || c.value("verdict", "") != "granted" || !c.value("required", false))
        continue;
      seen = true;
      std::string reason = c.value("reason", "");
      if (reason.find("unverified") == std::string::npos && reason.find("kept because") == std::string::npos)
        return false;
    }
  }
  return seen;
}

const ExpectedFailure* find_expected_failure(const std::vector<ExpectedFailure>& list, const std::string& program,
                                             const std::string& mode) {
  for (auto& e : list)
    if (program == e.program && mode == e.mode) return &e;
  return nullptr;
}

namespace {

// One mode's assertion: *ok false and *what says why when it does not hold.
std::string judge_plain(const Program& p, const Recommendation& r, bool* ok, std::string* what) {
  *ok = true;
  if (r.verdict == Verdict::Exact) return p.plain_over.empty() ? "exact" : "exact (expected over)";
  if (r.verdict == Verdict::Alternative) return "alt";
  if (r.verdict == Verdict::Broken || r.verdict == Verdict::NoReport) {
    *ok = false;
    *what = std::string(verdict_name(r.verdict)) + ": " + r.why;
    return verdict_name(r.verdict);
  }
  CapSet allowed = p.needs;
  for (auto& [cap, why] : p.plain_over) allowed.insert(cap);
  for (auto& c : r.caps) {
    if (allowed.count(c) == 0) {
      *ok = false;
      *what = "over: " + c + " is not needed and the kernel's evidence decides it";
      return "over";
    }
    if (p.needs.count(c) == 0 && !kept_unverified(r.report, c)) {
      *ok = false;
      *what = "over: " + c + " kept without saying unverified";
      return "over";
    }
  }
  return "over (unverified, expected)";
}

std::string judge_minimized(const Recommendation& r, bool* ok, std::string* what) {
  *ok = r.verdict == Verdict::Exact || r.verdict == Verdict::Alternative;
  if (!*ok) *what = std::string(verdict_name(r.verdict)) + ": " + (r.why.empty() ? set_text(r.caps) : r.why);
  return verdict_name(r.verdict);
}

std::string pad(const std::string& s, size_t n) { return s.size() >= n ? s + " " : s + std::string(n - s.size(), ' '); }

}  // namespace

void score_suite(const std::string& title, const std::vector<Program>& programs, const Env& env,
                 const std::vector<ExpectedFailure>& expected, const std::string& table_file) {
  std::vector<Row> rows;
  std::map<std::string, int> plain_count, min_count;
  int xfail = 0, xpass = 0, unproven = 0;
  std::string notes;
  for (const Program& p : programs) {
    Row row{p.name, set_text(p.needs), "", "", ""};
    std::string why;
    if (!prove_minimal(p, env, &why)) {
      ADD_FAILURE() << p.name << ": the table's set " << set_text(p.needs) << " is not proven: " << why;
      row.verdict = "UNPROVEN";
      unproven++;
      rows.push_back(row);
      continue;
    }
    Recommendation plain = recommend(p, env, false);
    Recommendation min = recommend(p, env, true);
    row.plain = set_text(plain.caps);
    row.minimized = set_text(min.caps);
    plain_count[verdict_name(plain.verdict)]++;
    min_count[verdict_name(min.verdict)]++;
    bool pok = false, mok = false;
    std::string pwhat, mwhat;
    std::string pv = judge_plain(p, plain, &pok, &pwhat);
    std::string mv = judge_minimized(min, &mok, &mwhat);
    for (auto [mode, ok, what] : {std::tuple{"plain", pok, pwhat}, std::tuple{"minimize", mok, mwhat}}) {
      const ExpectedFailure* e = find_expected_failure(expected, p.name, mode);
      if (!ok && e) {
        xfail++;
        notes += "XFAIL " + p.name + " (" + mode + "): " + what + " [kind: " + e->kind + "; fix: " + e->owner + "]\n";
      } else if (!ok) {
        ADD_FAILURE() << p.name << " (" << mode << "): " << what << "\nproven S " << set_text(p.needs)
                      << "\ncapaudit stderr: " << tail((std::string(mode) == "plain" ? plain : min).run.err, 600);
      } else if (e) {
        xpass++;
        notes += "XPASS " + p.name + " (" + mode + "): now right; remove it from the expected failures\n";
      }
    }
    row.verdict = "plain " + pv + ", min " + mv;
    rows.push_back(row);
  }
  std::ostringstream t;
  t << title << "\n";
  t << pad("program", 34) << pad("S (proven)", 44) << pad("plain", 44) << pad("minimized", 44) << "verdict\n";
  for (auto& r : rows)
    t << pad(r.program, 34) << pad(r.needs, 44) << pad(r.plain, 44) << pad(r.minimized, 44) << r.verdict << "\n";
  auto totals = [&](const char* label, std::map<std::string, int>& c) {
    t << label << ": exact " << c["exact"] << ", alternative minimal " << c["alt"] << ", over " << c["over"] << ", broken " << c["BROKEN"] << ", no report "
      << c["no-report"] << " of " << programs.size() - unproven << "\n";
  };
  totals("plain    ", plain_count);
  totals("minimized", min_count);
  t << "unproven " << unproven << ", xfail " << xfail << ", xpass " << xpass << "\n" << notes;
  std::printf("%s", t.str().c_str());
  std::fflush(stdout);
  std::ofstream(table_file) << t.str();
}

}  // namespace capaudit::e2e::real

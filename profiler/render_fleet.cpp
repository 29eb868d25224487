// fleet recommend and fleet outliers: the contract's "binaries" shape, one
// entry per binary version, with how many hosts back each part of it.
#include "render.h"

#include "capnames.h"
#include "display.h"

#include <ostream>

namespace capaudit {
namespace {

using nlohmann::json;

std::string joined(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

// As setcap_text, for names: another host's kernel may know a capability
// this one cannot name, and setcap takes the number then.
std::string fleet_setcap(const std::vector<std::string>& names) {
  if (names.empty()) return "";
  std::vector<int> caps;
  for (const std::string& n : names) {
    std::optional<int> c = cap_from_name(n);
    if (!c) return joined(names, ",") + "+ep";
    caps.push_back(*c);
  }
  return setcap_text(caps);
}

std::string host_count(int64_t n) { return std::to_string(n) + (n == 1 ? " host" : " hosts"); }

}  // namespace

json fleet_recommend_to_json(const std::vector<FleetBinary>& binaries) {
  json out = json::array();
  for (const FleetBinary& b : binaries) {
    json checks = json::array();
    for (const FleetCheck& c : b.checks) {
      checks.push_back({{"capability", c.capability},
                        {"verdict", c.granted ? "granted" : "denied"},
                        {"audit", c.audit == Audit::Unknown ? json(nullptr) : json(c.audit == Audit::Yes)},
                        {"count", c.count},
                        {"required", c.required_hosts > 0},
                        {"reason", c.reason},
                        {"origins", json::array()},
                        {"hosts", c.hosts},
                        {"required_hosts", c.required_hosts},
                        {"first_seen", c.first_seen},
                        {"last_seen", c.last_seen}});
    }
    std::string setcap = fleet_setcap(b.capabilities);
    out.push_back({{"path", b.path},
                   {"paths", b.paths},
                   {"sha256", opt(b.sha256)},
                   {"hosts", b.hosts},
                   {"capabilities", b.capabilities},
                   {"setcap", setcap.empty() ? json(nullptr) : json(setcap)},
                   {"checks", std::move(checks)}});
  }
  return json{{"binaries", std::move(out)}};
}

json fleet_outliers_to_json(const std::vector<FleetOutlier>& outliers) {
  json out = json::array();
  for (const FleetOutlier& o : outliers) {
    out.push_back({{"path", o.path},
                   {"sha256", opt(o.sha256)},
                   {"capability", o.capability},
                   {"hosts", o.hosts},
                   {"of_hosts", o.of_hosts}});
  }
  return json{{"outliers", std::move(out)}};
}

void print_fleet_recommend_table(std::ostream& out, const std::vector<FleetBinary>& binaries) {
  if (binaries.empty()) {
    out << "no binaries loaded\n";
    return;
  }
  for (const FleetBinary& b : binaries) {
    out << escape_for_display(b.path) << "  sha256 " << (b.sha256 ? b.sha256->substr(0, 16) : "(none)") << "  "
        << host_count(b.hosts) << "\n";
    std::string setcap = fleet_setcap(b.capabilities);
    out << "  recommended: " << (setcap.empty() ? "(none)" : setcap) << "\n";
    TextTable t({"CAPABILITY", "VERDICT", "AUDIT", "COUNT", "HOSTS", "REQUIRED ON", "REASON"});
    t.align_right(3);
    t.align_right(4);
    t.align_right(5);
    for (const FleetCheck& c : b.checks) {
      t.add({c.capability, c.granted ? "granted" : "denied", audit_name(c.audit), std::to_string(c.count),
             std::to_string(c.hosts), std::to_string(c.required_hosts), escape_for_display(c.reason)});
    }
    t.print(out, "  ");
    out << "\n";
  }
}

void print_fleet_outliers_table(std::ostream& out, const std::vector<FleetOutlier>& outliers) {
  if (outliers.empty()) {
    out << "no outliers: every capability required anywhere is required on at least half the hosts running that "
           "version\n";
    return;
  }
  TextTable t({"PATH", "SHA256", "CAPABILITY", "REQUIRED ON", "OF", "HOSTS"});
  t.align_right(3);
  t.align_right(4);
  for (const FleetOutlier& o : outliers) {
    std::vector<std::string> hosts;
    for (const std::string& h : o.hosts) hosts.push_back(escape_for_display(h));
    t.add({escape_for_display(o.path), o.sha256 ? o.sha256->substr(0, 16) : "(none)", o.capability,
           std::to_string(o.hosts.size()), std::to_string(o.of_hosts), joined(hosts, ",")});
  }
  t.print(out);
}

}  // namespace capaudit

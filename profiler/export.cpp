// capaudit export: this host's checks and the engine's decisions about
// them, one NDJSON line per (binary version, capability, verdict, audit).
// The fleet unions these decisions; it never re-decides (docs/fleet.md).
#include "commands.h"

#include "identity.h"
#include "minimize.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

namespace capaudit {
namespace {

constexpr const char* kMachineId = "/etc/machine-id";

std::optional<std::string> machine_id(std::string* err) {
  std::ifstream in(kMachineId);
  std::string id;
  if (!in || !std::getline(in, id)) {
    *err = std::string("cannot read ") + kMachineId + ": " + std::strerror(errno) + "; give --host-id ID";
    return std::nullopt;
  }
  if (!valid_host_id(id)) {
    *err = std::string(kMachineId) + " holds no usable id; give --host-id ID";
    return std::nullopt;
  }
  return id;
}

// The engine merges every inode seen at a path into one program's history
// (an upgrade replaced it); the fleet compares versions, so each content
// (SHA-256) of a path is decided on its own. Observations without a hash
// stay with their path.
std::vector<std::vector<Observation>> by_version(std::vector<Observation> obs) {
  std::vector<std::vector<Observation>> versions;
  std::map<std::pair<std::string, std::string>, size_t> index;
  for (Observation& o : obs) {
    if (o.binary.key.path.empty()) continue;  // kernel threads, unresolved: nothing to compare
    std::string sha = o.binary.sha256.value_or("");
    auto [it, fresh] = index.emplace(std::pair{o.binary.key.path, sha}, versions.size());
    if (fresh) versions.emplace_back();
    versions[it->second].push_back(std::move(o));
  }
  return versions;
}

// A verified set (profile --minimize) is the host's decision where it was
// made for this very content; apply_stored_verifications checks the file
// as it is now, which is right only for the version on disk today.
void apply_verifications(Analysis& a, Store& store) {
  const StoredVerifications verified(store);
  for (BinaryDecision& b : a.binaries) {
    if (!b.row || !b.row->sha256 || !verified.any(b.path)) continue;
    std::optional<FileIdentity> now = read_file_identity(b.path);
    if (!now || now->sha256 != *b.row->sha256) continue;
    verified.apply(b);
  }
}

// Written beside its final name and renamed over it: a shipper picking up
// the nightly file never reads half of one. Mode 0600, or 0640 where the
// umask leaves group read (a shipper's group, docs/fleet.md); never
// readable by others: it lists what every program on the host did.
bool write_atomically(const std::string& path, const std::string& text, std::string* err) {
  std::string tmp = path + ".XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) {
    *err = std::strerror(errno);
    return false;
  }
  mode_t mask = umask(0077);
  umask(mask);
  if (fchmod(fd, 0640 & ~mask) != 0) {
    *err = std::strerror(errno);
    close(fd);
    unlink(tmp.c_str());
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = std::strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    *err = std::strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  // The rename itself survives a crash once its directory is on disk.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  if (int d = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    fsync(d);
    close(d);
  }
  return true;
}

}  // namespace

int cmd_export(const ExportArgs& args) {
  std::string err;
  std::string host_id;
  if (args.host_id) {
    host_id = *args.host_id;
  } else if (auto id = machine_id(&err)) {
    host_id = *id;
  } else {
    std::cerr << "capaudit export: " << err << "\n";
    return 1;
  }
  std::unique_ptr<Store> store = Store::open(args.db, &err, /*readonly=*/true);
  if (!store) {
    std::cerr << "capaudit: " << err << "\n";
    return 1;
  }
  auto obs = load_observations(*store, std::nullopt, &err);
  if (!obs) {
    std::cerr << "capaudit: " << escape_for_display(err) << "\n";
    return 1;
  }
  // Each version's decisions point into its observations: both live here.
  std::vector<std::vector<Observation>> versions = by_version(std::move(*obs));
  Analysis analysis;
  for (const auto& v : versions) {
    Analysis one = analyze(v, Rules::builtin());
    for (BinaryDecision& b : one.binaries) analysis.binaries.push_back(std::move(b));
  }
  apply_verifications(analysis, *store);
  if (store->read_failed()) {
    std::cerr << "capaudit: " << escape_for_display(store->damage_message()) << "\n";
    return 1;
  }
  std::vector<FleetLine> lines = export_lines(analysis, host_id, static_cast<int64_t>(std::time(nullptr)));
  if (!args.output) {
    write_export(std::cout, lines);
    return std::cout.flush() ? 0 : 1;
  }
  std::ostringstream text;
  write_export(text, lines);
  if (!write_atomically(*args.output, text.str(), &err)) {
    std::cerr << "capaudit export: cannot write " << quote_for_display(*args.output) << ": " << err << "\n";
    return 1;
  }
  return 0;
}

}  // namespace capaudit

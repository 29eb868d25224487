// report and recommend: what the daemon observed, and the minimal set.
// The commands load and decide; render.h writes each format.
#include "commands.h"
#include "fd.h"

#include "minimize.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

namespace capaudit {
namespace {

// Store, observations and analysis together: the analysis points into the
// observations, which must outlive it. The JSON formats never fill
// `analysis`: they write each binary as soon as it is decided (decide_each).
struct Loaded {
  std::unique_ptr<Store> store;
  std::vector<Observation> observations;
  std::vector<CgroupRow> cgroups;
  Analysis analysis;
};

// --unit or --container with the per-binary view: only that one's checks.
struct Within {
  GroupBy by = GroupBy::Binary;
  std::string which;
};

std::optional<Within> within(const std::optional<std::string>& unit, const std::optional<std::string>& container) {
  if (unit) return Within{GroupBy::Unit, *unit};
  if (container) return Within{GroupBy::Container, *container};
  return std::nullopt;
}

// nullopt after printing the error; *status is the exit status then.
std::optional<Loaded> load(const std::string& db, const std::optional<std::string>& binary, int* status,
                           const std::optional<Within>& in = std::nullopt) {
  Loaded l;
  std::string err;
  l.store = Store::open(db, &err, /*readonly=*/true);
  if (l.store && !l.store->begin_read(&err)) {
    err = "database '" + db + "': " + err;
    l.store.reset();
  }
  if (!l.store) {
    std::cerr << "capaudit: " << err << "\n";
    *status = 1;
    return std::nullopt;
  }
  auto read = [&](const std::optional<std::string>& path) {
    auto obs = load_observations(*l.store, path, &err);
    if (obs) l.observations = std::move(*obs);
    return obs.has_value();
  };
  bool ok = read(binary);
  if (ok && binary && l.observations.empty()) {
    // The kernel records the resolved path: /bin/ping is seen as /usr/bin/ping.
    std::error_code ec;
    auto canonical = std::filesystem::canonical(*binary, ec);
    if (!ec && canonical.string() != *binary) ok = read(canonical.string());
  }
  if (!ok) {
    std::cerr << "capaudit: " << escape_for_display(err) << "\n";
    *status = 1;
    return std::nullopt;
  }
  if (binary && l.observations.empty()) {
    std::cerr << "capaudit: no checks recorded for binary " << quote_for_display(*binary) << " in "
              << quote_for_display(db) << "\n";
    *status = 1;
    return std::nullopt;
  }
  l.cgroups = l.store->cgroups();
  if (in) {
    l.observations = observations_in(l.observations, l.cgroups, in->by, in->which);
    if (l.observations.empty()) {
      std::cerr << "capaudit: no checks recorded in " << (in->by == GroupBy::Unit ? "unit " : "container ")
                << quote_for_display(in->which) << " in " << quote_for_display(db) << "\n";
      *status = 1;
      return std::nullopt;
    }
  }
  return l;
}

void decide(Loaded& l) { l.analysis = analyze(l.observations, Rules::builtin()); }

void decide_each(Loaded& l, const std::function<void(BinaryDecision&)>& each) {
  analyze_each(l.observations, Rules::builtin(), each);
}

// False, after saying why, when the database failed to give what was read.
bool read_ok(const Store& store) {
  if (!store.read_failed()) return true;
  std::cerr << "capaudit: " << escape_for_display(store.damage_message()) << "\n";
  return false;
}

// A set checked by re-running the program beats one inferred from checks.
// False, after saying why, when the database failed to give them.
bool apply_verified_sets(Analysis& a, Store& store) {
  apply_stored_verifications(a, store);
  return read_ok(store);
}

}  // namespace

int cmd_report(const ReportArgs& args) {
  int status = 0;
  auto loaded = load(args.db, args.binary, &status, within(args.unit, args.container));
  if (!loaded) return status;
  if (args.json) {
    JsonStream json(std::cout);
    decide_each(*loaded, [&](BinaryDecision& b) { json.add(b); });
    json.finish();
    return std::cout.flush() ? 0 : 1;
  }
  decide(*loaded);
  if (loaded->analysis.binaries.empty()) {
    std::cout << "no checks recorded in " << quote_for_display(args.db) << "\n";
  } else {
    print_report_table(std::cout, loaded->analysis);
  }
  return std::cout.flush() ? 0 : 1;
}

// --output: written beside its final name and renamed over it, mode 0600,
// so the nightly job never leaves half a script for an operator to run.
class AtomicOutput {
 public:
  explicit AtomicOutput(const std::string& path) : path_(path), tmp_(path + ".XXXXXX") {
    Fd fd(mkstemp(tmp_.data()));
    if (!fd) {
      error_ = std::strerror(errno);
      return;
    }
    fchmod(fd.get(), 0600);
    fd.reset();
    out_.open(tmp_, std::ios::trunc);
    if (!out_) error_ = std::strerror(errno);
  }
  ~AtomicOutput() {
    if (!committed_ && error_.empty()) unlink(tmp_.c_str());
  }
  const std::string& error() const { return error_; }
  std::ostream& stream() { return out_; }
  bool commit() {
    out_.flush();
    if (!out_) {
      error_ = "write failed";
      unlink(tmp_.c_str());
      return false;
    }
    out_.close();
    if (rename(tmp_.c_str(), path_.c_str()) != 0) {
      error_ = std::strerror(errno);
      unlink(tmp_.c_str());
      return false;
    }
    committed_ = true;
    return true;
  }

 private:
  std::string path_, tmp_, error_;
  std::ofstream out_;
  bool committed_ = false;
};

int write_recommendation(std::ostream& out, const RecommendArgs& args, Loaded& loaded) {
  if (args.format == RecommendFormat::Json) {
    // Read whole before the first binary is written: a database that fails
    // to give them leaves the output empty.
    const StoredVerifications verified(*loaded.store);
    if (!read_ok(*loaded.store)) return 1;
    JsonStream json(out);
    decide_each(loaded, [&](BinaryDecision& b) {
      verified.apply(b);
      json.add(b);
    });
    json.finish();
    return out.flush() ? 0 : 1;
  }
  decide(loaded);
  if (!apply_verified_sets(loaded.analysis, *loaded.store)) return 1;
  switch (args.format) {
    case RecommendFormat::Systemd:
    case RecommendFormat::Docker:
    case RecommendFormat::Kubernetes:
      break;  // grouped: write_groups
    case RecommendFormat::Script:
      return print_setcap_script(out, loaded.analysis, *loaded.store);
    case RecommendFormat::Json:
      break;  // above
    case RecommendFormat::Table:
      if (loaded.analysis.binaries.empty()) out << "no checks recorded in " << quote_for_display(args.db) << "\n";
      else print_recommend_table(out, loaded.analysis);
      break;
  }
  return out.flush() ? 0 : 1;
}

// The grouping a format implies, or a usage error.
std::optional<GroupBy> grouping(const RecommendArgs& a, std::string* err) {
  std::optional<GroupBy> implied;
  if (a.format == RecommendFormat::Systemd) implied = GroupBy::Unit;
  if (a.format == RecommendFormat::Docker || a.format == RecommendFormat::Kubernetes) implied = GroupBy::Container;
  if (a.format == RecommendFormat::Script) implied = GroupBy::Binary;
  GroupBy by = a.by ? *a.by : implied ? *implied : GroupBy::Binary;
  if (implied && *implied != by) {
    *err = a.format == RecommendFormat::Script  ? "--format script is per binary: it cannot go with --by unit|container"
           : a.format == RecommendFormat::Systemd ? "--format systemd writes drop-ins per unit: use --by unit"
                                                  : "--format docker|kubernetes is per container: use --by container";
    return std::nullopt;
  }
  if (by == GroupBy::Unit && a.container) {
    *err = "--container does not go with --by unit";
    return std::nullopt;
  }
  if (by == GroupBy::Container && a.unit) {
    *err = "--unit does not go with --by container";
    return std::nullopt;
  }
  return by;
}

int write_groups(std::ostream& out, const RecommendArgs& args, const GroupAnalysis& ga) {
  if (ga.groups.empty() && args.format != RecommendFormat::Json && args.format != RecommendFormat::Table) {
    out << "# no checks recorded in any " << (ga.by == GroupBy::Unit ? "unit" : "container") << " in "
        << quote_for_display(args.db) << "\n";
    return out.flush() ? 0 : 1;
  }
  switch (args.format) {
    case RecommendFormat::Systemd:
      print_systemd_dropins(out, ga);
      break;
    case RecommendFormat::Docker:
      print_docker(out, ga);
      break;
    case RecommendFormat::Kubernetes:
      print_kubernetes(out, ga);
      break;
    case RecommendFormat::Json:
      out << groups_to_json(ga).dump(2) << "\n";
      break;
    case RecommendFormat::Table:
    case RecommendFormat::Script:
      if (ga.groups.empty())
        out << "no checks recorded in any " << (ga.by == GroupBy::Unit ? "unit" : "container") << " in "
            << quote_for_display(args.db) << "\n";
      else
        print_groups_table(out, ga);
      break;
  }
  return out.flush() ? 0 : 1;
}

// Writes to --output atomically, or to standard output.
template <class Write>
int write_output(const RecommendArgs& args, Write write) {
  if (!args.output) return write(std::cout);
  AtomicOutput file(*args.output);
  if (!file.error().empty()) {
    std::cerr << "capaudit recommend: cannot write " << quote_for_display(*args.output) << ": " << file.error() << "\n";
    return 1;
  }
  int status = write(file.stream());
  if (status != 0) return status;
  if (!file.commit()) {
    std::cerr << "capaudit recommend: cannot write " << quote_for_display(*args.output) << ": " << file.error() << "\n";
    return 1;
  }
  return 0;
}

int recommend_groups(const RecommendArgs& args, GroupBy by) {
  int status = 0;
  auto loaded = load(args.db, args.binary, &status);
  if (!loaded) return status;
  std::optional<std::string> only = by == GroupBy::Unit ? args.unit : args.container;
  const UnitLookup units = systemd_unit_lookup();  // the units' User= as systemd has them now
  GroupAnalysis ga = analyze_groups(loaded->observations, loaded->cgroups, by, Rules::builtin(), only,
                                    by == GroupBy::Unit ? &units : nullptr);
  if (!read_ok(*loaded->store)) return 1;
  if (only && ga.groups.empty()) {
    std::cerr << "capaudit: no checks recorded in " << (by == GroupBy::Unit ? "unit " : "container ")
              << quote_for_display(*only) << " in " << quote_for_display(args.db) << "\n";
    return 1;
  }
  return write_output(args, [&](std::ostream& out) { return write_groups(out, args, ga); });
}

int cmd_recommend(const RecommendArgs& args) {
  int status = 0;
  std::string usage;
  auto by = grouping(args, &usage);
  if (!by) {
    std::cerr << "capaudit recommend: " << usage << "\nRun 'capaudit recommend --help' for usage.\n";
    return 2;
  }
  if (*by != GroupBy::Binary) return recommend_groups(args, *by);
  auto loaded = load(args.db, args.binary, &status, within(args.unit, args.container));
  if (!loaded) return status;
  return write_output(args,
                      [&](std::ostream& out) { return write_recommendation(out, args, *loaded); });
}

}  // namespace capaudit

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
  Analysis analysis;
};

// nullopt after printing the error; *status is the exit status then.
std::optional<Loaded> load(const std::string& db, const std::optional<std::string>& binary, int* status) {
  Loaded l;
  std::string err;
  l.store = Store::open(db, &err, /*readonly=*/true);
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
  return l;
}

void decide(Loaded& l) { l.analysis = analyze(l.observations, Rules::builtin()); }

void decide_each(Loaded& l, const std::function<void(BinaryDecision&)>& each) {
  analyze_each(l.observations, Rules::builtin(), each);
}

// A set checked by re-running the program beats one inferred from checks.
// False, after saying why, when the database failed to give them.
bool apply_verified_sets(Analysis& a, Store& store) {
  apply_stored_verifications(a, store);
  if (!store.read_failed()) return true;
  std::cerr << "capaudit: " << escape_for_display(store.damage_message()) << "\n";
  return false;
}

}  // namespace

int cmd_report(const ReportArgs& args) {
  int status = 0;
  auto loaded = load(args.db, args.binary, &status);
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

// `hold`: the output is written only once every binary is decided, so a
// verified set the database fails to give leaves standard output empty
// (--output has its temporary file for that).
int write_recommendation(std::ostream& out, const RecommendArgs& args, Loaded& loaded, bool hold) {
  if (args.format == RecommendFormat::Json) {
    JsonStream json(out, hold);
    bool ok = true;
    decide_each(loaded, [&](BinaryDecision& b) {
      if (!ok) return;
      Analysis one;
      one.binaries.push_back(std::move(b));
      ok = apply_verified_sets(one, *loaded.store);
      if (ok) json.add(one.binaries.front());
    });
    if (!ok) return 1;
    json.finish();
    return out.flush() ? 0 : 1;
  }
  decide(loaded);
  if (!apply_verified_sets(loaded.analysis, *loaded.store)) return 1;
  switch (args.format) {
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

int cmd_recommend(const RecommendArgs& args) {
  int status = 0;
  auto loaded = load(args.db, args.binary, &status);
  if (!loaded) return status;
  if (!args.output) return write_recommendation(std::cout, args, *loaded, /*hold=*/true);
  AtomicOutput file(*args.output);
  if (!file.error().empty()) {
    std::cerr << "capaudit recommend: cannot write " << quote_for_display(*args.output) << ": " << file.error() << "\n";
    return 1;
  }
  status = write_recommendation(file.stream(), args, *loaded, /*hold=*/false);
  if (status != 0) return status;
  if (!file.commit()) {
    std::cerr << "capaudit recommend: cannot write " << quote_for_display(*args.output) << ": " << file.error() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace capaudit

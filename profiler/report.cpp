// report and recommend: what the daemon observed, and the minimal set.
#include "commands.h"

#include "capnames.h"
#include "minimize.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ctime>
#include <filesystem>
#include <iostream>

namespace capaudit {
namespace {

template <typename T>
std::string join_numbers(const std::vector<T>& v) {
  std::vector<std::string> parts;
  for (T x : v) parts.push_back(std::to_string(x));
  return join(parts, ",");
}

std::string format_time(int64_t t) {
  if (t <= 0) return "-";
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  if (!gmtime_r(&tt, &tm)) return std::to_string(t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string audit_cell(Audit a) {
  switch (a) {
    case Audit::Yes: return "yes";
    case Audit::No: return "no";
    case Audit::Unknown: break;
  }
  return "?";
}

std::string origins_cell(const std::vector<std::string>& origins) {
  constexpr size_t kShown = 3;
  std::vector<std::string> parts;
  for (size_t i = 0; i < origins.size() && i < kShown; ++i) parts.push_back(quote_for_display(origins[i]));
  std::string out = parts.empty() ? "-" : join(parts, ",");
  if (origins.size() > kShown) out += ",+" + std::to_string(origins.size() - kShown);
  return out;
}

std::string caps_text(const std::vector<int>& caps) {
  std::vector<std::string> names;
  for (int c : caps) names.push_back(cap_name(c));
  return names.empty() ? "none" : join(names, ",");
}

std::string held_text(uint64_t held) {
  auto names = cap_set_names(held);
  if (names.empty()) return "none";
  // A root process holds them all; the count says that without a wall of names.
  constexpr size_t kListed = 8;
  if (names.size() > kListed) return std::to_string(names.size()) + " capabilities";
  return join(names, ",");
}

std::string source_text(const BinaryDecision& b) {
  if (!b.verification) return "observed";
  const VerificationInfo& v = *b.verification;
  if (!v.baseline_ok) return "observed (verification failed)";
  std::string s = "verified by " + std::to_string(v.runs) + (v.runs == 1 ? " run" : " runs");
  if (v.created > 0) s += " on " + format_time(v.created);
  s += v.compare_output ? ", exit status and output compared" : ", exit status compared";
  return s;
}

// Each capability the runs tried, with what they showed.
void print_verification(std::ostream& out, const BinaryDecision& b) {
  if (!b.verification || b.verification->capabilities.empty()) return;
  out << "  verification:\n";
  TextTable table({"CAPABILITY", "VERIFIED", "RUNS", "REASON"});
  table.align_right(2);
  for (const CapabilityVerdict& cv : b.verification->capabilities) {
    std::string reason = cv.reason;
    if (cv.replaced_by) reason = "replaced by " + cap_name(*cv.replaced_by) + ": " + reason;
    table.add({cap_name(cv.cap), verification_name(cv.verified), std::to_string(cv.runs), escape_for_display(reason)});
  }
  table.print(out, "    ");
}

void print_binary_header(std::ostream& out, const BinaryDecision& b, bool with_times) {
  out << quote_for_display(b.display_name) << "\n";
  std::string setcap = setcap_text(b.capabilities);
  out << "  recommended: " << caps_text(b.capabilities);
  if (!setcap.empty()) out << "  (setcap " << setcap << ")";
  out << "\n";
  // Which kind of set it is: recommend prefers one checked by runs.
  if (!with_times || b.verification) out << "  source: " << source_text(b) << "\n";
  out << "  setuid root: " << (b.setuid_root ? "yes" : "no")
      << "   file caps: " << (b.file_caps ? escape_for_display(*b.file_caps) : std::string("none"))
      << "   effective set held: " << held_text(b.held_effective) << "\n";
  if (with_times) {
    auto [first, last] = seen_span(b);
    out << "  first seen: " << format_time(first) << "   last seen: " << format_time(last) << "\n";
  }
  for (const std::string& w : b.warnings) out << "  warning: " << escape_for_display(w) << "\n";
}

void print_checks(std::ostream& out, const BinaryDecision& b, bool with_times) {
  std::vector<std::string> header = {"CAPABILITY", "VERDICT", "AUDIT", "COUNT", "REQUIRED", "UIDS", "EUIDS"};
  if (with_times) {
    header.push_back("FIRST SEEN");
    header.push_back("LAST SEEN");
  }
  header.push_back("ORIGINS");
  header.push_back("REASON");
  TextTable table(header);
  table.align_right(3);
  for (const CheckDecision& c : b.checks) {
    std::vector<std::string> row = {cap_name(c.cap),
                                    c.granted ? "granted" : "denied",
                                    audit_cell(c.audit),
                                    std::to_string(c.count),
                                    c.required ? "yes" : "no",
                                    join_numbers(c.uids),
                                    join_numbers(c.euids)};
    if (with_times) {
      row.push_back(format_time(c.first_seen));
      row.push_back(format_time(c.last_seen));
    }
    row.push_back(origins_cell(c.origins));
    row.push_back(escape_for_display(c.reason));
    table.add(std::move(row));
  }
  table.print(out, "  ");
}

void print_tables(std::ostream& out, const Analysis& a, bool with_times) {
  bool first = true;
  for (const BinaryDecision& b : a.binaries) {
    if (!first) out << "\n";
    first = false;
    print_binary_header(out, b, with_times);
    print_checks(out, b, with_times);
    print_verification(out, b);
  }
}

// Store, observations and analysis together: the analysis points into the
// observations, which must outlive it.
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
  l.analysis = analyze(l.observations, Rules::builtin());
  return l;
}

void print_json(std::ostream& out, const Analysis& a) { write_json(out, a); }

}  // namespace

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

void TextTable::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void TextTable::align_right(size_t column) { right_.push_back(column); }

void TextTable::print(std::ostream& out, std::string_view indent) const {
  std::vector<size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string text(indent);
    for (size_t i = 0; i < row.size(); ++i) {
      bool last = i + 1 == row.size();
      size_t pad = width[i] - row[i].size();
      bool right = std::find(right_.begin(), right_.end(), i) != right_.end();
      if (right) text.append(pad, ' ');
      text += row[i];
      if (!last) {
        if (!right) text.append(pad, ' ');
        text += "  ";
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  line(header_);
  for (const auto& r : rows_) line(r);
}

void print_report_table(std::ostream& out, const Analysis& a) { print_tables(out, a, /*with_times=*/true); }

void print_recommend_table(std::ostream& out, const Analysis& a) { print_tables(out, a, /*with_times=*/false); }

int cmd_report(const ReportArgs& args) {
  int status = 0;
  auto loaded = load(args.db, args.binary, &status);
  if (!loaded) return status;
  if (args.json) {
    print_json(std::cout, loaded->analysis);
  } else if (loaded->analysis.binaries.empty()) {
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
    int fd = mkstemp(tmp_.data());
    if (fd < 0) {
      error_ = std::strerror(errno);
      return;
    }
    fchmod(fd, 0600);
    close(fd);
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
  switch (args.format) {
    case RecommendFormat::Script:
      return print_setcap_script(out, loaded.analysis, *loaded.store);
    case RecommendFormat::Json:
      print_json(out, loaded.analysis);
      break;
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
  // A set checked by re-running the program beats one inferred from checks.
  apply_stored_verifications(loaded->analysis, *loaded->store);
  if (loaded->store->read_failed()) {
    std::cerr << "capaudit: " << escape_for_display(loaded->store->damage_message()) << "\n";
    return 1;
  }
  if (!args.output) return write_recommendation(std::cout, args, *loaded);
  AtomicOutput file(*args.output);
  if (!file.error().empty()) {
    std::cerr << "capaudit recommend: cannot write " << quote_for_display(*args.output) << ": " << file.error() << "\n";
    return 1;
  }
  status = write_recommendation(file.stream(), args, *loaded);
  if (status != 0) return status;
  if (!file.commit()) {
    std::cerr << "capaudit recommend: cannot write " << quote_for_display(*args.output) << ": " << file.error() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace capaudit

// report and recommend as text: a block per binary, its checks as a table.
#include "render.h"

#include "capnames.h"
#include "display.h"
#include "text.h"
#include "time_util.h"

#include <algorithm>
#include <ctime>

namespace capaudit {
namespace {

template <typename T>
std::string join_numbers(const std::vector<T>& v) {
  std::vector<std::string> parts;
  for (T x : v) parts.push_back(std::to_string(x));
  return join(parts, ",");
}

// "-" where none is known (every check of the line counted at the coarse key).
template <typename T>
std::string numbers_cell(const std::vector<T>& v) {
  return v.empty() ? "-" : join_numbers(v);
}

std::string format_time(int64_t t) {
  if (t <= 0) return "-";
  std::string text = format_utc(static_cast<time_t>(t), "%Y-%m-%d %H:%M:%SZ");
  return text.empty() ? std::to_string(t) : text;
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

// Checks counted at the coarse key (the kernel's counts map was full): the
// JSON marks each one (coarse, count_coarse, detail_lost); the table says it
// once per binary, with which lines and how many of their checks.
void print_detail_lost(std::ostream& out, const BinaryDecision& b) {
  std::vector<std::string> lines;
  uint64_t coarse = 0;
  for (const CheckDecision& c : b.checks) {
    if (!c.coarse_count) continue;
    coarse += c.coarse_count;
    lines.push_back(cap_name(c.cap) + (c.granted ? " granted " : " denied ") + std::to_string(c.coarse_count) +
                    " of " + std::to_string(c.count));
  }
  if (lines.empty()) return;
  out << "  detail lost: the kernel's counts map was full: " << coarse << (coarse == 1 ? " check" : " checks")
      << " counted without their " << kCoarseDetailLost << " (" << join(lines, ", ") << ")\n";
}

void print_binary_header(std::ostream& out, const BinaryDecision& b, bool with_times) {
  out << quote_for_display(b.display_name) << "\n";
  std::string setcap = setcap_text(b.capabilities);
  out << "  recommended: " << cap_list_text(b.capabilities);
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
  print_detail_lost(out, b);
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
                                    numbers_cell(c.uids),
                                    numbers_cell(c.euids)};
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

}  // namespace capaudit

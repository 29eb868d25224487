// The contract's JSON: report --json, recommend --format json, profile
// --json. And the verification object, written here and read back here
// when recommend meets a stored verified set.
#include "render.h"

#include "capnames.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <utility>

namespace capaudit {
namespace {

using nlohmann::json;

// Writes exactly what nlohmann::json's dump(2, ' ', false, replace) writes
// for the same document, as it goes: building a tree per binary, dumping it
// and freeing it cost more than deciding the binary. The shape is defined
// once, by write_binary and write_check below: to_json() parses their text.
//
// nlohmann::json keeps an object's keys in a std::map, so they come out in
// byte order: callers give keys in that order (the ReportJson test holds the
// text to the parsed document's dump, so a key out of place fails it).
class JsonWriter {
 public:
  // Appends to out; when the writer ends, out holds exactly what it wrote.
  explicit JsonWriter(std::string& out) : out_(out), own_pos_(out.size()), pos_(own_pos_), trim_(true) {}
  // Writes at out[pos] on, advancing pos, inside a container `depth` deep
  // that holds elements already unless `empty`. out past pos is room made
  // ahead (see room()), kept for the next writer: the caller uses out[0, pos).
  JsonWriter(std::string& out, size_t& pos, size_t depth, bool empty)
      : out_(out), pos_(pos), depth_(depth), empty_(empty) {}
  ~JsonWriter() {
    if (trim_) out_.resize(pos_);
  }
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  // Keys are this file's literals: plain ASCII, written without a look.
  void key(std::string_view k) {
    element();
    char* p = room(k.size() + 4);
    *p++ = '"';
    std::memcpy(p, k.data(), k.size());
    std::memcpy(p + k.size(), "\": ", 3);
    pos_ += k.size() + 4;
    after_key_ = true;
  }

  void value(std::nullptr_t) { scalar("null"); }
  void value(bool v) { scalar(v ? "true" : "false"); }
  void value(std::string_view s) {
    element();
    string(s);
  }
  void value(const std::string& s) { value(std::string_view(s)); }
  void value(const char* s) { value(std::string_view(s)); }
  template <class T>
    requires std::is_integral_v<T>
  void value(T v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    scalar(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  template <class T>
  void value(const std::optional<T>& v) {
    if (v) value(*v);
    else value(nullptr);
  }
  template <class T>
  void value(const std::vector<T>& v) {
    begin_array();
    for (const T& e : v) value(e);
    end_array();
  }
  // A nested document (the rare verification object): nlohmann's own text,
  // moved right to where it sits.
  void value(const json& j) {
    element();
    const std::string text = j.dump(2, ' ', false, json::error_handler_t::replace);
    std::string_view rest = text;
    for (size_t nl = rest.find('\n'); nl != std::string_view::npos; nl = rest.find('\n')) {
      put(rest.substr(0, nl + 1));
      indent();
      rest.remove_prefix(nl + 1);
    }
    put(rest);
  }

  template <class T>
  void field(std::string_view k, const T& v) {
    key(k);
    value(v);
  }

  // A capability's name, from a table of quoted names: the same few dozen
  // are written hundreds of thousands of times.
  void cap(int c) {
    if (c >= 0 && c < static_cast<int>(kCapNames)) scalar(quoted_cap_names()[static_cast<size_t>(c)]);
    else value(cap_name(c));
  }

  // A bit set as cap_set_names() lists it (by name), without building the
  // list: a root process holds 41 of them, in every binary.
  void cap_set(uint64_t set) {
    begin_array();
    for (int c : caps_by_name())
      if (set & (uint64_t{1} << c)) cap(c);
    end_array();
  }

 private:
  static constexpr size_t kCapNames = 64;
  static const std::array<int, kCapNames>& caps_by_name() {
    static const std::array<int, kCapNames> order = [] {
      std::array<int, kCapNames> o;
      for (size_t i = 0; i < kCapNames; i++) o[i] = static_cast<int>(i);
      std::array<std::string, kCapNames> names;
      for (size_t i = 0; i < kCapNames; i++) names[i] = cap_name(static_cast<int>(i));
      std::sort(o.begin(), o.end(),
                [&](int a, int b) { return names[static_cast<size_t>(a)] < names[static_cast<size_t>(b)]; });
      return o;
    }();
    return order;
  }
  // As string() writes them (a name this build knows is plain ASCII; one
  // that is not goes through string() once, here).
  static const std::array<std::string, kCapNames>& quoted_cap_names() {
    static const std::array<std::string, kCapNames> names = [] {
      std::array<std::string, kCapNames> n;
      for (size_t i = 0; i < kCapNames; i++) {
        JsonWriter w(n[i]);
        w.value(cap_name(static_cast<int>(i)));
      }
      return n;
    }();
    return names;
  }

  // Room for n more bytes at pos_: out_ grows ahead of what is written, so
  // the many small writes below are a copy, not a call.
  char* room(size_t n) {
    if (pos_ + n > out_.size()) out_.resize(std::max(2 * out_.size(), pos_ + n + 4096));
    return out_.data() + pos_;
  }
  void put(std::string_view s) {
    std::memcpy(room(s.size()), s.data(), s.size());
    pos_ += s.size();
  }
  void put(char c) {
    *room(1) = c;
    pos_++;
  }
  // The newline and indent before an element: ",\n" and spaces, one copy.
  void separator(bool comma) {
    static constexpr size_t kMax = 2 + 2 * 32;
    static constexpr std::array<char, kMax> kSep = [] {
      std::array<char, kMax> t{};
      t[0] = ',';
      t[1] = '\n';
      for (size_t i = 2; i < kMax; i++) t[i] = ' ';
      return t;
    }();
    const size_t spaces = 2 * depth_;
    if (spaces + 2 > kMax) {  // deeper than anything written here: the long way
      put(comma ? std::string_view(",\n") : std::string_view("\n"));
      indent();
      return;
    }
    // Copied whole, a fixed size (a variable one compiles to a slow rep
    // movs here); only what this depth needs is kept.
    const size_t skip = comma ? 0 : 1;
    std::memcpy(room(kMax - 1), kSep.data() + skip, kMax - 1);
    pos_ += 2 - skip + spaces;
  }
  void indent() {
    out_.resize(pos_);
    out_.append(2 * depth_, ' ');
    pos_ = out_.size();
  }

  // Before an array element or an object's key: the separator and indent.
  void element() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0) return;
    separator(!empty_);
    empty_ = false;
  }
  void scalar(std::string_view text) {
    element();
    put(text);
  }
  void open(char c) {
    element();
    put(c);
    depth_++;
    empty_ = true;
  }
  void close(char c) {
    depth_--;
    if (!empty_) separator(false);
    put(c);
    empty_ = false;  // the enclosing container holds this one
  }
  // True when s is all printable ASCII but '"' and '\\', eight bytes at a
  // time: most of the text is paths, origins and reasons like that.
  static bool plain(std::string_view s) {
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
    auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHighs; };
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      // Below 0x20, DEL, not ASCII, '"', '\\'.
      if (((w - kOnes * 0x20) & ~w & kHighs) | (w & kHighs) | has_zero(w ^ (kOnes * 0x7f)) |
          has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\')))
        return false;
    }
    for (; i < s.size(); i++) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    }
    return true;
  }
  // Plain printable ASCII is written as it is; anything else (escapes,
  // UTF-8, invalid bytes to replace) the way nlohmann writes it.
  void string(std::string_view s) {
    if (plain(s)) {
      char* p = room(s.size() + 2);
      p[0] = '"';
      std::memcpy(p + 1, s.data(), s.size());
      p[s.size() + 1] = '"';
      pos_ += s.size() + 2;
      return;
    }
    put(json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace));
  }

  std::string& out_;
  size_t own_pos_ = 0;
  size_t& pos_;  // the end of what was written; out_ may be longer
  bool trim_ = false;
  size_t depth_ = 0;
  bool empty_ = true;       // the innermost open container has no element yet
  bool after_key_ = false;  // a key was written: its value follows on the same line
};

json opt_cap(const std::optional<int>& cap) { return cap ? json(cap_name(*cap)) : json(nullptr); }

// The contract's check object ("checks" of a binary), keys in byte order.
void write_check(JsonWriter& w, const CheckDecision& c) {
  w.begin_object();
  w.key("audit");
  if (c.audit == Audit::Unknown) w.value(nullptr);
  else w.value(c.audit == Audit::Yes);
  w.key("capability");
  w.cap(c.cap);
  // Only where the kernel's counts map was full (docs/schema.md, coarse rows).
  if (c.coarse_count) w.field("coarse", true);
  w.field("count", c.count);
  if (c.coarse_count) {
    w.field("count_coarse", c.coarse_count);
    w.field("detail_lost", kCoarseDetailLost);
  }
  w.field("euids", c.euids);
  w.key("final_verdict");
  if (c.final_verdict == FinalVerdict::Unknown) w.value(nullptr);
  else w.value(c.final_verdict == FinalVerdict::Granted ? "granted" : "denied");
  w.field("first_seen", c.first_seen);
  w.field("last_seen", c.last_seen);
  w.field("only_other_user_ns", c.only_other_user_ns);
  w.field("origins", c.origins);
  w.field("reason", c.reason);
  w.key("replaced_by");
  if (c.replaced_by) w.cap(*c.replaced_by);
  else w.value(nullptr);
  w.field("required", c.required);
  w.field("uids", c.uids);
  w.field("verdict", c.granted ? "granted" : "denied");
  w.field("verified", verification_name(c.verified));
  w.end_object();
}

void write_caps(JsonWriter& w, const std::vector<int>& caps) {
  w.begin_array();
  for (int c : caps) w.cap(c);
  w.end_array();
}

// One element of "binaries", keys in byte order.
void write_binary(JsonWriter& w, const BinaryDecision& b) {
  w.begin_object();
  w.key("capabilities");
  write_caps(w, b.capabilities);
  w.key("checks");
  w.begin_array();
  for (const CheckDecision& c : b.checks) write_check(w, c);
  w.end_array();
  if (b.row && b.path.empty() && !b.row->key.comm.empty()) w.field("comm", b.row->key.comm);
  w.field("display_name", b.display_name);
  w.field("file_caps", b.file_caps);
  auto [first, last] = seen_span(b);
  w.field("first_seen", first);
  w.key("held");
  w.cap_set(b.held_effective);
  w.field("last_seen", last);
  w.field("path", b.path);
  w.field("profiled", b.profiled);
  w.field("seen_non_root_euid", b.seen_non_root_euid);
  w.field("self_inspections", b.self_inspections);
  const std::string setcap = setcap_text(b.capabilities);
  w.key("setcap");
  if (setcap.empty()) w.value(nullptr);
  else w.value(setcap);
  w.field("setuid", b.setuid_root);
  w.key("sha256");
  if (b.row) w.value(b.row->sha256);
  else w.value(nullptr);
  w.field("source", b.verified_set() ? "verified" : "observed");
  w.key("verification");
  if (b.verification) w.value(json(*b.verification));
  else w.value(nullptr);
  w.field("warnings", b.warnings);
  w.end_object();
}

// The stored object was written by to_json below, or by an older capaudit,
// or damaged: names must be capabilities this build knows.
std::optional<int> cap_of(const json& name, std::string* err) {
  std::optional<int> c = name.is_string() ? cap_from_name(name.get<std::string>()) : std::nullopt;
  if (!c) *err = "unknown capability " + name.dump();
  return c;
}

Verification verification_from_name(const std::string& name) {
  return name == "needed"    ? Verification::ConfirmedNeeded
         : name == "dropped" ? Verification::DroppedByRun
                             : Verification::Unverified;
}

bool verdict_from_json(const json& e, CapabilityVerdict* cv, std::string* err, std::string_view what) {
  if (!e.is_object()) {
    *err = std::string(what) + " is malformed";
    return false;
  }
  auto c = cap_of(e.value("capability", json()), err);
  if (!c) return false;
  cv->cap = *c;
  cv->verified = verification_from_name(e.value("verified", "unverified"));
  cv->runs = e.value("runs", 0);
  cv->reason = e.value("reason", "");
  if (e.contains("replaced_by") && !e["replaced_by"].is_null()) {
    auto n = cap_of(e["replaced_by"], err);
    if (!n) return false;
    cv->replaced_by = *n;
  }
  return true;
}

[[noreturn]] void throw_malformed(const json& j, const std::string& err) {
  throw json::other_error::create(501, err, &j);
}

}  // namespace

std::string verification_name(Verification v) {
  switch (v) {
    case Verification::ConfirmedNeeded: return "needed";
    case Verification::DroppedByRun: return "dropped";
    case Verification::Unverified: break;
  }
  return "unverified";
}

void to_json(json& j, const CapabilityVerdict& cv) {
  j = {{"capability", cap_name(cv.cap)},
       {"verified", verification_name(cv.verified)},
       {"runs", cv.runs},
       {"reason", cv.reason},
       {"replaced_by", opt_cap(cv.replaced_by)}};
}

void from_json(const json& j, CapabilityVerdict& cv) {
  std::string err;
  CapabilityVerdict out;
  if (!verdict_from_json(j, &out, &err, "capability verdict")) throw_malformed(j, err);
  cv = std::move(out);
}

void to_json(json& j, const VerificationInfo& v) {
  j = {{"runs", v.runs},
       {"baseline_ok", v.baseline_ok},
       {"compare_output", v.compare_output},
       {"created", v.created},
       {"observed", cap_names(v.observed)},
       {"capabilities", v.capabilities},
       {"note", v.note.empty() ? json(nullptr) : json(v.note)}};
}

bool verification_from_json(const json& j, VerificationInfo* out, std::string* err, std::string_view what) {
  if (!j.is_object() || !j.contains("observed") || !j.contains("capabilities") || !j["observed"].is_array() ||
      !j["capabilities"].is_array()) {
    *err = std::string(what) + " is malformed";
    return false;
  }
  VerificationInfo v;
  v.runs = j.value("runs", 0);
  v.baseline_ok = j.value("baseline_ok", false);
  v.compare_output = j.value("compare_output", false);
  v.created = j.value("created", int64_t{0});
  if (j.contains("note") && j["note"].is_string()) v.note = j["note"].get<std::string>();
  for (const auto& n : j["observed"]) {
    auto c = cap_of(n, err);
    if (!c) return false;
    v.observed.push_back(*c);
  }
  for (const auto& e : j["capabilities"]) {
    CapabilityVerdict cv;
    if (!verdict_from_json(e, &cv, err, what)) return false;
    v.capabilities.push_back(std::move(cv));
  }
  *out = std::move(v);
  return true;
}

void from_json(const json& j, VerificationInfo& v) {
  std::string err;
  if (!verification_from_json(j, &v, &err)) throw_malformed(j, err);
}

json verification_to_json(const VerificationInfo& v) { return json(v); }

json binary_to_json(const BinaryDecision& b) {
  std::string text;
  {
    JsonWriter w(text);
    write_binary(w, b);
  }
  return json::parse(text);
}

json to_json(const Analysis& a) {
  std::ostringstream text;
  write_json(text, a);
  return json::parse(text.str());
}

JsonStream::JsonStream(std::ostream& out) : out_(out) {}

void JsonStream::add(const BinaryDecision& b) {
  if (count_ == 0) {
    text_.resize(used_);
    text_.append("{\n  \"binaries\": [");
    used_ = text_.size();
  }
  {
    JsonWriter w(text_, used_, 2, count_ == 0);
    write_binary(w, b);
  }
  count_++;
  if (used_ >= kFlushAt) {
    out_.write(text_.data(), static_cast<std::streamsize>(used_));
    used_ = 0;
  }
}

void JsonStream::finish() {
  text_.resize(used_);
  text_.append(count_ == 0 ? "{\n  \"binaries\": []\n}\n" : "\n  ]\n}\n");
  out_.write(text_.data(), static_cast<std::streamsize>(text_.size()));
  text_.clear();
  text_.shrink_to_fit();
  used_ = 0;
  count_ = 0;
}

void write_json(std::ostream& out, const Analysis& a) {
  JsonStream s(out);
  for (const BinaryDecision& b : a.binaries) s.add(b);
  s.finish();
}

}  // namespace capaudit

// capaudit: reports, recommendations, profiling and live tracing of
// capability checks. Exit status: 0 ok, 1 runtime error, 2 usage error.
#include "commands.h"

#include <getopt.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace {

using namespace capaudit;

constexpr const char* kUsage =
    "usage: capaudit report    [--db PATH] [--binary PATH] [--json]\n"
    "       capaudit recommend [--db PATH] [--binary PATH] [--format table|json|script] [--output FILE]\n"
    "       capaudit profile   [--user USER] [--output FILE] [--json] [--db PATH]\n"
    "                          [--minimize [--compare-output] [--max-runs N]] -- COMMAND [ARG...]\n"
    "       capaudit trace     [--json] [-K] [-U] [-v] [-p PID]\n"
    "       capaudit files     [--json] [--db PATH] [DIR...]\n"
    "See capaudit(8).\n";

int usage_error(const std::string& msg) {
  std::cerr << "capaudit: " << msg << "\n" << kUsage;
  return 2;
}

// Long options shared by the subcommands; each accepts its own subset.
enum Opt { kDb = 256, kBinary, kJson, kFormat, kUser, kOutput, kHelp };
// profile --minimize (docs/minimize.md).
enum ProfileOpt { kMinimize = 512, kCompareOutput, kMaxRuns };

struct Parsed {
  std::vector<std::pair<int, std::string>> opts;
  std::vector<std::string> rest;
  std::string error;
};

Parsed parse(int argc, char** argv, const char* shortopts, const std::vector<option>& allowed) {
  Parsed p;
  std::vector<option> longopts = allowed;
  longopts.push_back({"help", no_argument, nullptr, kHelp});
  longopts.push_back({nullptr, 0, nullptr, 0});
  optind = 1;
  opterr = 0;
  int c;
  // '+': stop at the first non-option, so profile's COMMAND keeps its flags.
  std::string so = std::string("+") + shortopts;
  while ((c = getopt_long(argc, argv, so.c_str(), longopts.data(), nullptr)) != -1) {
    if (c == '?' || c == ':') {
      p.error = optopt ? std::string("unknown or incomplete option '-") + static_cast<char>(optopt) + "'"
                       : std::string("unknown or incomplete option '") + argv[optind - 1] + "'";
      return p;
    }
    p.opts.emplace_back(c, optarg ? optarg : "");
  }
  for (int i = optind; i < argc; i++) p.rest.emplace_back(argv[i]);
  return p;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage_error("missing command");
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version") {
    std::cout << "capaudit " CAPAUDIT_VERSION "\n";
    return 0;
  }
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  const option db{"db", required_argument, nullptr, kDb};
  const option binary{"binary", required_argument, nullptr, kBinary};
  const option json{"json", no_argument, nullptr, kJson};

  if (cmd == "report") {
    Parsed p = parse(sub_argc, sub_argv, "", {db, binary, json});
    if (!p.error.empty()) return usage_error(p.error);
    if (!p.rest.empty()) return usage_error("report: unexpected argument '" + p.rest[0] + "'");
    ReportArgs a;
    for (auto& [o, v] : p.opts) {
      if (o == kHelp) return std::cout << kUsage, 0;
      if (o == kDb) a.db = v;
      if (o == kBinary) a.binary = v;
      if (o == kJson) a.json = true;
    }
    return cmd_report(a);
  }
  if (cmd == "recommend") {
    Parsed p = parse(sub_argc, sub_argv, "",
                     {db, binary, {"format", required_argument, nullptr, kFormat},
                      {"output", required_argument, nullptr, kOutput}});
    if (!p.error.empty()) return usage_error(p.error);
    if (!p.rest.empty()) return usage_error("recommend: unexpected argument '" + p.rest[0] + "'");
    RecommendArgs a;
    for (auto& [o, v] : p.opts) {
      if (o == kHelp) return std::cout << kUsage, 0;
      if (o == kDb) a.db = v;
      if (o == kBinary) a.binary = v;
      if (o == kOutput) a.output = v;
      if (o == kFormat) {
        if (v == "table") a.format = RecommendFormat::Table;
        else if (v == "json") a.format = RecommendFormat::Json;
        else if (v == "script") a.format = RecommendFormat::Script;
        else return usage_error("recommend: --format must be table, json or script, not '" + v + "'");
      }
    }
    return cmd_recommend(a);
  }
  if (cmd == "profile") {
    Parsed p = parse(sub_argc, sub_argv, "",
                     {db, json, {"user", required_argument, nullptr, kUser},
                      {"output", required_argument, nullptr, kOutput},
                      {"minimize", no_argument, nullptr, kMinimize},
                      {"compare-output", no_argument, nullptr, kCompareOutput},
                      {"max-runs", required_argument, nullptr, kMaxRuns}});
    if (!p.error.empty()) return usage_error(p.error);
    ProfileArgs a;
    bool max_runs_given = false;
    for (auto& [o, v] : p.opts) {
      if (o == kHelp) return std::cout << kUsage, 0;
      if (o == kDb) a.db = v;
      if (o == kJson) a.json = true;
      if (o == kUser) a.user = v;
      if (o == kOutput) a.output = v;
      if (o == kMinimize) a.minimize = true;
      if (o == kCompareOutput) a.compare_output = true;
      if (o == kMaxRuns) {
        char* end = nullptr;
        errno = 0;
        long n = strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || errno || n < 1 || n > 100000)
          return usage_error("profile: --max-runs needs a number of runs from 1 to 100000, not '" + v + "'");
        a.max_runs = static_cast<int>(n);
        max_runs_given = true;
      }
    }
    a.command = p.rest;
    if (a.command.empty()) return usage_error("profile: missing COMMAND (capaudit profile [options] -- COMMAND)");
    // Re-runs as root would hold every capability whatever the set says.
    if (a.minimize && !a.user)
      return usage_error("profile: --minimize needs --user USER: the verifying runs hold each candidate set as "
                         "that user's ambient capabilities, and root would hold them all anyway");
    if (!a.minimize && (a.compare_output || max_runs_given))
      return usage_error(std::string("profile: ") + (a.compare_output ? "--compare-output" : "--max-runs") +
                         " only applies with --minimize");
    return cmd_profile(a);
  }
  if (cmd == "trace") {
    Parsed p = parse(sub_argc, sub_argv, "KUvp:", {json});
    if (!p.error.empty()) return usage_error(p.error);
    if (!p.rest.empty()) return usage_error("trace: unexpected argument '" + p.rest[0] + "'");
    TraceArgs a;
    for (auto& [o, v] : p.opts) {
      if (o == kHelp) return std::cout << kUsage, 0;
      if (o == kJson) a.json = true;
      if (o == 'K') a.kernel_stacks = true;
      if (o == 'U') a.user_stacks = true;
      if (o == 'v') a.verbose = true;
      if (o == 'p') {
        char* end = nullptr;
        long pid = strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || pid <= 0) return usage_error("trace: -p needs a process id, not '" + v + "'");
        a.pid = static_cast<uint32_t>(pid);
      }
    }
    return cmd_trace(a);
  }
  if (cmd == "files") {
    Parsed p = parse(sub_argc, sub_argv, "", {db, json});
    if (!p.error.empty()) return usage_error(p.error);
    FilesArgs a;
    for (auto& [o, v] : p.opts) {
      if (o == kHelp) return std::cout << kUsage, 0;
      if (o == kDb) a.db = v;
      if (o == kJson) a.json = true;
    }
    a.dirs = p.rest;
    return cmd_files(a);
  }
  return usage_error("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("capaudit"));
  spdlog::set_level(spdlog::level::warn);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "capaudit: " << e.what() << "\n";
    return 1;
  }
}

// The capaudit command line. Every option is declared once, with its help
// text and its checks; the help output is generated from these declarations
// and docs/capaudit.8 is held to them by tests/unit/cli_test.cpp.
//
// A new sub-command: its Args struct in commands.h and in CliResult, one
// member function here that declares it (called from the constructor), and
// one overload in main.cpp. Nested ones ("fleet load") declare a group with
// add_subcommand and pass it to command() as the parent.
#include "cli.h"

#include "display.h"
#include "fleet.h"  // valid_host_id, valid_sha256
#include "text.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>

namespace capaudit {
namespace {

constexpr int kUsageError = 2;
constexpr int kMaxRunsLimit = 100000;  // profile --max-runs

// --format, in the order the help lists them.
constexpr std::pair<const char*, RecommendFormat> kRecommendFormats[] = {
    {"table", RecommendFormat::Table},
    {"json", RecommendFormat::Json},
    {"script", RecommendFormat::Script},
    {"systemd", RecommendFormat::Systemd},
    {"docker", RecommendFormat::Docker},
    {"kubernetes", RecommendFormat::Kubernetes},
};

constexpr std::pair<const char*, GroupBy> kGroupings[] = {
    {"binary", GroupBy::Binary},
    {"unit", GroupBy::Unit},
    {"container", GroupBy::Container},
};

class Cli {
 public:
  Cli();
  CliResult parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err);
  std::vector<std::pair<std::string, std::vector<std::string>>> options() const;

 private:
  // A declared sub-command: its App, and the Args its options were parsed into.
  struct Command {
    CLI::App* app;
    std::string path;  // "report", "fleet load"
    std::function<CliResult()> args;
  };
  // opt->needs(needed), with the house wording: CLI11's "X requires Y" does not say why.
  struct Need {
    const CLI::Option* option;
    const CLI::Option* needed;
    std::string message;
  };

  template <class Args>
  std::pair<CLI::App*, Args*> command(CLI::App& parent, const std::string& name, const std::string& about);
  void needs(CLI::Option* option, CLI::Option* needed, std::string message);
  int usage_error(const CLI::ParseError& e, std::ostream& err) const;
  std::vector<const CLI::App*> selected() const;

  void report();
  void recommend();
  void profile();
  void trace();
  void ps();
  void files();
  void export_();
  void fleet();
  void help();

  CLI::App app_{"Least-privilege profiler for Linux capabilities.", "capaudit"};
  std::vector<Command> commands_;
  std::vector<Need> needs_;
  std::vector<std::string> help_topic_;
  CLI::App* help_ = nullptr;
};

// Always in quotes, as the old messages had them; quote_for_display adds
// them only where needed.
std::string quoted(const std::string& s) {
  std::string q = quote_for_display(s);
  return q == s ? "'" + s + "'" : q;
}

// Options several sub-commands share, worded once.
CLI::Option* db_option(CLI::App& c, std::string& db) {
  return c.add_option("--db", db, "The database capauditd writes")->type_name("PATH")->capture_default_str();
}

CLI::Option* binary_option(CLI::App& c, std::optional<std::string>& binary) {
  return c.add_option_function<std::string>(
              "--binary", [&binary](const std::string& v) { binary = v; }, "Only the binary at PATH")
      ->type_name("PATH");
}

CLI::Option* optional_string(CLI::App& c, const std::string& name, std::optional<std::string>& dst,
                             const std::string& help, const std::string& type) {
  return c.add_option_function<std::string>(name, [&dst](const std::string& v) { dst = v; }, help)
      ->type_name(type);
}

// --unit and --container: the checks of one unit or container (issue 12).
void group_filters(CLI::App& c, std::optional<std::string>& unit, std::optional<std::string>& container) {
  CLI::Option* u = optional_string(c, "--unit", unit, "Only the checks made in the systemd unit UNIT", "UNIT");
  CLI::Option* k = optional_string(c, "--container", container,
                                   "Only the checks made in the container (full id, a prefix of 4 or more digits, "
                                   "or its name)",
                                   "ID|NAME");
  u->excludes(k);
}

Cli::Cli() {
  app_.footer("Exit status: 0 success, 1 runtime error, 2 usage error. See capaudit(8).");
  app_.set_version_flag("--version", "capaudit " CAPAUDIT_VERSION);
  app_.require_subcommand(1);
  // The last of an option given twice wins, as with getopt (an alias with
  // --db in it, then --db again); sub-commands copy this from app_.
  app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  report();
  recommend();
  profile();
  trace();
  ps();
  files();
  export_();
  fleet();
  help();
}

template <class Args>
std::pair<CLI::App*, Args*> Cli::command(CLI::App& parent, const std::string& name, const std::string& about) {
  auto args = std::make_shared<Args>();
  CLI::App* c = parent.add_subcommand(name, about);
  std::string path = &parent == &app_ ? name : parent.get_name() + " " + name;
  commands_.push_back({c, std::move(path), [args] { return CliResult{*args}; }});
  return {c, args.get()};
}

void Cli::needs(CLI::Option* option, CLI::Option* needed, std::string message) {
  option->needs(needed);
  needs_.push_back({option, needed, std::move(message)});
}

void Cli::report() {
  auto [c, a] = command<ReportArgs>(app_, "report", "What the daemon observed, per binary");
  db_option(*c, a->db);
  binary_option(*c, a->binary);
  c->add_flag("--json", a->json, "JSON instead of a table");
  group_filters(*c, a->unit, a->container);
}

void Cli::recommend() {
  auto [c, a] = command<RecommendArgs>(app_, "recommend", "The minimal capability set per binary, with reasons");
  db_option(*c, a->db);
  binary_option(*c, a->binary);
  std::vector<std::string> names;
  for (const auto& [name, format] : kRecommendFormats) names.emplace_back(name);
  c->add_option_function<std::string>(
       "--format",
       [a = a](const std::string& v) {
         for (const auto& [name, format] : kRecommendFormats)
           if (v == name) a->format = format;
       },
       "table, json, script (the setcap script for root, which only narrows privilege), systemd (drop-ins, per "
       "unit), docker or kubernetes (run flags or securityContext, per container)")
      ->check(CLI::IsMember(names))
      ->type_name("FORMAT")
      ->default_str("table");
  optional_string(*c, "--output", a->output, "Write to FILE (atomically, mode 0600) instead of standard output",
                  "FILE");
  std::vector<std::string> bys;
  for (const auto& [name, by] : kGroupings) bys.emplace_back(name);
  c->add_option_function<std::string>(
       "--by",
       [a = a](const std::string& v) {
         for (const auto& [name, by] : kGroupings)
           if (v == name) a->by = by;
       },
       "binary, unit or container: one recommendation per binary, per systemd unit, or per container")
      ->check(CLI::IsMember(bys))
      ->type_name("WHAT")
      ->default_str("binary");
  group_filters(*c, a->unit, a->container);
}

void Cli::profile() {
  auto [c, a] = command<ProfileArgs>(app_, "profile", "Run COMMAND, trace its process tree, report what it needed");
  CLI::Option* user = optional_string(
      *c, "--user", a->user, "Run COMMAND as USER holding the bounding set as ambient capabilities", "USER");
  optional_string(*c, "--output", a->output, "Write the report to FILE instead of standard error", "FILE");
  c->add_flag("--json", a->json, "JSON instead of a table");
  optional_string(*c, "--db", a->db, "Also store the run's checks in this database, marked as profiled", "PATH");
  CLI::Option* minimize =
      c->add_flag("--minimize", a->minimize, "Re-run COMMAND as USER to verify the set (docs/minimize.md)");
  CLI::Option* compare = c->add_flag("--compare-output", a->compare_output,
                                     "With --minimize: a run must also print what the first run printed");
  CLI::Option* max_runs =
      c->add_option("--max-runs", a->max_runs,
                    "With --minimize: at most N runs (1 to " + std::to_string(kMaxRunsLimit) + "), the first included")
          ->check(CLI::Range(1, kMaxRunsLimit).description(""))
          ->type_name("N")
          ->capture_default_str();
  // Root regains every capability at exec, whatever set the verifying runs hold.
  needs(minimize, user,
        "--minimize needs --user USER: the verifying runs hold the candidate set as that user's ambient "
        "capabilities, and root would hold them all anyway");
  needs(compare, minimize, "--compare-output only applies with --minimize");
  needs(max_runs, minimize, "--max-runs only applies with --minimize");
  c->add_option("COMMAND", a->command, "The command and its arguments; after --, its options are its own")
      ->required()
      ->type_name("");
  // As getopt's "+" did: COMMAND's own options (profile -- ls -la) are COMMAND's.
  c->positionals_at_end();
}

void Cli::trace() {
  auto [c, a] = command<TraceArgs>(app_, "trace", "A live line per capability check");
  c->add_flag("--json", a->json, "One JSON object per line");
  c->add_flag("-K", a->kernel_stacks, "Kernel stacks");
  c->add_flag("-U", a->user_stacks, "User stacks");
  c->add_flag("-v", a->verbose, "Include non-audit checks");
  c->add_option("-p", a->pid, "Only the process PID")
      ->check(CLI::Range(uint32_t{1}, uint32_t{std::numeric_limits<int32_t>::max()}).description(""))
      ->type_name("PID");
}

void Cli::ps() {
  auto [c, a] = command<PsArgs>(app_, "ps", "Each running process's capabilities, and what was seen used");
  db_option(*c, a->db)->description("What the database capauditd writes saw used (optional)");
  c->add_flag("--json", a->json, "One JSON object per process, in an array");
  c->add_option("-p", a->pid, "Only the process PID")
      ->check(CLI::Range(uint32_t{1}, uint32_t{std::numeric_limits<int32_t>::max()}).description(""))
      ->type_name("PID");
}

void Cli::files() {
  auto [c, a] = command<FilesArgs>(app_, "files", "Setuid/setgid-root binaries and files with capabilities");
  c->add_flag("--json", a->json, "JSON instead of a table");
  db_option(*c, a->db)->description("What the database capauditd writes saw each file use");
  c->add_option("DIR", a->dirs, "Directories to search (default: those of PATH)")->type_name("");
}

void Cli::export_() {
  auto [c, a] = command<ExportArgs>(app_, "export", "This host's checks and decisions as NDJSON, for the fleet");
  db_option(*c, a->db);
  optional_string(*c, "--host-id", a->host_id, "This host's id in the fleet (default: /etc/machine-id)", "ID")
      ->check(CLI::Validator(
          [](std::string& v) {
            return valid_host_id(v) ? std::string() : "must be 1 to 255 printable characters, no spaces";
          },
          ""));
  optional_string(*c, "--output", a->output, "Write to FILE (atomically, mode 0600) instead of standard output",
                  "FILE");
}

// "fleet load|recommend|outliers": the fleet's PostgreSQL, reached by --postgres.
void Cli::fleet() {
  CLI::App* fleet = app_.add_subcommand("fleet", "The fleet's view on PostgreSQL: load exports, ask across hosts");
  fleet->require_subcommand(1);
  auto postgres = [](CLI::App& c, std::string& dst) {
    c.add_option("--postgres", dst, "libpq connection string or URI (a password in it is never printed)")
        ->required()
        ->type_name("CONNINFO");
  };
  {
    auto [c, a] = command<FleetLoadArgs>(*fleet, "load", "Load exports (standard input when no FILE)");
    postgres(*c, a->postgres);
    c->add_option("FILE", a->files, "Export files, each loaded in one transaction")->type_name("");
  }
  {
    auto [c, a] = command<FleetRecommendArgs>(*fleet, "recommend", "Per binary version, what hosts found required");
    postgres(*c, a->postgres);
    binary_option(*c, a->binary);
    optional_string(*c, "--sha256", a->sha256, "Only the binary version with this SHA-256", "HEX")
        ->check(CLI::Validator(
            [](std::string& v) { return valid_sha256(v) ? std::string() : "must be 64 lower-case hex digits"; }, ""));
    c->add_flag("--json", a->json, "JSON instead of a table");
  }
  {
    auto [c, a] = command<FleetOutliersArgs>(*fleet, "outliers",
                                             "Capabilities required on fewer than half the hosts of a version");
    postgres(*c, a->postgres);
    c->add_flag("--json", a->json, "JSON instead of a table");
  }
}

// "capaudit help [COMMAND]", as "capaudit [COMMAND] --help"; not listed.
void Cli::help() {
  help_ = app_.add_subcommand("help", "")->group("");
  help_->add_option("COMMAND", help_topic_);
}

// The sub-commands given, outermost first, the root included.
std::vector<const CLI::App*> Cli::selected() const {
  std::vector<const CLI::App*> apps{&app_};
  while (!apps.back()->get_subcommands().empty()) apps.push_back(apps.back()->get_subcommands().front());
  return apps;
}

int Cli::usage_error(const CLI::ParseError& e, std::ostream& err) const {
  std::vector<const CLI::App*> apps = selected();
  std::string message = e.what();
  if (dynamic_cast<const CLI::RequiresError*>(&e)) {
    for (const Need& n : needs_)
      if (n.option->count() > 0 && n.needed->count() == 0) {
        message = n.message;
        break;
      }
  }
  // CLI11 counts the "--" that ends the options among the extras, and says
  // "A subcommand is required" for a misspelt one: name what was wrong, and
  // where (capaudit --json report: --json is capaudit's, not report's).
  std::vector<std::string> extras;
  size_t owner = apps.size() - 1;
  for (size_t i = 0; i < apps.size(); i++) {
    std::vector<std::string> left = apps[i]->remaining();
    std::erase(left, "--");
    if (extras.empty() && !left.empty()) owner = i;
    for (const std::string& x : left) extras.push_back(quoted(x));
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) && !extras.empty()) {
    message = std::string(extras.size() == 1 ? "unexpected argument " : "unexpected arguments ") + join(extras, " ");
  } else {
    owner = apps.size() - 1;
    if (dynamic_cast<const CLI::RequiredError*>(&e) && apps.size() == 1)
      message = extras.empty() ? "missing command" : "unknown command " + extras.front();
  }
  std::string where = "capaudit";
  for (size_t i = 1; i <= owner; i++) where += " " + apps[i]->get_name();
  err << where << ": " << escape_for_display(message) << "\nRun '" << where << " --help' for usage.\n";
  return kUsageError;
}

CliResult Cli::parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0 after printing to out.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app_.exit(e, out, err);
    return usage_error(e, err);
  }
  if (help_->parsed()) {
    std::vector<const char*> again{argv[0]};
    const CLI::App* topic = &app_;
    for (const std::string& name : help_topic_) {
      auto found = topic->get_subcommands([&](const CLI::App* s) { return s->get_name() == name && s != help_; });
      if (found.empty()) {
        err << "capaudit help: unknown command " << quoted(name) << "\nRun 'capaudit --help' for usage.\n";
        return kUsageError;
      }
      topic = found.front();
      again.push_back(name.c_str());
    }
    again.push_back("--help");
    return Cli().parse(static_cast<int>(again.size()), again.data(), out, err);
  }
  for (const Command& c : commands_)
    if (c.app->parsed()) return c.args();
  // require_subcommand(1) makes this unreachable; a usage error all the same.
  err << "capaudit: missing command\nRun 'capaudit --help' for usage.\n";
  return kUsageError;
}

std::vector<std::pair<std::string, std::vector<std::string>>> Cli::options() const {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const Command& c : commands_) {
    std::vector<std::string> names;
    for (const CLI::Option* o : c.app->get_options()) {
      if (o->get_positional() || o == c.app->get_help_ptr()) continue;
      for (const std::string& s : o->get_snames()) names.push_back("-" + s);
      for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
    }
    out.emplace_back(c.path, std::move(names));
  }
  return out;
}

}  // namespace

CliResult parse_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  return Cli().parse(argc, argv, out, err);
}

std::vector<std::pair<std::string, std::vector<std::string>>> cli_options() { return Cli().options(); }

}  // namespace capaudit

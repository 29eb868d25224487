// The capaudit command line: what each sub-command's options parse into, the
// usage errors (exit status 2, naming the option or value) and the man page
// kept in step with the parser.
#include "cli.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace capaudit {
namespace {

struct Parsed {
  CliResult result;
  std::string out;
  std::string err;
  int exit_status() const { return std::holds_alternative<int>(result) ? std::get<int>(result) : -1; }
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "capaudit");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  CliResult r = parse_cli(static_cast<int>(argv.size()), argv.data(), out, err);
  return {std::move(r), out.str(), err.str()};
}

template <class Args>
Args args_of(const Parsed& p) {
  EXPECT_TRUE(std::holds_alternative<Args>(p.result)) << p.err;
  return std::holds_alternative<Args>(p.result) ? std::get<Args>(p.result) : Args{};
}

// A usage error: status 2, nothing on standard output, every part named on standard error.
void expect_usage_error(const Parsed& p, std::initializer_list<const char*> named) {
  EXPECT_EQ(p.exit_status(), 2) << p.err;
  EXPECT_EQ(p.out, "");
  for (const char* n : named) EXPECT_NE(p.err.find(n), std::string::npos) << "no '" << n << "' in: " << p.err;
}

TEST(Cli, ReportDefaultsAndOptions) {
  ReportArgs a = args_of<ReportArgs>(parse({"report"}));
  EXPECT_EQ(a.db, kDefaultDb);
  EXPECT_FALSE(a.binary);
  EXPECT_FALSE(a.json);
  a = args_of<ReportArgs>(parse({"report", "--db=/tmp/x.db", "--binary", "/usr/bin/ping", "--json"}));
  EXPECT_EQ(a.db, "/tmp/x.db");
  EXPECT_EQ(a.binary, "/usr/bin/ping");
  EXPECT_TRUE(a.json);
}

TEST(Cli, RecommendFormats) {
  EXPECT_EQ(args_of<RecommendArgs>(parse({"recommend"})).format, RecommendFormat::Table);
  EXPECT_EQ(args_of<RecommendArgs>(parse({"recommend", "--format", "table"})).format, RecommendFormat::Table);
  EXPECT_EQ(args_of<RecommendArgs>(parse({"recommend", "--format", "json"})).format, RecommendFormat::Json);
  RecommendArgs a = args_of<RecommendArgs>(parse({"recommend", "--format", "script", "--output", "/tmp/s.sh"}));
  EXPECT_EQ(a.format, RecommendFormat::Script);
  EXPECT_EQ(a.output, "/tmp/s.sh");
  expect_usage_error(parse({"recommend", "--format", "bogus"}), {"--format", "bogus", "table"});
  expect_usage_error(parse({"recommend", "--format"}), {"--format"});
}

TEST(Cli, ProfileCommandKeepsItsOwnOptions) {
  ProfileArgs a = args_of<ProfileArgs>(parse({"profile", "--", "ls", "-la", "/"}));
  EXPECT_EQ(a.command, (std::vector<std::string>{"ls", "-la", "/"}));
  // Options after -- are COMMAND's, even capaudit's own names.
  a = args_of<ProfileArgs>(parse({"profile", "--json", "--", "prog", "--json", "--", "--user", "x"}));
  EXPECT_TRUE(a.json);
  EXPECT_FALSE(a.user);
  EXPECT_EQ(a.command, (std::vector<std::string>{"prog", "--json", "--", "--user", "x"}));
  // Without --, COMMAND starts at the first argument that is not an option, as with getopt's "+".
  a = args_of<ProfileArgs>(parse({"profile", "--user", "nobody", "ls", "-la", "report"}));
  EXPECT_EQ(a.user, "nobody");
  EXPECT_EQ(a.command, (std::vector<std::string>{"ls", "-la", "report"}));
  expect_usage_error(parse({"profile"}), {"COMMAND"});
  expect_usage_error(parse({"profile", "--"}), {"COMMAND"});
  expect_usage_error(parse({"profile", "--bogus", "--", "true"}), {"'--bogus'"});
}

TEST(Cli, ProfileOptions) {
  ProfileArgs a = args_of<ProfileArgs>(parse({"profile", "--", "true"}));
  EXPECT_FALSE(a.user || a.output || a.db || a.json || a.minimize || a.compare_output);
  EXPECT_EQ(a.max_runs, 32);
  a = args_of<ProfileArgs>(parse({"profile", "--user", "nobody", "--output", "/tmp/o", "--json", "--db", "/tmp/d",
                                  "--minimize", "--compare-output", "--max-runs", "100000", "--", "true"}));
  EXPECT_EQ(a.user, "nobody");
  EXPECT_EQ(a.output, "/tmp/o");
  EXPECT_EQ(a.db, "/tmp/d");
  EXPECT_TRUE(a.json && a.minimize && a.compare_output);
  EXPECT_EQ(a.max_runs, 100000);
  EXPECT_EQ(args_of<ProfileArgs>(parse({"profile", "--user", "u", "--minimize", "--max-runs", "1", "--", "t"})).max_runs,
            1);
}

TEST(Cli, ProfileMinimizeRequirements) {
  expect_usage_error(parse({"profile", "--minimize", "--", "true"}), {"capaudit profile: --minimize needs --user"});
  expect_usage_error(parse({"profile", "--user", "nobody", "--compare-output", "--", "true"}),
                     {"--compare-output only applies with --minimize"});
  expect_usage_error(parse({"profile", "--user", "nobody", "--max-runs", "3", "--", "true"}),
                     {"--max-runs only applies with --minimize"});
  for (const char* bad : {"0", "100001", "-1", "abc", "1.5", ""})
    expect_usage_error(parse({"profile", "--max-runs", bad, "--user", "nobody", "--minimize", "--", "true"}),
                       {"--max-runs", "1 to 100000"});
}

TEST(Cli, TraceShortOptions) {
  TraceArgs a = args_of<TraceArgs>(parse({"trace"}));
  EXPECT_FALSE(a.json || a.kernel_stacks || a.user_stacks || a.verbose);
  EXPECT_EQ(a.pid, 0u);
  a = args_of<TraceArgs>(parse({"trace", "-KUv", "-p", "123", "--json"}));
  EXPECT_TRUE(a.json && a.kernel_stacks && a.user_stacks && a.verbose);
  EXPECT_EQ(a.pid, 123u);
  EXPECT_EQ(args_of<TraceArgs>(parse({"trace", "-p42"})).pid, 42u);
  EXPECT_TRUE(args_of<TraceArgs>(parse({"trace", "-v", "-v"})).verbose);
  for (const char* bad : {"0", "-5", "x", "2147483648"}) expect_usage_error(parse({"trace", "-p", bad}), {"-p", bad});
  expect_usage_error(parse({"trace", "-x"}), {"'-x'"});
  expect_usage_error(parse({"trace", "extra"}), {"'extra'"});
}

TEST(Cli, FilesDirectories) {
  FilesArgs a = args_of<FilesArgs>(parse({"files"}));
  EXPECT_TRUE(a.dirs.empty());
  EXPECT_EQ(a.db, kDefaultDb);
  a = args_of<FilesArgs>(parse({"files", "--json", "/usr/bin", "/sbin", "--db", "/tmp/d"}));
  EXPECT_TRUE(a.json);
  EXPECT_EQ(a.db, "/tmp/d");
  EXPECT_EQ(a.dirs, (std::vector<std::string>{"/usr/bin", "/sbin"}));
}

TEST(Cli, HelpAndVersionExitZero) {
  Parsed p = parse({"--help"});
  EXPECT_EQ(p.exit_status(), 0);
  EXPECT_EQ(p.err, "");
  for (const char* c : {"report", "recommend", "profile", "trace", "files"}) EXPECT_NE(p.out.find(c), std::string::npos);
  EXPECT_EQ(parse({"-h"}).out, p.out);
  EXPECT_EQ(parse({"help"}).out, p.out);

  p = parse({"report", "--help"});
  EXPECT_EQ(p.exit_status(), 0);
  EXPECT_NE(p.out.find("Usage: capaudit report"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("--binary"), std::string::npos) << p.out;
  EXPECT_EQ(parse({"help", "report"}).out, p.out);
  // Without the COMMAND profile requires.
  EXPECT_EQ(parse({"profile", "--help"}).exit_status(), 0);

  p = parse({"--version"});
  EXPECT_EQ(p.exit_status(), 0);
  EXPECT_EQ(p.out, "capaudit " CAPAUDIT_VERSION "\n");
}

TEST(Cli, CommandErrors) {
  expect_usage_error(parse({}), {"missing command"});
  expect_usage_error(parse({"bogus"}), {"unknown command 'bogus'"});
  expect_usage_error(parse({"help", "bogus"}), {"unknown command 'bogus'"});
  expect_usage_error(parse({"--json", "report"}), {"capaudit: unexpected argument '--json'"});
  expect_usage_error(parse({"report", "--bogus"}), {"capaudit report: unexpected argument '--bogus'", "--help"});
  expect_usage_error(parse({"report", "a", "b"}), {"unexpected arguments 'a' 'b'"});
  expect_usage_error(parse({"report", "--db"}), {"--db"});
  // The last one wins, as with getopt; a bad value is an error wherever it is.
  ReportArgs a = args_of<ReportArgs>(parse({"report", "--db", "/a", "--binary", "/x", "--db", "/b", "--binary", "/y"}));
  EXPECT_EQ(a.db, "/b");
  EXPECT_EQ(a.binary, "/y");
  EXPECT_EQ(args_of<RecommendArgs>(parse({"recommend", "--format", "script", "--format", "json"})).format,
            RecommendFormat::Json);
  expect_usage_error(parse({"recommend", "--format", "bogus", "--format", "json"}), {"bogus"});
  EXPECT_EQ(args_of<FilesArgs>(parse({"files", "/a", "--json", "/b"})).dirs, (std::vector<std::string>{"/a", "/b"}));
  // Control characters typed into a bad value do not reach the terminal raw.
  Parsed p = parse({"recommend", "--format", "\x1b[31m"});
  EXPECT_EQ(p.exit_status(), 2);
  EXPECT_EQ(p.err.find('\x1b'), std::string::npos) << p.err;
}

// docs/capaudit.8: each command's SYNOPSIS line and its COMMANDS section list
// exactly the options the parser declares.
std::string unescape_roff(std::string s) {
  s = std::regex_replace(s, std::regex(R"(\\f[BIRP])"), "");
  return std::regex_replace(s, std::regex(R"(\\-)"), "-");
}

std::set<std::string> option_names(const std::string& text) {
  std::set<std::string> names;
  static const std::regex option(R"((^|[\s\[|])(--?[A-Za-z][A-Za-z0-9-]*))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), option); it != std::sregex_iterator(); ++it)
    names.insert((*it)[2]);
  return names;
}

TEST(Cli, ManPageListsEveryOption) {
  std::ifstream in(CAPAUDIT_SOURCE_DIR "/docs/capaudit.8");
  ASSERT_TRUE(in) << "cannot read docs/capaudit.8";
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);

  for (const auto& [command, options] : cli_options()) {
    std::set<std::string> declared(options.begin(), options.end());
    std::string synopsis, section;
    bool in_synopsis = false, in_section = false;
    for (const std::string& l : lines) {
      if (l.rfind(".B capaudit " + command, 0) == 0 && l.size() == command.size() + 12) {
        in_synopsis = true;
        continue;
      }
      if (l.rfind(".br", 0) == 0 || l.rfind(".SH", 0) == 0) in_synopsis = false;
      if (l.rfind(".SS", 0) == 0 || l.rfind(".SH", 0) == 0) in_section = l == ".SS " + command;
      if (in_synopsis) synopsis += unescape_roff(l) + "\n";
      // Each option is a .TP entry; its first line is the option itself.
      if (in_section && &l != &lines.front() && (&l)[-1] == ".TP") section += unescape_roff(l) + "\n";
    }
    EXPECT_EQ(option_names(synopsis), declared) << "SYNOPSIS of " << command << ":\n" << synopsis;
    EXPECT_EQ(option_names(section), declared) << ".SS " << command << " entries:\n" << section;
  }
}

}  // namespace
}  // namespace capaudit

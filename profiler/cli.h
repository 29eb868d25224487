// The capaudit command line (CLI11): sub-commands, their options and the
// checks on them, kept apart from main.cpp so it can be tested without root.
#pragma once

#include "commands.h"

#include <iosfwd>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace capaudit {

// A sub-command's arguments, ready for its cmd_*, or the exit status when the
// command line has already been dealt with: 0 after --help or --version, 2
// after a usage error (the message, naming the option or value, is on err).
using CliResult = std::variant<int, ReportArgs, RecommendArgs, ProfileArgs, TraceArgs, FilesArgs, ExportArgs,
                               FleetLoadArgs, FleetRecommendArgs, FleetOutliersArgs, PsArgs>;

CliResult parse_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// Each sub-command ("fleet load" for nested ones) with the names of its
// options ("--db", "-K"), for tests that hold the man page to the parser.
std::vector<std::pair<std::string, std::vector<std::string>>> cli_options();

}  // namespace capaudit

// capaudit: reports, recommendations, profiling and live tracing of
// capability checks. Exit status: 0 ok, 1 runtime error, 2 usage error.
// The command line itself is profiler/cli.cpp.
#include "cli.h"
#include "commands.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>
#include <variant>

namespace {

using namespace capaudit;

// One overload per sub-command; the int is parse_cli's own exit status.
struct Run {
  int operator()(int exit_status) const { return exit_status; }
  int operator()(const ReportArgs& a) const { return cmd_report(a); }
  int operator()(const RecommendArgs& a) const { return cmd_recommend(a); }
  int operator()(const ProfileArgs& a) const { return cmd_profile(a); }
  int operator()(const TraceArgs& a) const { return cmd_trace(a); }
  int operator()(const FilesArgs& a) const { return cmd_files(a); }
  int operator()(const ExportArgs& a) const { return cmd_export(a); }
  int operator()(const FleetLoadArgs& a) const { return cmd_fleet_load(a); }
  int operator()(const FleetRecommendArgs& a) const { return cmd_fleet_recommend(a); }
  int operator()(const FleetOutliersArgs& a) const { return cmd_fleet_outliers(a); }
  int operator()(const PsArgs& a) const { return cmd_ps(a); }
};

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("capaudit"));
  spdlog::set_level(spdlog::level::warn);
  try {
    return std::visit(Run{}, parse_cli(argc, argv, std::cout, std::cerr));
  } catch (const std::exception& e) {
    std::cerr << "capaudit: " << e.what() << "\n";
    return 1;
  }
}

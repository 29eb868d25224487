// capaudit fleet load|recommend|outliers: the commands around fleet_pg.h.
#include "commands.h"
#include "fleet_pg.h"

#include <fstream>
#include <iostream>

namespace capaudit {
namespace {

std::unique_ptr<PgConn> open_fleet(const std::string& conninfo, const char* command, bool migrate) {
  std::string err;
  std::unique_ptr<PgConn> pg = PgConn::connect(conninfo, &err);
  if (pg && !(migrate ? fleet_migrate(*pg, &err) : fleet_schema_ready(*pg, &err))) pg.reset();
  if (!pg) std::cerr << "capaudit fleet " << command << ": " << escape_for_display(err) << "\n";
  return pg;
}

}  // namespace

int cmd_fleet_load(const FleetLoadArgs& args) {
  std::unique_ptr<PgConn> pg = open_fleet(args.postgres, "load", /*migrate=*/true);
  if (!pg) return 1;
  // Each file is its own transaction: a bad one is refused whole and the
  // others still load, so one damaged host file does not hold up the fleet.
  int status = 0;
  std::string err;
  size_t lines = 0;
  if (args.files.empty()) {
    if (!fleet_load(*pg, std::cin, "standard input", &lines, &err)) {
      std::cerr << "capaudit fleet load: " << escape_for_display(err) << "\n";
      status = 1;
    }
    return status;
  }
  for (const std::string& file : args.files) {
    std::ifstream in(file);
    if (!in) {
      std::cerr << "capaudit fleet load: cannot read " << quote_for_display(file) << "\n";
      status = 1;
      continue;
    }
    if (!fleet_load(*pg, in, file, &lines, &err)) {
      std::cerr << "capaudit fleet load: " << escape_for_display(err) << "\n";
      status = 1;
    }
  }
  return status;
}

int cmd_fleet_recommend(const FleetRecommendArgs& args) {
  std::unique_ptr<PgConn> pg = open_fleet(args.postgres, "recommend", /*migrate=*/false);
  if (!pg) return 1;
  std::vector<FleetBinary> binaries;
  std::string err;
  if (!fleet_recommend(*pg, args.binary, args.sha256, &binaries, &err)) {
    std::cerr << "capaudit fleet recommend: " << escape_for_display(err) << "\n";
    return 1;
  }
  if ((args.binary || args.sha256) && binaries.empty()) {
    std::cerr << "capaudit fleet recommend: no host loaded checks for that binary\n";
    return 1;
  }
  if (args.json) std::cout << fleet_recommend_to_json(binaries).dump(2) << "\n";
  else print_fleet_recommend_table(std::cout, binaries);
  return std::cout.flush() ? 0 : 1;
}

int cmd_fleet_outliers(const FleetOutliersArgs& args) {
  std::unique_ptr<PgConn> pg = open_fleet(args.postgres, "outliers", /*migrate=*/false);
  if (!pg) return 1;
  std::vector<FleetOutlier> outliers;
  std::string err;
  if (!fleet_outliers(*pg, &outliers, &err)) {
    std::cerr << "capaudit fleet outliers: " << escape_for_display(err) << "\n";
    return 1;
  }
  if (args.json) std::cout << fleet_outliers_to_json(outliers).dump(2) << "\n";
  else print_fleet_outliers_table(std::cout, outliers);
  return std::cout.flush() ? 0 : 1;
}

}  // namespace capaudit

// What the store holds for a binary, read back as the engine's input: its
// row and each check row with its origins.
#pragma once

#include "store.h"

#include <optional>
#include <string>
#include <vector>

namespace capaudit {

struct ObservedCheck {
  CheckRow row;
  std::vector<OriginRow> origins;
};

struct Observation {
  BinaryRow binary;  // for `profile` without a database, ids are 0
  std::vector<ObservedCheck> checks;
  std::vector<SelfInspectionRow> self_inspections;  // capget/prctl queries it made
};

// Every binary (or those at `path`) with its checks and origins; nullopt
// with *err when the database could not be read whole (a damaged file:
// *err names it, says so and how to check it), never a partial answer.
std::optional<std::vector<Observation>> load_observations(Store& store, const std::optional<std::string>& path,
                                                          std::string* err);

}  // namespace capaudit

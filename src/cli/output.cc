// Output files the commands share.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "core/strings.h"

namespace palisade::cli {

FILE* openEve(const std::string& dir, const char* mode, const char* cmd, std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);  // fopen says why if this failed
  path = (std::filesystem::path(dir) / "eve.json").string();
  FILE* f = std::fopen(path.c_str(), mode);
  if (!f) std::fprintf(stderr, "palisade %s: %s\n", cmd, errnoText(path).c_str());
  return f;
}

}  // namespace palisade::cli

// Diagnostics: every problem found in a policy, each with file:line:column.
// Loading never stops at the first problem; the user sees them all at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace palisade::policy {

struct SourceLoc {
  uint32_t line = 0;  // 1-based; 0 when unknown
  uint32_t column = 0;
};

enum class Severity : uint8_t { Error, Warning };

struct Diagnostic {
  Severity severity;
  SourceLoc loc;
  std::string message;
};

class Diagnostics {
 public:
  // Past this many, errors are counted but not kept (hostile input cannot grow memory).
  static constexpr size_t kMaxKept = 200;
  // Past this many errors, checks stop early: the input is hostile or hopeless.
  static constexpr size_t kStopAfter = 10000;

  explicit Diagnostics(std::string file = {}) : file_(std::move(file)) {}

  void error(SourceLoc loc, std::string message);
  void warning(SourceLoc loc, std::string message);

  bool hasErrors() const { return errors_ > 0; }
  bool saturated() const { return errors_ >= kStopAfter; }
  size_t errorCount() const { return errors_; }
  size_t warningCount() const { return warnings_; }
  const std::vector<Diagnostic>& list() const { return list_; }
  const std::string& file() const { return file_; }

  // "FILE:LINE:COL: error: MESSAGE" lines, in source order.
  std::string format() const;

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
  size_t errors_ = 0;
  size_t warnings_ = 0;
};

}  // namespace palisade::policy

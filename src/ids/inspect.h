// Content inspection: a rule's matches on one buffer, in the order written.
//
// As in Suricata, a relative match (distance, within, pcre R, byte_* relative)
// is positioned after the previous match in the same buffer, and when a later
// relative match fails the engine looks for the next occurrence of an earlier
// content and tries again. The retries are bounded (kMaxSteps) so a hostile
// rule over a hostile buffer cannot take more than a fixed amount of work.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ids/rule.h"

struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;
struct pcre2_real_jit_stack_8;

namespace palisade::ids {

// The matches of one rule on one buffer, prepared at load time.
struct BufferProgram {
  Buffer buffer = Buffer::Payload;
  bool dotprefix = false;
  std::vector<const Match*> steps;
  // Lower-cased content bytes for nocase contents, by step index.
  std::vector<std::string> folded;
};

// Groups a rule's matches by buffer (dotprefix matches apart).
std::vector<BufferProgram> compilePrograms(const Rule& r);

// Per-thread scratch: PCRE2 match data and the byte_extract variables.
class Inspector {
 public:
  Inspector();
  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  // True when every step of `prog` holds on `data`. `vars` carries byte_extract
  // values across the rule's buffers (sized to the rule's byte_vars).
  // With `min_end` > 0 a match counts only when it ends past that offset (a
  // stream window's new bytes start there); earlier occurrences are skipped.
  bool run(const BufferProgram& prog, std::string_view data, std::span<int64_t> vars,
           size_t min_end = 0);

  // Steps taken by the last run (for the bound's test).
  uint64_t steps() const { return steps_; }
  static constexpr uint64_t kMaxSteps = 100000;

 private:
  bool step(size_t i, size_t prev_end);
  bool content(size_t i, size_t prev_end);
  int64_t operand(const Operand& o) const;

  const BufferProgram* prog_ = nullptr;
  std::string_view data_;
  std::span<int64_t> vars_;
  size_t min_end_ = 0;
  uint64_t steps_ = 0;
  pcre2_real_match_data_8* md_ = nullptr;
  pcre2_real_match_context_8* mctx_ = nullptr;
  // JIT-compiled patterns run on this stack (32 KiB, growing to 1 MiB), not
  // the thread's: a pattern that needs more fails as a non-match.
  pcre2_real_jit_stack_8* jit_stack_ = nullptr;
};

// Compiles a rule's pcre patterns to machine code (PCRE2 JIT); the
// interpreter stays the fallback for a pattern the JIT refuses. Returns how
// many were compiled.
size_t jitCompile(const Rule& r);

// A pcre match gives up (no match) after this many backtracking steps, so a
// pattern that backtracks catastrophically on a hostile buffer costs a bounded
// amount of work, as Suricata's pcre match-limit does.
inline constexpr uint32_t kPcreMatchLimit = 100000;

// Case-insensitive (ASCII) find of a lower-cased needle; npos when absent.
size_t findNoCase(std::string_view hay, std::string_view folded_needle, size_t from);

}  // namespace palisade::ids

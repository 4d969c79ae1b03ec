// The log verifier's parsing of hostile log files: any bytes, as log lines and
// as a checkpoint copy. Must never crash, hang or grow without bound.
//
// Input: the first byte says how many leading lines are the checkpoint copy
// (0-3); the rest is split at '\n' into log lines, and a 0x01 byte in a line
// starts a new file (so file boundaries and partial tails are exercised).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "events/log_verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using palisade::events::LogVerifier;
  if (size == 0) return 0;
  const unsigned copy_lines = data[0] & 3;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  LogVerifier v({});
  unsigned line_no = 0;
  v.beginFile("events-0000000000000001.jsonl");
  while (!in.empty()) {
    const size_t nl = in.find('\n');
    if (nl == std::string_view::npos) {  // a partial tail
      v.endFile(in.size());
      v.beginFile("events-0000000000000100.jsonl");
      break;
    }
    std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl + 1);
    if (line_no < copy_lines) {
      v.checkpointCopy(line, ++line_no);
      continue;
    }
    ++line_no;
    if (!line.empty() && line[0] == '\x01') {
      v.endFile(0);
      v.beginFile("events-0000000000000050.jsonl");
      line.remove_prefix(1);
    }
    v.line(line);
  }
  v.endFile(0);
  (void)v.finish();
  return 0;
}

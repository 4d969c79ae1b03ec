// LogVerifier: checks a ChainLog (chain_log.h) and says what was done to it.
//
// It streams: memory is bounded by a window of the most recent sequence
// numbers (kWindow), not by the log's size. Feed it, in order:
//   checkpointCopy(line)  every line of the external checkpoint copy, if any
//   beginFile(name), line(...)..., endFile(partial_tail_bytes)  per log file, oldest first
//   finish()
// Every finding names the file, line and sequence number where it was seen:
//   modified    a record's content does not match its hash, or its hash was
//               recomputed (the next record's prev does not match)
//   deleted     sequence numbers missing from the chain
//   inserted    a record that is not part of the chain (a copy, or a second
//               record claiming a sequence number)
//   reordered   a record found after records that follow it
//   truncated   the log ends before a checkpoint the copy holds, or a file
//               ends in a partial record nobody accounted for
//   signature   a checkpoint whose signature fails or whose key is unknown
//   rewritten   a checkpoint signed a different hash than the chain has there:
//               the records since the previous checkpoint were rewritten
//   malformed   a line that is not a chained record, or a log record that
//               contradicts the chain (wrong log id, record after close)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "events/chain_log.h"
#include "events/crypto.h"

namespace palisade::events {

struct LogFinding {
  std::string
      kind;  // modified, deleted, inserted, reordered, truncated, signature, rewritten, malformed
  std::string where;  // file:line
  uint64_t seq = 0;   // 0 when the line had none
  std::string detail;
};

struct LogReport {
  std::vector<LogFinding> problems;
  uint64_t problems_not_listed = 0;  // beyond kMaxFindings
  std::vector<std::string> notes;    // worth knowing, not tampering
  uint64_t files = 0, records = 0;
  uint64_t first_seq = 0, last_seq = 0;
  uint64_t checkpoints = 0, checkpoints_verified = 0;
  uint64_t last_verified_seq = 0;  // the chain up to here is signed
  bool closed = false;             // ends with a final checkpoint
  std::string log_id;
  std::vector<std::string> key_ids;
  bool intact() const { return problems.empty() && problems_not_listed == 0; }
};

class LogVerifier {
 public:
  static constexpr size_t kWindow = 4096;
  static constexpr size_t kMaxFindings = 1000;
  static constexpr size_t kMaxLine = 1 << 20;

  // With no keys, signatures are not checked (and the report says so).
  explicit LogVerifier(std::vector<SigningKey> keys) : keys_(std::move(keys)) {}

  void checkpointCopy(std::string_view line, uint64_t line_no);
  // at_file_start false: the lines join a file part-way (a live stream).
  void beginFile(std::string name, bool at_file_start = true);
  void line(std::string_view line);  // without '\n'
  void overlongLine();               // a line longer than kMaxLine (its text is not kept)
  void endFile(uint64_t partial_tail_bytes);
  LogReport finish();
  // The findings so far (a live stream is never finished).
  const LogReport& report() const { return r_; }

 private:
  struct Loc {  // file (index into files_) and line: kept per record, formatted when reported
    uint32_t file = 0;
    uint64_t line = 0;
  };
  struct Entry {
    Digest hash;
    Digest prev;
    Loc where;
    bool linked = false;  // a later record's prev names it
  };
  struct Pending {  // a gap in sequence numbers, until the records turn up or the end
    uint64_t end;
    std::string where;
  };
  struct LastRecord {
    bool valid = false;
    uint64_t seq = 0;
    Digest hash{};
    Loc where;
    bool content_ok = true;
    bool is_checkpoint = false;
  };

  void problem(std::string kind, const std::string& where, uint64_t seq, std::string detail);
  std::string here() const;
  Loc loc() const { return {static_cast<uint32_t>(files_.size() - 1), line_no_}; }
  std::string at(Loc l) const;
  void remember(uint64_t seq, const RecordTail& t);
  void linkTo(uint64_t seq, const Digest& hash);
  void addMissing(uint64_t from, uint64_t to, std::string where);
  bool takeMissing(uint64_t seq);
  void logRecord(std::string_view line, const RecordTail& t);

  std::vector<SigningKey> keys_;
  Sha256 sha_;
  LogReport r_;
  std::vector<std::string> files_;
  uint64_t line_no_ = 0;
  bool first_in_file_ = false;
  LastRecord last_;
  std::map<uint64_t, std::vector<Entry>> window_;
  std::map<uint64_t, Pending> missing_;  // start -> gap
  uint64_t missing_dropped_ = 0;
  // The chain's first record when it is not seq 1: resolved by a retention record.
  bool head_gap_ = false;
  uint64_t head_seq_ = 0;
  Digest head_prev_{};
  std::string head_where_;
  std::string partial_file_;  // a file that ended mid-record, until a resume accounts for it
  uint64_t partial_bytes_ = 0;
  bool after_final_ = false;
  bool unverified_warned_ = false;
  std::map<uint64_t, Digest>
      copy_;  // checkpoint copy: signed seq -> signed hash, until met in the log
};

// Verifies log files (in the order given; a directory stands for its log
// files in sequence order) and, when set, the external checkpoint copy.
Result<LogReport> verifyLogFiles(const std::vector<std::string>& paths,
                                 const std::string& checkpoint_copy, std::vector<SigningKey> keys);

}  // namespace palisade::events

// ChainLog: the tamper-evident, append-only event log.
//
// Every record is one JSON line: the event's own members, then
//   ,"seq":N,"prev":"<hash of record N-1>","hash":"<SHA-256 of this line up to ,"hash">"}
// so each record's hash covers its content, its sequence number and the hash
// of the record before it. The first record of a chain has prev = 64 zeros.
//
// Records of event_type "log" are the log's own:
//   file        first record of every file: log_id, host, reason (open, rotate,
//               resume), key id, clock state; on resume, how the previous
//               file ended (last seq, clean or not, bytes of a partial record)
//   checkpoint  an Ed25519 signature over (log_id, seq, hash) of the record
//               before it; "final":true when the writer closed the log
//   retention   files removed by the retention policy and where the chain now
//               starts, written before the files are removed
//   lost        events that could not be written (and why), so a gap in what
//               was reported is itself on the record
//   clock_unsynchronized / clock_synchronized  the kernel's clock state changed
//   heartbeat   every heartbeat interval (when set): the writer is alive
//
// Files are DIR/events-<first seq, 16 digits>.jsonl; the newest is the active
// one. A new process continues the chain of the newest file in a new file.
// Checkpoints come every `checkpoint_records` records or `checkpoint_interval`,
// at rotation and at close; each is also appended to `checkpoint_copy` when set
// (a file on other storage, so truncating the log is caught). The signing key
// must not be inside DIR.
//
// Threading: one thread (the EventWriter's) calls everything.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_writer.h"
#include "core/result.h"
#include "core/time.h"
#include "events/crypto.h"
#include "events/writer.h"

namespace palisade::events {

struct ChainLogOptions {
  std::string dir;
  std::string checkpoint_copy;  // optional
  std::string host;             // recorded in file records
  uint64_t checkpoint_records = 10000;
  TimeNs checkpoint_interval_ns = 10'000'000'000ull;
  uint64_t max_file_bytes = 64ull << 20;  // rotate at this size (0: never)
  TimeNs max_file_age_ns = 0;             // rotate at this age (0: never)
  uint32_t retain_files = 0;              // keep at most this many files (0: no limit)
  uint64_t retain_bytes = 0;              // keep at most this many bytes (0: no limit)
  TimeNs retain_age_ns = 0;               // remove files older than this (0: no limit)
  TimeNs clock_check_interval_ns = 60'000'000'000ull;
  // A "heartbeat" record this often (0: none), so a collector can tell a
  // quiet source from a dead one; file records carry the interval too.
  TimeNs heartbeat_interval_ns = 0;
};

class ChainLog final : public EventSink {
 public:
  static Result<std::unique_ptr<ChainLog>> open(ChainLogOptions opts, SigningKey key);
  ~ChainLog() override;

  // Whole EVE JSON lines (each "{...}\n"); each becomes one chained record.
  Status write(std::string_view lines) override;
  Status flush() override;
  // Time-driven work: checkpoints, rotation by age, clock checks. `now` is wall time.
  Status tick(TimeNs now) override;
  // Final checkpoint and fsync; further writes fail.
  Status close() override;

  const std::string& activeFile() const { return file_path_; }
  uint64_t records() const { return records_; }
  uint64_t checkpoints() const { return checkpoints_; }

 private:
  ChainLog(ChainLogOptions opts, SigningKey key);
  Status resumeOrCreate();
  Status openFile(std::string_view reason, std::string_view previous_file_json);
  // Appends one record (a JSON object line without its '\n') to out_.
  void chain(std::string_view object);
  void logRecord(std::string_view event, std::string_view members);
  void appendClock(JsonWriter& w);
  Status writeOut();
  // Signs the chain's head (when there are unsigned records, or always when final).
  Status checkpoint(bool final_checkpoint);
  Status rotate();
  Status applyRetention();
  Status maybeRotateOrCheckpoint(TimeNs now);

  ChainLogOptions opts_;
  SigningKey key_;
  Sha256 sha_;
  int fd_ = -1;
  int copy_fd_ = -1;
  bool closed_ = false;
  std::string log_id_;
  std::string file_path_;
  uint64_t file_bytes_ = 0;
  TimeNs file_opened_ = 0;
  uint64_t seq_ = 0;  // last record chained
  Digest hash_{};     // its hash
  uint64_t committed_seq_ =
      0;  // last record on disk, and its hash: where a failed write rewinds to
  Digest committed_hash_{};
  uint64_t file_records_ = 0;  // records in the active file
  uint64_t unsigned_records_ = 0;
  TimeNs last_checkpoint_ = 0;
  TimeNs last_clock_check_ = 0;
  TimeNs last_heartbeat_ = 0;
  bool clock_synced_ = true;
  uint64_t records_ = 0, checkpoints_ = 0;
  uint64_t lost_events_ = 0;  // not yet reported in a "lost" record
  std::string lost_reason_;
  std::string out_;  // records not yet written
};

// Refuses a signing key kept inside the log directory it signs.
Status checkKeyApart(const std::string& key_path, const std::string& log_dir);

// The parts of a chained record's tail. body_len is where `,"hash"` starts:
// the hash covers line[0, body_len).
struct RecordTail {
  uint64_t seq = 0;
  Digest prev{};
  Digest hash{};
  size_t body_len = 0;
};
// Parses the tail of one line (without '\n'); false when it is not a chained record.
bool parseRecordTail(std::string_view line, RecordTail& out);

// The log files in DIR (events-*.jsonl), oldest first.
struct LogFile {
  uint64_t first_seq;
  std::string path;
};
std::vector<LogFile> listLogFiles(const std::string& dir);

// What the end of a log file says: its last complete record and any partial line after it.
struct FileEnd {
  bool has_record = false;
  RecordTail last;
  std::string last_line;
  uint64_t partial_bytes = 0;
};
// An error when the last whole line is not a chained record.
Result<FileEnd> readFileEnd(const std::string& path);
// The bytes of a file that holds no whole line, a writer having died between
// creating it and finishing its first record; -1 when it holds a line (or
// is too long to be such a file).
Result<int64_t> tornFileBytes(const std::string& path);
// A file's first line (its "file" record), without '\n'.
Result<std::string> readFirstLine(const std::string& path);

// "events-0000000000000001.jsonl" for first seq 1; 0 when `name` is not a log file name.
std::string logFileName(uint64_t first_seq);
uint64_t logFileFirstSeq(std::string_view name);

}  // namespace palisade::events

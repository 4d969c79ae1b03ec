#include "events/chain_log.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_writer.h"
#include "core/strings.h"
#include "events/json_fields.h"

namespace palisade::events {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kFilePrefix = "events-";
constexpr std::string_view kFileSuffix = ".jsonl";
constexpr size_t kSeqDigits = 16;
constexpr size_t kTailWindow = 1 << 20;  // a log line is far shorter than this

void fsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

std::vector<LogFile> listLogFiles(const std::string& dir) {
  std::vector<LogFile> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (uint64_t first = logFileFirstSeq(name); first != 0) files.push_back({first, entry.path()});
  }
  std::sort(files.begin(), files.end(),
            [](const LogFile& a, const LogFile& b) { return a.first_seq < b.first_seq; });
  return files;
}

Result<FileEnd> readFileEnd(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return makeError(errnoText(path));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return makeError(errnoText(path));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t want = std::min<uint64_t>(size, kTailWindow);
  std::string buf(want, '\0');
  ssize_t got = want ? ::pread(fd, buf.data(), want, static_cast<off_t>(size - want)) : 0;
  ::close(fd);
  if (got < 0 || static_cast<uint64_t>(got) != want) return makeError(errnoText(path));
  FileEnd end;
  size_t last_nl = buf.rfind('\n');
  if (last_nl == std::string::npos) {
    end.partial_bytes = size;
    return end;
  }
  end.partial_bytes = buf.size() - last_nl - 1;
  size_t start = buf.rfind('\n', last_nl == 0 ? std::string::npos : last_nl - 1);
  start = (start == std::string::npos || last_nl == 0) ? 0 : start + 1;
  if (last_nl == 0) return end;
  end.last_line = buf.substr(start, last_nl - start);
  end.has_record = parseRecordTail(end.last_line, end.last);
  if (!end.has_record) {
    return makeError(strCat(path, ": the last line is not a chained log record; refusing to ",
                            "continue this chain (run `palisade log verify`)"));
  }
  return end;
}

Result<std::string> readFirstLine(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return makeError(errnoText(path));
  std::string buf(64 << 10, '\0');
  ssize_t got = ::pread(fd, buf.data(), buf.size(), 0);
  ::close(fd);
  if (got < 0) return makeError(errnoText(path));
  buf.resize(static_cast<size_t>(got));
  size_t nl = buf.find('\n');
  if (nl == std::string::npos) return makeError(strCat(path, ": no complete first record"));
  buf.resize(nl);
  return buf;
}

Result<int64_t> tornFileBytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return makeError(errnoText(path));
  char buf[4096];
  const ssize_t got = ::pread(fd, buf, sizeof buf, 0);
  ::close(fd);
  if (got < 0) return makeError(errnoText(path));
  // A whole buffer without a newline is no torn first record: a file
  // record is far shorter. That file is left for `palisade log verify`.
  if (static_cast<size_t>(got) == sizeof buf || std::memchr(buf, '\n', static_cast<size_t>(got)))
    return int64_t{-1};
  return int64_t{got};
}

std::string logFileName(uint64_t first_seq) {
  std::string digits = std::to_string(first_seq);
  if (digits.size() < kSeqDigits) digits.insert(0, kSeqDigits - digits.size(), '0');
  return strCat(kFilePrefix, digits, kFileSuffix);
}

uint64_t logFileFirstSeq(std::string_view name) {
  if (name.size() != kFilePrefix.size() + kSeqDigits + kFileSuffix.size() ||
      !name.starts_with(kFilePrefix) || !name.ends_with(kFileSuffix)) {
    return 0;
  }
  std::string_view digits = name.substr(kFilePrefix.size(), kSeqDigits);
  uint64_t v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return 0;
  return v;
}

bool parseRecordTail(std::string_view line, RecordTail& out) {
  // ...,"seq":N,"prev":"<64 hex>","hash":"<64 hex>"}
  constexpr std::string_view kHash = ",\"hash\":\"";
  constexpr std::string_view kPrev = ",\"prev\":\"";
  constexpr std::string_view kSeq = ",\"seq\":";
  if (line.size() < 2 + kHash.size() + 64 + kPrev.size() + 64 + 1 + kSeq.size() + 1) return false;
  if (!line.ends_with("\"}") || line.front() != '{') return false;
  size_t p = line.size() - 2 - 64;
  if (!fromHex(line.substr(p, 64), out.hash.data(), 32)) return false;
  p -= kHash.size();
  if (line.substr(p, kHash.size()) != kHash) return false;
  out.body_len = p;
  if (p < 1 + 64 + kPrev.size() || line[p - 1] != '"') return false;
  p -= 1 + 64;
  if (!fromHex(line.substr(p, 64), out.prev.data(), 32)) return false;
  p -= kPrev.size();
  if (line.substr(p, kPrev.size()) != kPrev) return false;
  size_t digits_end = p;
  while (p > 0 && line[p - 1] >= '0' && line[p - 1] <= '9')
    --p;
  if (p == digits_end || digits_end - p > 20 || p < kSeq.size()) return false;
  auto r = std::from_chars(line.data() + p, line.data() + digits_end, out.seq);
  if (r.ec != std::errc() || out.seq == 0) return false;
  p -= kSeq.size();
  return line.substr(p, kSeq.size()) == kSeq;
}

ChainLog::ChainLog(ChainLogOptions opts, SigningKey key)
    : opts_(std::move(opts)), key_(std::move(key)) {}

Result<std::unique_ptr<ChainLog>> ChainLog::open(ChainLogOptions opts, SigningKey key) {
  if (!key.isPrivate()) return makeError("the log needs the private signing key");
  if (opts.dir.empty()) return makeError("no log directory");
  std::error_code ec;
  fs::create_directories(opts.dir, ec);
  if (ec) return makeError(strCat(opts.dir, ": ", ec.message()));
  std::unique_ptr<ChainLog> log(new ChainLog(std::move(opts), std::move(key)));
  if (!log->opts_.checkpoint_copy.empty()) {
    log->copy_fd_ =
        ::open(log->opts_.checkpoint_copy.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log->copy_fd_ < 0) return makeError(errnoText(log->opts_.checkpoint_copy));
  }
  if (Status st = log->resumeOrCreate(); !st) return st.error();
  const TimeNs now = wallClockNs();
  log->last_checkpoint_ = now;
  log->last_clock_check_ = now;
  log->last_heartbeat_ = now;
  log->clock_synced_ = readClockSync().synchronized;
  if (!log->clock_synced_) {
    std::string m;
    JsonWriter w(m);
    log->appendClock(w);
    log->logRecord("clock_unsynchronized", m);
    if (Status st = log->writeOut(); !st) return st.error();
  }
  return log;
}

Status checkKeyApart(const std::string& key_path, const std::string& log_dir) {
  std::error_code ec;
  const fs::path key = fs::weakly_canonical(key_path, ec);
  const fs::path dir = fs::weakly_canonical(log_dir, ec);
  const std::string k = key.string(), d = dir.string();
  if (!d.empty() && k.size() > d.size() && k.starts_with(d) && k[d.size()] == '/') {
    return makeError(strCat(key_path, ": the signing key is inside the log directory ", log_dir,
                            "; keep it apart from the log it signs"));
  }
  return {};
}

ChainLog::~ChainLog() {
  (void)close();
  if (fd_ >= 0) ::close(fd_);
  if (copy_fd_ >= 0) ::close(copy_fd_);
}

Status ChainLog::resumeOrCreate() {
  std::vector<LogFile> files = listLogFiles(opts_.dir);
  // A newest file without one whole line is a writer that died between
  // creating it and finishing its first record (O_EXCL create, then the
  // write): it holds no record. It is removed, so the chain goes on from the
  // file before, and the resume record names it and its bytes.
  std::string dropped;
  if (!files.empty()) {
    const std::string& path = files.back().path;
    auto torn = tornFileBytes(path);
    if (!torn) return torn.error();
    if (*torn >= 0) {
      JsonWriter w(dropped);
      w.beginObject()
          .field("file", fs::path(path).filename().string())
          .field("bytes", static_cast<uint64_t>(*torn))
          .endObject();
      if (::unlink(path.c_str()) != 0) return makeError(errnoText(path));
      files.pop_back();
    }
  }
  if (files.empty()) {
    uint8_t id[16];
    if (RAND_bytes(id, sizeof id) != 1) return makeError(strCat("no randomness: ", opensslError()));
    log_id_ = toHex(id, sizeof id);
    return openFile("open", {});
  }
  const LogFile& newest = files.back();
  auto first = readFirstLine(newest.path);
  if (!first) return first.error();
  auto j = nlohmann::json::parse(*first, nullptr, false);
  const nlohmann::json& file_record = jf::object(j, "log");
  if (j.is_discarded() || jf::str(j, "event_type") != "log" ||
      jf::str(file_record, "event") != "file" || jf::str(file_record, "log_id").empty()) {
    return makeError(strCat(newest.path, ": does not begin with a log file record; refusing to ",
                            "continue this chain (run `palisade log verify`)"));
  }
  log_id_ = jf::str(file_record, "log_id");
  auto end = readFileEnd(newest.path);
  if (!end) return end.error();
  if (!end->has_record)
    return makeError(strCat(newest.path, ": no complete record to continue from"));
  seq_ = end->last.seq;
  hash_ = end->last.hash;
  const bool clean = end->last_line.find("\"event\":\"checkpoint\"") != std::string::npos &&
                     end->last_line.find("\"final\":true") != std::string::npos;
  std::string prev;
  JsonWriter w(prev);
  w.beginObject()
      .field("file", fs::path(newest.path).filename().string())
      .field("last_seq", seq_)
      .field("clean", clean)
      .field("partial_tail_bytes", end->partial_bytes);
  if (!dropped.empty()) w.key("dropped_file").raw(dropped);
  w.endObject();
  return openFile("resume", prev);
}

void ChainLog::appendClock(JsonWriter& w) {
  const ClockSync c = readClockSync();
  w.key("clock").beginObject();
  w.field("synchronized", c.synchronized);
  if (c.known) {
    w.field("max_error_us", static_cast<int64_t>(c.max_error_us));
    w.field("est_error_us", static_cast<int64_t>(c.est_error_us));
  }
  w.endObject();
}

Status ChainLog::openFile(std::string_view reason, std::string_view previous_file_json) {
  file_path_ = (fs::path(opts_.dir) / logFileName(seq_ + 1)).string();
  fd_ = ::open(file_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return makeError(errnoText(file_path_));
  file_bytes_ = 0;
  file_records_ = 0;
  file_opened_ = wallClockNs();
  std::string m;
  JsonWriter w(m);
  w.field("log_id", log_id_)
      .field("host", opts_.host)
      .field("file", fs::path(file_path_).filename().string())
      .field("reason", reason)
      .field("key_id", key_.id())
      .field("hash", "sha256")
      .field("signature", "ed25519");
  if (opts_.heartbeat_interval_ns) w.field("heartbeat_ms", opts_.heartbeat_interval_ns / 1000000);
  if (!previous_file_json.empty()) w.key("previous_file").raw(previous_file_json);
  appendClock(w);
  logRecord("file", m);
  if (Status st = writeOut(); !st) return st;
  fsyncDir(opts_.dir);
  return {};
}

void ChainLog::chain(std::string_view object) {
  const size_t start = out_.size();
  out_.append(object.data(), object.size() - 1);  // without the closing brace
  if (object.size() > 2) out_ += ',';
  ++seq_;
  out_ += "\"seq\":";
  char num[24];
  out_.append(num, std::to_chars(num, num + sizeof num, seq_).ptr);
  out_ += ",\"prev\":\"";
  const size_t hex_at = out_.size();
  out_.resize(hex_at + 64);
  toHex(hash_.data(), hash_.size(), out_.data() + hex_at);
  out_ += '"';
  hash_ = sha_(std::string_view(out_).substr(start));
  out_ += ",\"hash\":\"";
  const size_t h_at = out_.size();
  out_.resize(h_at + 64);
  toHex(hash_.data(), hash_.size(), out_.data() + h_at);
  out_ += "\"}\n";
  ++unsigned_records_;
  ++records_;
  ++file_records_;
}

void ChainLog::logRecord(std::string_view event, std::string_view members) {
  std::string line;
  JsonWriter w(line);
  beginEve(w, wallClockNs(), "log");
  w.key("log").beginObject().field("event", event);
  if (!members.empty()) w.raw(members);
  w.endObject().endObject();
  chain(line);
}

Status ChainLog::writeOut() {
  size_t off = 0;
  while (off < out_.size()) {
    ssize_t n = ::write(fd_, out_.data() + off, out_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "short write";
      // Undo the partial write so the file still ends at a whole record, and
      // rewind the chain to it: these records were never accepted.
      if (off > 0) (void)::ftruncate(fd_, static_cast<off_t>(file_bytes_));
      const uint64_t dropped = static_cast<uint64_t>(std::count(out_.begin(), out_.end(), '\n'));
      seq_ = committed_seq_;
      hash_ = committed_hash_;
      records_ -= std::min(records_, dropped);
      file_records_ -= std::min(file_records_, dropped);
      unsigned_records_ -= std::min(unsigned_records_, dropped);
      lost_events_ += dropped;
      lost_reason_ = why;
      out_.clear();
      return makeError(strCat(file_path_, ": ", why));
    }
    off += static_cast<size_t>(n);
  }
  file_bytes_ += out_.size();
  out_.clear();
  committed_seq_ = seq_;
  committed_hash_ = hash_;
  return {};
}

Status ChainLog::write(std::string_view lines) {
  if (closed_) return makeError(strCat(opts_.dir, ": the log is closed"));
  // Events a failed write lost are on the record before anything else; the
  // count is cleared only once that record is on disk.
  if (const uint64_t reported = lost_events_; reported > 0) {
    std::string m;
    JsonWriter w(m);
    w.field("events", reported).field("reason", lost_reason_);
    logRecord("lost", m);
    if (Status st = writeOut(); !st) {
      // Still failing: the "lost" record itself was not an event; this batch's are.
      lost_events_ += static_cast<uint64_t>(std::count(lines.begin(), lines.end(), '\n')) - 1;
      return st;
    }
    lost_events_ -= reported;
  }
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    if (line.empty()) continue;
    if (line.size() < 2 || line.front() != '{' || line.back() != '}') {
      // Not an event line (a bug upstream): on the record as lost, not dropped silently.
      ++lost_events_;
      lost_reason_ = "not a JSON object line";
      continue;
    }
    chain(line);
    // A file ends at the first record that takes it to its size, wherever the
    // batch ends: where files split then depends on the events alone, not on
    // how the writer thread happened to batch them, and no file overshoots its
    // size by more than one record (and the checkpoint that closes it).
    Status st;
    if (opts_.max_file_bytes && file_bytes_ + out_.size() >= opts_.max_file_bytes) {
      st = rotate();
    } else if (unsigned_records_ >= opts_.checkpoint_records) {
      st = checkpoint(false);
    }
    if (!st) {
      // The rest of the batch was never chained: on the record as lost.
      uint64_t rest = 0;
      for (size_t at = 0; at < lines.size();) {
        const size_t end = std::min(lines.find('\n', at), lines.size());
        rest += end > at;
        at = end + 1;
      }
      if (rest > 0) {
        lost_events_ += rest;
        lost_reason_ = st.error().message;
      }
      return st;
    }
  }
  return writeOut();
}

Status ChainLog::flush() {
  if (closed_) return {};
  return writeOut();
}

Status ChainLog::checkpoint(bool final_checkpoint) {
  if (unsigned_records_ == 0 && !final_checkpoint) return {};
  if (Status st = writeOut(); !st) return st;
  if (::fdatasync(fd_) != 0) return makeError(errnoText(file_path_));
  const std::string hash_hex = toHex(hash_);
  const std::string message =
      strCat("palisade-log-checkpoint-v1 ", log_id_, " ", std::to_string(seq_), " ", hash_hex);
  auto sig = key_.sign(message);
  if (!sig) return sig.error();
  std::string m;
  JsonWriter w(m);
  w.field("log_id", log_id_)
      .field("signed_seq", seq_)
      .field("signed_hash", hash_hex)
      .field("key_id", key_.id())
      .field("sig", *sig);
  if (final_checkpoint) w.field("final", true);
  appendClock(w);
  const size_t at = out_.size();
  logRecord("checkpoint", m);
  const std::string copy = out_.substr(at);
  if (Status st = writeOut(); !st) return st;
  if (::fdatasync(fd_) != 0) return makeError(errnoText(file_path_));
  if (copy_fd_ >= 0) {
    if (::write(copy_fd_, copy.data(), copy.size()) != static_cast<ssize_t>(copy.size()) ||
        ::fdatasync(copy_fd_) != 0) {
      return makeError(errnoText(opts_.checkpoint_copy));
    }
  }
  unsigned_records_ = 0;
  last_checkpoint_ = wallClockNs();
  ++checkpoints_;
  return {};
}

Status ChainLog::rotate() {
  if (Status st = checkpoint(false); !st) return st;
  const std::string previous = fs::path(file_path_).filename().string();
  ::close(fd_);
  fd_ = -1;
  std::string prev;
  JsonWriter w(prev);
  w.beginObject().field("file", previous).field("last_seq", seq_).endObject();
  if (Status st = openFile("rotate", prev); !st) return st;
  return applyRetention();
}

Status ChainLog::applyRetention() {
  if (!opts_.retain_files && !opts_.retain_bytes && !opts_.retain_age_ns) return {};
  std::vector<LogFile> files = listLogFiles(opts_.dir);
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  std::vector<TimeNs> mtimes;
  for (const LogFile& f : files) {
    struct stat st {};
    uint64_t size = 0;
    TimeNs mtime = 0;
    if (::stat(f.path.c_str(), &st) == 0) {
      size = static_cast<uint64_t>(st.st_size);
      mtime = static_cast<TimeNs>(st.st_mtim.tv_sec) * 1000000000ull +
              static_cast<TimeNs>(st.st_mtim.tv_nsec);
    }
    sizes.push_back(size);
    mtimes.push_back(mtime);
    total += size;
  }
  const TimeNs now = wallClockNs();
  size_t remove = 0;  // the oldest `remove` files go; the active file never does
  size_t count = files.size();
  while (remove + 1 < files.size() && files[remove].path != file_path_) {
    const bool too_many = opts_.retain_files && count > opts_.retain_files;
    const bool too_big = opts_.retain_bytes && total > opts_.retain_bytes;
    const bool too_old =
        opts_.retain_age_ns && now > mtimes[remove] && now - mtimes[remove] > opts_.retain_age_ns;
    if (!too_many && !too_big && !too_old) break;
    total -= sizes[remove];
    --count;
    ++remove;
  }
  if (remove == 0) return {};
  auto end = readFileEnd(files[remove - 1].path);
  if (!end) return end.error();
  if (!end->has_record) return makeError(strCat(files[remove - 1].path, ": no complete record"));
  std::string m;
  JsonWriter w(m);
  w.key("removed").beginArray();
  for (size_t i = 0; i < remove; ++i) {
    w.beginObject().field("file", fs::path(files[i].path).filename().string());
    w.field("first_seq", files[i].first_seq).field("bytes", sizes[i]).endObject();
  }
  w.endArray();
  w.key("chain_from")
      .beginObject()
      .field("seq", end->last.seq + 1)
      .field("prev", toHex(end->last.hash))
      .endObject();
  logRecord("retention", m);
  // The record (and a signature over it) is durable before any file goes.
  if (Status st = checkpoint(false); !st) return st;
  for (size_t i = 0; i < remove; ++i) {
    if (::unlink(files[i].path.c_str()) != 0) return makeError(errnoText(files[i].path));
  }
  fsyncDir(opts_.dir);
  return {};
}

Status ChainLog::tick(TimeNs now) {
  if (closed_) return {};
  if (now < last_clock_check_ || now - last_clock_check_ >= opts_.clock_check_interval_ns) {
    last_clock_check_ = now;
    const ClockSync c = readClockSync();
    // A warning each interval while unsynchronised; one notice when it recovers.
    if (!c.synchronized || !clock_synced_) {
      std::string m;
      JsonWriter w(m);
      appendClock(w);
      logRecord(c.synchronized ? "clock_synchronized" : "clock_unsynchronized", m);
    }
    clock_synced_ = c.synchronized;
  }
  if (opts_.heartbeat_interval_ns &&
      (now < last_heartbeat_ || now - last_heartbeat_ >= opts_.heartbeat_interval_ns)) {
    last_heartbeat_ = now;
    std::string m;
    JsonWriter w(m);
    w.field("interval_ms", opts_.heartbeat_interval_ns / 1000000).field("records", records_);
    logRecord("heartbeat", m);
  }
  if (lost_events_ > 0) {
    if (Status st = write({}); !st) return st;
  }
  if (unsigned_records_ > 0 &&
      (now < last_checkpoint_ || now - last_checkpoint_ >= opts_.checkpoint_interval_ns)) {
    if (Status st = checkpoint(false); !st) return st;
  }
  if (opts_.max_file_age_ns && now > file_opened_ && now - file_opened_ >= opts_.max_file_age_ns &&
      file_records_ > 1) {
    if (Status st = rotate(); !st) return st;
  }
  return writeOut();
}

Status ChainLog::close() {
  if (closed_) return {};
  Status st = checkpoint(true);
  closed_ = true;
  return st;
}

}  // namespace palisade::events

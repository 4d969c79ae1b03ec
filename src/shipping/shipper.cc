#include "shipping/shipper.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/file.h"
#include "core/strings.h"
#include "events/json_fields.h"
#include "shipping/syslog.h"

namespace palisade::shipping {
namespace fs = std::filesystem;
namespace jf = events::jf;

namespace {

constexpr std::string_view kStateMagic = "palisade-ship-state-v1";
constexpr size_t kBatchBytes = 256 << 10;
constexpr size_t kMaxLine = 1 << 20;

std::string logIdOf(const std::string& first_line) {
  auto j = nlohmann::json::parse(first_line, nullptr, false);
  return jf::str(jf::object(j, "log"), "log_id");
}

}  // namespace

// Reads whole records from the log files in sequence order, following the
// active file as it grows and rotation into the next.
struct Shipper::Tail {
  std::string dir;
  int fd = -1;
  uint64_t file_first = 0;
  // The log the active file belongs to, from its first record (a "file"
  // record naming it). The writer creates a file before it writes that
  // record: a tail that opens the file in between learns the id when the
  // record arrives, and until then the file has no records to ship.
  std::string path, log_id;
  std::string buf;
  size_t pos = 0;
  bool first_line = true;  // the next line read is the file's first
  bool overlong = false;   // inside a line longer than kMaxLine: skipping to its end
  uint64_t skipped = 0;

  ~Tail() { closeFile(); }
  void closeFile() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    buf.clear();
    pos = 0;
    first_line = true;
    overlong = false;
  }

  Status openFile(const events::LogFile& f) {
    closeFile();
    fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return makeError(errnoText(f.path));
    path = f.path;
    file_first = f.first_seq;
    auto first = events::readFirstLine(f.path);
    log_id = first ? logIdOf(*first) : std::string();
    return {};
  }

  // Positions at the file holding seq after+1 (or the oldest there is).
  Status seek(uint64_t after) {
    const std::vector<events::LogFile> files = events::listLogFiles(dir);
    if (files.empty()) {
      closeFile();
      file_first = 0;
      return {};
    }
    size_t pick = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      if (files[i].first_seq <= after + 1) pick = i;
    }
    return openFile(files[pick]);
  }

  // Reads more of the active file; false at its end.
  bool fill() {
    if (fd < 0) return false;
    if (pos > 0) {
      buf.erase(0, pos);
      pos = 0;
    }
    char chunk[64 << 10];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
    return true;
  }

  // The next whole line, or false when none is complete yet.
  bool nextLine(std::string_view& line) {
    for (;;) {
      const size_t nl = buf.find('\n', pos);
      if (nl != std::string::npos) {
        if (overlong) {
          overlong = false;
          first_line = false;
          pos = nl + 1;
          ++skipped;
          continue;
        }
        line = std::string_view(buf).substr(pos, nl - pos);
        pos = nl + 1;
        if (std::exchange(first_line, false) && log_id.empty()) log_id = logIdOf(std::string(line));
        return true;
      }
      if (buf.size() - pos > kMaxLine) {
        overlong = true;
        buf.clear();
        pos = 0;
      }
      if (!fill()) return false;
    }
  }

  // At the end of the active file: moves to the next file once one exists.
  // The old file gets one more read first (its writer finished it before
  // starting the next). A partial line left at its end (a crash) is no record.
  bool advance() {
    if (fd < 0) {
      const auto files = events::listLogFiles(dir);
      if (files.empty()) return false;
      return openFile(files.front()).ok();
    }
    const auto files = events::listLogFiles(dir);
    auto it = std::find_if(files.begin(), files.end(),
                           [&](const events::LogFile& f) { return f.first_seq > file_first; });
    if (it == files.end()) {
      // The active file may have been removed by retention under us.
      if (!fs::exists(path) && !files.empty()) return openFile(files.front()).ok();
      return false;
    }
    std::string_view line;
    if (nextLine(line)) {  // more arrived: not at the end after all
      pos -= line.size() + 1;
      return true;
    }
    return openFile(*it).ok();
  }
};

Shipper::Shipper(ShipperOptions opts, TlsContext ctx, Notify notify)
    : opts_(std::move(opts)),
      ctx_(std::move(ctx)),
      notify_(std::move(notify)),
      tail_(std::make_unique<Tail>()) {
  tail_->dir = opts_.log_dir;
  procid_ = std::to_string(::getpid());
}

Shipper::~Shipper() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

// Two shippers with one state file would each resend and save over the
// other's acknowledged position; the second is refused, naming the first.
Status Shipper::lockState() {
  const std::string path = opts_.state_file + ".lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd_ < 0) return makeError(errnoText(path));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
    if (n > 0 && pid[n - 1] == '\n') pid[n - 1] = 0;
    if (err == EWOULDBLOCK) {
      return makeError(strCat(opts_.state_file, ": another shipper (pid ", n > 0 ? pid : "?",
                              ") is shipping with this state file"));
    }
    return makeError(strCat(path, ": ", std::strerror(err)));
  }
  const std::string me = strCat(std::to_string(::getpid()), "\n");
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, me.data(), me.size(), 0) < 0)
    return makeError(errnoText(path));
  return {};
}

Result<std::unique_ptr<Shipper>> Shipper::create(ShipperOptions opts, Notify notify) {
  if (opts.log_dir.empty()) return makeError("no log directory to ship");
  if (opts.host.empty()) return makeError("no collector to ship to");
  if (!fs::is_directory(opts.log_dir)) return makeError(strCat(opts.log_dir, ": not a directory"));
  if (opts.facility < 0 || opts.facility > 23) return makeError("syslog facility must be 0-23");
  if (opts.window == 0) opts.window = 1;
  if (opts.hostname.empty()) {
    char h[256] = {};
    ::gethostname(h, sizeof h - 1);
    opts.hostname = h;
  }
  if (opts.state_file.empty()) {
    std::string target = strCat(opts.host, "-", std::to_string(opts.port));
    for (char& c : target) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
    }
    opts.state_file = (fs::path(opts.log_dir) / strCat("ship-", target, ".state")).string();
  }
  auto ctx = TlsContext::client(opts.tls);
  if (!ctx) return ctx.error();
  std::unique_ptr<Shipper> s(new Shipper(std::move(opts), std::move(*ctx), std::move(notify)));
  if (Status st = s->lockState(); !st) return st.error();
  if (Status st = s->loadState(); !st) return st.error();
  return s;
}

Status Shipper::loadState() {
  FILE* f = std::fopen(opts_.state_file.c_str(), "re");
  if (!f) {
    if (errno == ENOENT) return {};
    return makeError(errnoText(opts_.state_file));
  }
  char line[256] = {};
  const bool got = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  char magic[32] = {}, id[80] = {};
  unsigned long long seq = 0;
  if (!got || std::sscanf(line, "%31s %79s %llu", magic, id, &seq) != 3 || kStateMagic != magic) {
    return makeError(strCat(opts_.state_file,
                            ": not a shipper state file (remove it to ship the whole log again)"));
  }
  log_id_ = id;
  acked_ = seq;
  saved_ = seq;
  stats_.acked_seq = seq;
  return {};
}

void Shipper::saveState(bool force) {
  if (acked_ == saved_) return;
  const TimeNs now = monotonicNs();
  if (!force && now - saved_at_ < 200'000'000ull) return;
  const std::string text =
      strCat(kStateMagic, " ", log_id_.empty() ? "-" : log_id_, " ", std::to_string(acked_), "\n");
  if (Status st = writeFileAtomically(opts_.state_file, text, 0640); !st) {
    notify_(strCat("cannot save the state: ", st.error().message));
    return;
  }
  saved_ = acked_;
  saved_at_ = now;
}

Status Shipper::run(const std::atomic<bool>& stop) {
  TimeNs backoff = 200'000'000ull;
  bool done = false;
  while (!stop.load() && !done) {
    Status st = session(stop, done);
    saveState(true);
    if (done || stop.load()) break;
    if (!st) {
      notify_(st.error().message);
      // Wait, then try again: the records are safe in the log meanwhile.
      const TimeNs until = monotonicNs() + backoff;
      while (!stop.load() && monotonicNs() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      backoff = std::min(backoff * 2, opts_.retry_max_ns);
    } else {
      backoff = 200'000'000ull;
    }
  }
  saveState(true);
  return {};
}

Status Shipper::session(const std::atomic<bool>& stop, bool& done) {
  const std::string target = strCat(opts_.host, ":", std::to_string(opts_.port));
  auto conn =
      TlsStream::connect(ctx_, opts_.host, opts_.port, opts_.server_name, opts_.connect_timeout_ms);
  if (!conn) {
    ++stats_.connect_failures;
    return makeError(strCat("collector ", target, ": ", conn.error().message));
  }
  ++stats_.connects;
  notify_(strCat("connected to ", target, " (", conn->peerName(), "); shipping from record ",
                 std::to_string(acked_ + 1)));
  if (Status st = tail_->seek(acked_); !st) return st;
  if (!log_id_.empty() && !tail_->log_id.empty() && tail_->log_id != log_id_) {
    notify_(strCat(opts_.log_dir, " holds log ", tail_->log_id, ", the state file log ", log_id_,
                   ": shipping the new log from its start"));
    acked_ = 0;
    if (Status st = tail_->seek(0); !st) return st;
  }
  uint64_t sent = acked_;
  TimeNs last_ack = monotonicNs();
  bool ack_warned = false;
  FrameDecoder acks(4096);
  std::string batch, msg;
  char rbuf[4096];

  // Reads acknowledgements; waits up to wait_ms for the first.
  auto pumpAcks = [&](int wait_ms) -> Status {
    for (int round = 0; round < 64; ++round) {
      auto n = conn->read(rbuf, sizeof rbuf, round == 0 ? wait_ms : 0);
      if (!n) return makeError(strCat("collector ", target, ": ", n.error().message));
      if (*n == 0) return {};
      if (!opts_.acks) continue;  // a plain receiver should send nothing; ignore it
      acks.feed(std::string_view(rbuf, *n));
      std::string_view frame;
      while (acks.next(frame)) {
        std::string id;
        uint64_t seq = 0;
        if (!parseAck(frame, id, seq) || id != tail_->log_id) continue;
        if (seq > acked_ && seq <= sent) {
          acked_ = seq;
          stats_.acked_seq = seq;
          last_ack = monotonicNs();
        }
      }
      if (acks.failed())
        return makeError(strCat("collector ", target, ": bad acknowledgement: ", acks.error()));
    }
    return {};
  };

  while (!stop.load()) {
    batch.clear();
    std::string_view line;
    while (batch.size() < kBatchBytes && sent - acked_ < opts_.window) {
      if (!tail_->nextLine(line)) {
        if (!tail_->advance()) break;
        continue;
      }
      events::RecordTail t;
      if (!events::parseRecordTail(line, t)) {
        ++stats_.skipped_lines;
        continue;
      }
      if (tail_->log_id.empty()) {  // a file that does not begin with its log's file record
        ++stats_.skipped_lines;
        continue;
      }
      if (t.seq <= sent) continue;  // shipped before (a resend starts at its file's beginning)
      log_id_ = tail_->log_id;
      msg.clear();
      formatRecordMessage(line, tail_->log_id, opts_.facility, opts_.hostname, procid_, msg);
      appendOctetCounted(msg, batch);
      sent = t.seq;
      ++stats_.records;
    }
    stats_.skipped_lines += std::exchange(tail_->skipped, 0);
    if (!batch.empty()) {
      if (Status st = conn->writeAll(batch, 30000); !st)
        return makeError(strCat("collector ", target, ": ", st.error().message));
      stats_.bytes += batch.size();
      if (!opts_.acks) {
        acked_ = sent;
        stats_.acked_seq = sent;
      }
      if (Status st = pumpAcks(0); !st) return st;
    } else {
      if (!opts_.follow && acked_ == sent) {
        done = true;
        conn->finish(10000);  // the peer reads everything before the connection goes
        return {};
      }
      if (Status st = pumpAcks(static_cast<int>(opts_.poll_ns / 1000000)); !st) return st;
    }
    if (opts_.acks && sent > acked_ && !ack_warned &&
        monotonicNs() - last_ack > opts_.ack_warn_ns) {
      ack_warned = true;
      notify_(strCat("no acknowledgement from ", target, " for ",
                     std::to_string(opts_.ack_warn_ns / 1000000000ull),
                     " s; if it is not a Palisade collector (rsyslog), ship with --no-acks"));
    }
    saveState(false);
  }
  conn->close();
  return {};
}

}  // namespace palisade::shipping

#include "shipping/collector.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "core/json_writer.h"
#include "core/net.h"
#include "core/strings.h"
#include "events/chain_log.h"
#include "events/event.h"
#include "events/log_verify.h"
#include "shipping/syslog.h"

namespace palisade::shipping {
namespace fs = std::filesystem;

namespace {

constexpr size_t kDedupRing = 4096;  // the shipper's default window: every legitimate resend

// A path component from a name a peer chose: [A-Za-z0-9._-], never "." or "..".
std::string safeName(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 128)) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty() || out.find_first_not_of('.') == std::string::npos) out = "_" + out;
  return out;
}

// The number after `key` (e.g. "\"interval_ms\":") in a record's text, or 0.
uint64_t numberAfter(std::string_view text, std::string_view key) {
  const size_t at = text.find(key);
  if (at == std::string_view::npos) return 0;
  uint64_t v = 0;
  const char* p = text.data() + at + key.size();
  std::from_chars(p, text.data() + text.size(), v);
  return v;
}

bool writeAllFd(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

// One source: a log (log_id) from one peer (certificate name).
struct Source {
  std::mutex mu;
  std::string name;  // PEER/LOG_ID
  std::string dir, peer, log_id;
  bool ready = false;  // recovered from the store
  int fd = -1;
  uint64_t file_bytes = 0;
  std::string pending;  // records accepted, not yet written
  uint64_t last_seq = 0;
  events::Digest last_hash{};
  uint64_t stored_seq = 0;  // on disk (acknowledgeable)
  std::array<std::pair<uint64_t, events::Digest>, kDedupRing> recent{};
  std::unique_ptr<events::LogVerifier> verifier;
  events::Sha256 sha;
  size_t problems_seen = 0;
  TimeNs last_seen = 0;  // monotonic
  TimeNs heartbeat_ns = 0;
  bool stopped = false;  // feed_stopped raised and not yet resumed
  bool closed = false;   // the source's final checkpoint arrived
  // The connection that sends this source's records. A newer connection
  // takes the source over (the older one may be a shipper that died without
  // its connection closing); the older one is closed at its next record, so
  // records of two senders never interleave.
  uint64_t owner = 0;
};

struct Collector::Impl {
  CollectorOptions opts;
  TlsContext ctx;
  int listen_fd = -1;
  uint16_t port = 0;
  CollectorStats stats;
  std::mutex sources_mu;
  std::map<std::string, std::unique_ptr<Source>> sources;
  std::mutex alarm_mu;
  int alarm_fd = -1;
  std::mutex syslog_mu;
  std::map<std::string, std::pair<int, uint64_t>> syslog_files;  // peer -> fd, bytes
  struct Conn {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Conn> conns;
  std::atomic<size_t> active{0};
  std::atomic<uint64_t> next_conn_id{1};

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (alarm_fd >= 0) ::close(alarm_fd);
    for (auto& [peer, f] : syslog_files)
      ::close(f.first);
    for (auto& [name, s] : sources) {
      if (s->fd >= 0) ::close(s->fd);
    }
  }

  void alarm(std::string_view kind, const Source* s, std::string_view peer,
             const std::string& detail) {
    ++stats.alarms;
    std::string line;
    JsonWriter w(line);
    events::beginEve(w, wallClockNs(), "alarm");
    w.key("alarm").beginObject().field("kind", kind);
    const bool info = kind == "feed_resumed" || kind == "source_closed";
    w.field("severity", info ? "info" : "critical");
    if (s) w.field("source", s->name).field("log_id", s->log_id);
    w.field("peer", peer).field("detail", detail).endObject().endObject();
    line += '\n';
    std::lock_guard lock(alarm_mu);
    if (alarm_fd >= 0) {
      (void)writeAllFd(alarm_fd, line);
      (void)::fdatasync(alarm_fd);
    }
    std::fprintf(stderr, "palisade collector: %s %s %s: %s\n", info ? "notice" : "ALARM",
                 std::string(kind).c_str(), s ? s->name.c_str() : std::string(peer).c_str(),
                 detail.c_str());
  }

  Source& source(const std::string& peer, const std::string& log_id) {
    const std::string name = strCat(safeName(peer), "/", safeName(log_id));
    std::lock_guard lock(sources_mu);
    auto& slot = sources[name];
    if (!slot) {
      slot = std::make_unique<Source>();
      slot->name = name;
      slot->peer = peer;
      slot->log_id = log_id;
      slot->dir = (fs::path(opts.store) / safeName(peer) / safeName(log_id)).string();
    }
    return *slot;
  }

  // Reads where the stored copy ends (after a collector restart); a partial
  // record at the end was never acknowledged and is cut off.
  Status recover(Source& s) {
    std::error_code ec;
    fs::create_directories(s.dir, ec);
    if (ec) return makeError(strCat(s.dir, ": ", ec.message()));
    std::vector<events::SigningKey> keys;
    for (const events::SigningKey& k : opts.keys)
      keys.push_back(k.sharePublic());
    s.verifier = std::make_unique<events::LogVerifier>(std::move(keys));
    s.verifier->beginFile(s.dir, false);
    s.problems_seen = 0;
    s.last_seq = 0;
    s.last_hash = {};
    s.pending.clear();
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    auto files = events::listLogFiles(s.dir);
    // A newest file without a whole line: killed between creating it and
    // writing its first record. Nothing in it was acknowledged; it goes, and
    // the chain goes on from the file before (else every resent record
    // would look new and be stored again).
    while (!files.empty()) {
      auto torn = events::tornFileBytes(files.back().path);
      if (!torn) return torn.error();
      if (*torn < 0) break;
      if (::unlink(files.back().path.c_str()) != 0) return makeError(errnoText(files.back().path));
      std::fprintf(stderr, "palisade collector: %s: removed %s (%lld bytes, no whole record)\n",
                   s.name.c_str(), files.back().path.c_str(), static_cast<long long>(*torn));
      files.pop_back();
    }
    if (!files.empty()) {
      const std::string& path = files.back().path;
      auto end = events::readFileEnd(path);
      if (!end) return end.error();
      s.fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (s.fd < 0) return makeError(errnoText(path));
      const off_t size = ::lseek(s.fd, 0, SEEK_END);
      if (end->partial_bytes > 0) {
        if (::ftruncate(s.fd, size - static_cast<off_t>(end->partial_bytes)) != 0)
          return makeError(errnoText(path));
      }
      s.file_bytes = static_cast<uint64_t>(size) - end->partial_bytes;
      if (end->has_record) {
        s.last_seq = end->last.seq;
        s.last_hash = end->last.hash;
        s.verifier->line(end->last_line);  // so the next record's link is checked
        s.problems_seen = s.verifier->report().problems.size();
        s.recent[s.last_seq % kDedupRing] = {s.last_seq, s.last_hash};
      }
    }
    s.stored_seq = s.last_seq;
    s.ready = true;
    return {};
  }

  Status openStoreFile(Source& s, uint64_t first_seq) {
    if (Status st = flush(s); !st) return st;
    if (s.fd >= 0) ::close(s.fd);
    const std::string path = (fs::path(s.dir) / events::logFileName(first_seq)).string();
    s.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (s.fd < 0) return makeError(errnoText(path));
    s.file_bytes = static_cast<uint64_t>(::lseek(s.fd, 0, SEEK_END));
    return {};
  }

  // Writes what was accepted and makes it durable; then it may be acknowledged.
  Status flush(Source& s) {
    if (s.pending.empty()) return {};
    if (!writeAllFd(s.fd, s.pending) || ::fdatasync(s.fd) != 0) {
      const std::string why = std::strerror(errno);
      (void)::ftruncate(s.fd, static_cast<off_t>(s.file_bytes));
      s.ready = false;  // re-read the store before accepting more
      return makeError(strCat(s.dir, ": ", why));
    }
    s.file_bytes += s.pending.size();
    s.pending.clear();
    s.stored_seq = s.last_seq;
    return {};
  }

  // One Palisade record for source s (its lock held). False: the connection must close.
  bool record(Source& s, std::string_view peer, std::string_view text, uint64_t sd_seq) {
    events::RecordTail t;
    if (!events::parseRecordTail(text, t) || t.seq != sd_seq) {
      ++stats.malformed;
      alarm("chain_break", &s, peer,
            strCat("a message that is not a chained record (or names another seq), after record ",
                   std::to_string(s.last_seq)));
      return true;
    }
    s.last_seen = monotonicNs();
    if (s.stopped) {
      s.stopped = false;
      alarm("feed_resumed", &s, peer, strCat("records arrive again, from ", std::to_string(t.seq)));
    }
    if (t.seq <= s.last_seq) {
      ++stats.duplicates;
      const auto& slot = s.recent[t.seq % kDedupRing];
      if (slot.first == t.seq && slot.second != t.hash) {
        alarm(
            "chain_break", &s, peer,
            strCat("record ", std::to_string(t.seq),
                   " was sent again with different content (hash ", events::toHex(t.hash.data(), 8),
                   "..., stored ", events::toHex(slot.second.data(), 8), "...)"));
      } else if (slot.first == t.seq && s.sha(text.substr(0, t.body_len)) != t.hash) {
        // The stored record's hash, on content that does not hash to it.
        alarm("chain_break", &s, peer,
              strCat("record ", std::to_string(t.seq),
                     " was sent again with different content (its hash ",
                     events::toHex(t.hash.data(), 8),
                     "... is the stored record's, but the content does not hash to it)"));
      }
      return true;
    }
    const bool is_log = text.find("\"event_type\":\"log\"") != std::string_view::npos;
    const bool is_file = is_log && text.find("\"event\":\"file\"") != std::string_view::npos;
    if (t.seq > s.last_seq + 1 && s.last_seq != 0) {
      alarm("chain_break", &s, peer,
            strCat("records ", std::to_string(s.last_seq + 1), "-", std::to_string(t.seq - 1),
                   " never arrived"));
    }
    if (is_file || s.fd < 0) {
      if (Status st = openStoreFile(s, t.seq); !st) {
        alarm("store_failed", &s, peer, st.error().message);
        return false;
      }
      if (is_file) s.verifier->beginFile(s.dir);
    }
    if (is_log) {
      if (uint64_t ms = numberAfter(text, "\"heartbeat_ms\":"); ms) s.heartbeat_ns = ms * 1000000;
      if (uint64_t ms = numberAfter(text, "\"interval_ms\":"); ms) s.heartbeat_ns = ms * 1000000;
      const bool final_cp = text.find("\"event\":\"checkpoint\"") != std::string_view::npos &&
                            text.find("\"final\":true") != std::string_view::npos;
      if (final_cp) {
        s.closed = true;
        alarm("source_closed", &s, peer,
              strCat("the source closed its log at record ", std::to_string(t.seq)));
      } else if (is_file) {
        s.closed = false;
      }
    }
    s.verifier->line(text);
    const auto& found = s.verifier->report().problems;
    for (size_t i = s.problems_seen; i < found.size(); ++i) {
      alarm("chain_break", &s, peer,
            strCat("record ", std::to_string(found[i].seq), ": ", found[i].kind, ": ",
                   found[i].detail));
    }
    s.problems_seen = found.size();
    if (!s.verifier->report().log_id.empty() && s.verifier->report().log_id != s.log_id &&
        is_file) {
      alarm("chain_break", &s, peer,
            strCat("the records belong to log ", s.verifier->report().log_id,
                   ", not the log_id the messages name"));
    }
    s.pending.append(text);
    s.pending += '\n';
    s.last_seq = t.seq;
    s.last_hash = t.hash;
    s.recent[t.seq % kDedupRing] = {t.seq, t.hash};
    ++stats.records;
    if (s.pending.size() >= (1u << 20)) {
      if (Status st = flush(s); !st) {
        alarm("store_failed", &s, peer, st.error().message);
        return false;
      }
    }
    return true;
  }

  void storeSyslog(const std::string& peer, std::string_view frame) {
    ++stats.syslog_messages;
    std::string line;
    line.reserve(frame.size() + 1);
    for (char c : frame) {
      if (c == '\n') {
        line += "#012";
      } else if (c == '\r') {
        line += "#015";
      } else {
        line += c;
      }
    }
    line += '\n';
    std::lock_guard lock(syslog_mu);
    auto& [fd, bytes] = syslog_files[peer];
    const fs::path dir = fs::path(opts.store) / safeName(peer);
    const std::string path = (dir / "syslog.log").string();
    if (fd > 0 && bytes + line.size() > opts.max_syslog_file_bytes) {
      ::close(fd);
      fd = 0;
      std::error_code ec;
      fs::rename(path, path + ".1", ec);
    }
    if (fd <= 0) {
      std::error_code ec;
      fs::create_directories(dir, ec);
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd < 0) {
        fd = 0;
        alarm("store_failed", nullptr, peer, errnoText(path));
        return;
      }
      bytes = static_cast<uint64_t>(::lseek(fd, 0, SEEK_END));
    }
    if (writeAllFd(fd, line)) bytes += line.size();
  }

  void serve(int fd, std::string addr, const std::atomic<bool>& stop) {
    auto tls = TlsStream::accept(ctx, fd, opts.handshake_timeout_ms);
    if (!tls) {
      ++stats.handshake_failures;
      std::fprintf(stderr, "palisade collector: %s: refused: %s\n", addr.c_str(),
                   tls.error().message.c_str());
      return;
    }
    ++stats.connections;
    const std::string peer = tls->peerName().empty() ? addr : tls->peerName();
    std::fprintf(stderr, "palisade collector: %s connected as %s\n", addr.c_str(), peer.c_str());
    FrameDecoder frames(opts.max_frame);
    std::vector<char> buf(64 << 10);
    const uint64_t me = next_conn_id.fetch_add(1);
    std::vector<Source*> owned;  // sources this connection has sent records of
    // Sources this read touched, and the highest seq each sent on this connection.
    std::vector<std::pair<Source*, uint64_t>> touched;
    std::string why = "closed";
    while (!stop.load()) {
      auto n = tls->read(buf.data(), buf.size(), 250);
      if (!n) {
        why = n.error().message;
        break;
      }
      if (*n == 0) continue;
      stats.bytes += *n;
      frames.feed(std::string_view(buf.data(), *n));
      // Take what else has arrived (up to 1 MiB), so one fdatasync and one
      // acknowledgement cover many records.
      bool closed = false;
      for (size_t got = *n; got < (1u << 20);) {
        auto more = tls->read(buf.data(), buf.size(), 0);
        if (!more) {
          why = more.error().message;
          closed = true;
          break;
        }
        if (*more == 0) break;
        stats.bytes += *more;
        got += *more;
        frames.feed(std::string_view(buf.data(), *more));
      }
      std::string_view frame;
      bool keep = true;
      touched.clear();
      while (keep && frames.next(frame)) {
        // Senders such as rsyslog end each framed message with LF (their template's).
        if (frame.ends_with('\n')) frame.remove_suffix(1);
        if (frame.ends_with('\r')) frame.remove_suffix(1);
        SyslogMessage m;
        std::string err;
        if (!parseSyslog(frame, m, err)) {
          ++stats.malformed;
          continue;
        }
        const std::string* log_id = m.sdParam(kSdId, "log");
        const std::string* seq_text = m.sdParam(kSdId, "seq");
        if (!log_id || !seq_text) {
          storeSyslog(peer, frame);
          continue;
        }
        uint64_t seq = 0;
        std::from_chars(seq_text->data(), seq_text->data() + seq_text->size(), seq);
        if (log_id->empty()) {  // a record of no log cannot join any chain
          ++stats.malformed;
          alarm("chain_break", nullptr, peer,
                strCat("record ", *seq_text, " names no log (an empty log id); not stored"));
          continue;
        }
        Source& s = source(peer, *log_id);
        std::lock_guard lock(s.mu);
        if (s.owner != me) {
          if (std::find(owned.begin(), owned.end(), &s) != owned.end()) {
            ++stats.superseded;
            why = strCat("superseded: a newer connection sends ", s.name);
            keep = false;
            break;
          }
          if (s.owner != 0) {
            std::fprintf(stderr,
                         "palisade collector: %s (%s) takes %s over from an older connection\n",
                         addr.c_str(), peer.c_str(), s.name.c_str());
          }
          s.owner = me;
          owned.push_back(&s);
        }
        if (!s.ready) {
          if (Status st = recover(s); !st) {
            alarm("store_failed", &s, peer, st.error().message);
            keep = false;
            break;
          }
        }
        keep = record(s, peer, m.msg, seq);
        auto it = std::find_if(touched.begin(), touched.end(),
                               [&](const auto& e) { return e.first == &s; });
        if (it == touched.end()) {
          touched.emplace_back(&s, seq);
        } else {
          it->second = std::max(it->second, seq);
        }
      }
      if (frames.failed()) {
        ++stats.malformed;
        why = strCat("framing: ", frames.error());
        keep = false;
      }
      // Durable first, then acknowledged: up to what this sender sent and
      // was looked at (a resend is acknowledged once it has been compared).
      std::string acks;
      for (auto [s, sent] : touched) {
        std::lock_guard lock(s->mu);
        if (Status st = flush(*s); !st) {
          alarm("store_failed", s, peer, st.error().message);
          keep = false;
          continue;
        }
        appendOctetCounted(formatAck(s->log_id, std::min(s->stored_seq, sent)), acks);
      }
      if (!acks.empty() && !closed) {
        if (Status st = tls->writeAll(acks, 5000); !st) {
          why = st.error().message;
          break;
        }
      }
      if (!keep || closed) break;
    }
    for (Source* s : owned) {
      std::lock_guard lock(s->mu);
      if (s->owner == me) s->owner = 0;
    }
    tls->close();
    std::fprintf(stderr, "palisade collector: %s (%s) disconnected: %s\n", addr.c_str(),
                 peer.c_str(), why.c_str());
  }

  void monitor() {
    const TimeNs now = monotonicNs();
    std::lock_guard lock(sources_mu);
    for (auto& [name, sp] : sources) {
      Source& s = *sp;
      std::lock_guard slock(s.mu);
      const TimeNs hb = s.heartbeat_ns ? s.heartbeat_ns : opts.default_heartbeat_ns;
      if (!hb || s.closed || s.stopped || s.last_seen == 0) continue;
      // Two heartbeats missed, and half an interval more for the record's
      // way through the writer, the shipper's poll and the network: a busy
      // host's late heartbeat is not a stopped feed.
      if (now - s.last_seen > 2 * hb + hb / 2) {
        s.stopped = true;
        alarm("feed_stopped", &s, s.peer,
              strCat("nothing since record ", std::to_string(s.last_seq), " for ",
                     std::to_string((now - s.last_seen) / 1000000), " ms (heartbeat ",
                     std::to_string(hb / 1000000), " ms)"));
      }
    }
  }
};

Collector::Collector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collector::~Collector() = default;

uint16_t Collector::port() const {
  return impl_->port;
}

const CollectorStats& Collector::stats() const {
  return impl_->stats;
}

Result<std::unique_ptr<Collector>> Collector::create(CollectorOptions opts) {
  if (opts.store.empty()) return makeError("no store directory");
  auto ctx = TlsContext::server(opts.tls);
  if (!ctx) return ctx.error();
  std::error_code ec;
  fs::create_directories(opts.store, ec);
  if (ec) return makeError(strCat(opts.store, ": ", ec.message()));
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(opts);
  impl->ctx = std::move(*ctx);
  const std::string alarms = (fs::path(impl->opts.store) / "alarms.jsonl").string();
  impl->alarm_fd = ::open(alarms.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (impl->alarm_fd < 0) return makeError(errnoText(alarms));

  const auto addr = IpAddr::parse(impl->opts.listen_host);
  if (!addr) return makeError(strCat(impl->opts.listen_host, ": not an IP address to listen on"));
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (addr->isV4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(impl->opts.listen_port);
    std::memcpy(&a->sin_addr, addr->b.data() + 12, 4);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(impl->opts.listen_port);
    std::memcpy(&a->sin6_addr, addr->b.data(), 16);
    len = sizeof *a;
  }
  const std::string where =
      strCat(impl->opts.listen_host, ":", std::to_string(impl->opts.listen_port));
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return makeError(errnoText("socket"));
  impl->listen_fd = fd;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return makeError(errnoText(where));
  if (::listen(fd, 128) != 0) return makeError(errnoText(where));
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    impl->port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                               : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  return std::unique_ptr<Collector>(new Collector(std::move(impl)));
}

Status Collector::run(const std::atomic<bool>& stop) {
  Impl& m = *impl_;
  TimeNs last_monitor = monotonicNs();
  while (!stop.load()) {
    pollfd p{m.listen_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(m.opts.monitor_ns / 1000000));
    if (r < 0 && errno != EINTR) return makeError(errnoText("poll"));
    // Reap finished connections.
    for (auto it = m.conns.begin(); it != m.conns.end();) {
      if (it->done.load()) {
        it->thread.join();
        it = m.conns.erase(it);
      } else {
        ++it;
      }
    }
    if (monotonicNs() - last_monitor >= m.opts.monitor_ns) {
      last_monitor = monotonicNs();
      m.monitor();
    }
    if (r <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(m.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    char host[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    std::string addr = strCat(host, ":", std::to_string(port));
    if (m.conns.size() >= m.opts.max_connections) {
      ++m.stats.rejected_connections;
      std::fprintf(stderr, "palisade collector: %s: refused: %zu connections already\n",
                   addr.c_str(), m.conns.size());
      ::close(fd);
      continue;
    }
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    Impl::Conn& c = m.conns.emplace_back();
    c.thread = std::thread([&m, &c, fd, addr = std::move(addr), &stop] {
      m.serve(fd, addr, stop);
      c.done.store(true);
    });
  }
  for (auto& c : m.conns)
    c.thread.join();
  m.conns.clear();
  // What was accepted is on disk already (flushed before every acknowledgement).
  return {};
}

}  // namespace palisade::shipping

#include "flow/flow_table.h"

#include <algorithm>
#include <cstring>

#include "core/hash.h"
#include "core/probe.h"

namespace palisade::flow {
namespace {

using namespace slot;
constexpr uint32_t kMaxEntries = 1u << 25;
constexpr uint32_t kProbeEvict = 8;  // index slots examined for a victim when full

// Sequence-number comparisons modulo 2^32 (RFC 1982).
bool before(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
bool after(uint32_t a, uint32_t b) {
  return before(b, a);
}

}  // namespace

const char* toString(TcpState s) {
  switch (s) {
    case TcpState::None:
      return "none";
    case TcpState::SynSent:
      return "syn_sent";
    case TcpState::SynRecv:
      return "syn_recv";
    case TcpState::Established:
      return "established";
    case TcpState::FinWait:
      return "fin_wait";
    case TcpState::CloseWait:
      return "close_wait";
    case TcpState::LastAck:
      return "last_ack";
    case TcpState::TimeWait:
      return "time_wait";
    case TcpState::Close:
      return "close";
  }
  return "?";
}

FlowTable::FlowTable(const Config& cfg) : cfg_(cfg) {
  cfg_.capacity = std::clamp<uint32_t>(cfg_.capacity, 1, kMaxEntries - 1);
  seed_ = (cfg_.seed ? cfg_.seed : randomSeed()) * 0x9e3779b97f4a7c15ULL;
  // Zeroed and untouched until used: each flow is written whole when inserted.
  flows_ = HugeArray<Flow>(cfg_.capacity);
  used_ = HugeArray<uint8_t>(cfg_.capacity);
  free_.reserve(cfg_.capacity);
  for (uint32_t i = cfg_.capacity; i-- > 0;)
    free_.push_back(i);
  // Two keys per connection at load <= 0.8.
  slots_ = HugeArray<uint32_t>(static_cast<size_t>(cfg_.capacity) * 5 / 2 + 1);
  std::fill(slots_.begin(), slots_.end(), kEmptySlot);
  lines_.assign((slots_.size() + kLineSlots * 64 - 1) / (kLineSlots * 64), 0);
  pool_.reserve(1024);
}

size_t FlowTable::memoryBytes() const {
  return flows_.size() * sizeof(Flow) + used_.size() + slots_.size() * 4 + lines_.size() * 8 +
         free_.capacity() * 4 + per_nic_.capacity() * 4 + pool_.capacity() * sizeof(PoolEntry);
}

uint64_t FlowTable::hash(const FlowKey& k) const {
  // Gathered in words from the key's fields, which were written just before
  // (field by field): a word read over several narrow stores waits for them
  // to retire. The ports go in swapped, so that the compiler cannot merge
  // zone, sport and dport back into one 64-bit load.
  uint64_t w[6];
  std::memcpy(w, k.src.b.data(), 16);
  std::memcpy(w + 2, k.dst.b.data(), 16);
  w[4] = uint64_t{k.zone} | uint64_t{k.dport} << 32 | uint64_t{k.sport} << 48;
  w[5] = k.proto;
  static_assert(sizeof(FlowKey) == 44 && sizeof w >= sizeof(FlowKey));
  return hashBytes(w, sizeof(FlowKey), seed_);
}

Hit FlowTable::probe(const FlowKey& k, uint64_t h) const {
  const uint32_t tag = tagOf(h);
  const size_t n = slots_.size();
  for (size_t i = home(h);; i = i + 1 == n ? 0 : i + 1) {
    const uint32_t s = slots_[i];
    if (s == kEmptySlot) return {};
    if (slotTag(s) != tag) continue;
    const Flow& f = flows_[slotIdx(s)];
    const Dir d = slotDir(s);
    if (keyMatches(f, d, k)) return {slotIdx(s), d};
  }
}

void FlowTable::indexAdd(uint64_t h, uint32_t idx, Dir d) {
  const size_t n = slots_.size();
  size_t i = home(h);
  while (slots_[i] != kEmptySlot)
    i = i + 1 == n ? 0 : i + 1;
  slots_[i] = idx << 7 | tagOf(h) << 1 | static_cast<uint32_t>(d);
  markLine(i);
}

bool FlowTable::indexSummaryExact() const {
  for (size_t first = 0; first < slots_.size(); first += kLineSlots) {
    bool any = false;
    for (size_t j = first; j < std::min(first + kLineSlots, slots_.size()); ++j)
      any |= slots_[j] != kEmptySlot;
    if (any != lineUsed(first)) return false;
  }
  return true;
}

void FlowTable::unmarkLineIfEmpty(size_t i) {
  const size_t first = i / kLineSlots * kLineSlots;
  const size_t last = std::min(first + kLineSlots, slots_.size());
  for (size_t j = first; j < last; ++j)
    if (slots_[j] != kEmptySlot) return;
  const size_t line = i / kLineSlots;
  lines_[line / 64] &= ~(uint64_t{1} << (line % 64));
}

// Backward-shift deletion (Knuth 6.4 Algorithm R): no tombstones, so probe
// lengths do not grow with churn.
void FlowTable::indexRemove(const FlowKey& k, uint32_t idx, Dir d) {
  const size_t n = slots_.size();
  const uint32_t want = idx << 7 | tagOf(hash(k)) << 1 | static_cast<uint32_t>(d);
  size_t i = home(hash(k));
  while (slots_[i] != want) {
    if (slots_[i] == kEmptySlot) return;  // not indexed (cannot happen for a live flow)
    i = i + 1 == n ? 0 : i + 1;
  }
  const size_t hole = backwardShift(
      i, n, [&](size_t j) { return slots_[j] != kEmptySlot; },
      [&](size_t j) {
        const Flow& f = flows_[slotIdx(slots_[j])];
        return home(hash(slotDir(slots_[j]) == Dir::Orig ? origKey(f) : replyKey(f)));
      },
      [&](size_t from, size_t to) { slots_[to] = slots_[from]; });
  // The one slot this removal emptied; every slot moved into was in use, so
  // its line's bit is set already.
  slots_[hole] = kEmptySlot;
  unmarkLineIfEmpty(hole);
}

uint16_t FlowTable::internAddr(const IpAddr& a, uint32_t zone) {
  for (size_t i = 0; i < pool_.size(); ++i)
    if (pool_[i].addr == a && pool_[i].zone == zone) return static_cast<uint16_t>(i);
  if (pool_.size() >= UINT16_MAX) return UINT16_MAX;
  pool_.push_back({a, zone});
  return static_cast<uint16_t>(pool_.size() - 1);
}

bool FlowTable::evictable(const Flow& f) const {
  if (f.proto == pkt::ipproto::kTcp)
    return f.tcp_state != TcpState::Established || !(f.flags & kAssured);
  return !(f.flags & kSeenReply);
}

uint32_t FlowTable::tryEvictNear(const FlowKey& k, uint32_t now_ms) {
  const size_t n = slots_.size();
  size_t i = home(hash(k));
  uint32_t victim = kNone;
  for (uint32_t seen = 0; seen < kProbeEvict; ++seen, i = i + 1 == n ? 0 : i + 1) {
    if (slots_[i] == kEmptySlot) continue;
    const uint32_t idx = slotIdx(slots_[i]);
    const Flow& f = flows_[idx];
    if (expired(f, now_ms)) return idx;
    if (evictable(f) && (victim == kNone || before(f.last_ms, flows_[victim].last_ms)))
      victim = idx;
  }
  return victim;
}

uint32_t FlowTable::insert(const FlowKey& orig, const NatSpec& nat, uint16_t nic, uint32_t now_ms,
                           InsertError* err) {
  *err = InsertError::None;
  if (nic != kNoNic && cfg_.per_nic_limit != 0 && nicCount(nic) >= cfg_.per_nic_limit) {
    *err = InsertError::NicQuota;
    return kNone;
  }
  if (free_.empty()) {
    const uint32_t victim = tryEvictNear(orig, now_ms);
    if (victim == kNone) {
      *err = InsertError::TableFull;
      return kNone;
    }
    erase(victim);
  }
  uint16_t nat_addr = 0;
  if (nat.kind != NatKind::None) {
    nat_addr = internAddr(nat.addr, nat.zone);
    if (nat_addr == UINT16_MAX) {
      *err = InsertError::PoolFull;
      return kNone;
    }
  }
  // Both keys hashed first, from the arguments (not read back from the flow
  // just written), and the reply's home slot fetched while the flow is
  // filled in: it is a cold line of the index.
  const uint64_t h_orig = hash(orig);
  const uint64_t h_reply = hash(replyOf(orig, nat.kind, nat.addr, nat.zone, nat.port));
  __builtin_prefetch(&slots_[home(h_reply)]);  // written below, used line or not
  const uint32_t idx = free_.back();
  free_.pop_back();
  high_water_ = std::max(high_water_, idx + 1);
  // Every field assigned (`f = Flow{}` was a rep stos over its 108 bytes).
  Flow& f = flows_[idx];
  static_assert(sizeof(Flow) == 108, "a new Flow field must be set here");
  f.src = orig.src;
  f.dst = orig.dst;
  f.zone = orig.zone;
  f.sport = orig.sport;
  f.dport = orig.dport;
  f.nat_port = nat.port;
  f.nat_addr = nat_addr;
  f.nic = nic;
  f.proto = orig.proto;
  f.nat = nat.kind;
  f.tcp_state = TcpState::None;
  f.flags = 0;
  f.wscale[0] = f.wscale[1] = 0xff;
  f.win[0] = f.win[1] = TcpWindow{0, 0, 0};
  f.action = 0;
  f.generation = 0;
  f.last_ms = f.report_ms = now_ms;
  f.packets[0] = f.packets[1] = 0;
  f.bytes[0] = f.bytes[1] = 0;
  used_[idx] = 1;
  ++live_;
  if (nic != kNoNic) {
    if (nic >= per_nic_.size()) per_nic_.resize(static_cast<size_t>(nic) + 1, 0);
    ++per_nic_[nic];
  }
  indexAdd(h_orig, idx, Dir::Orig);
  indexAdd(h_reply, idx, Dir::Reply);
  return idx;
}

void FlowTable::erase(uint32_t idx) {
  if (!used_[idx]) return;
  Flow& f = flows_[idx];
  if ((f.flags & kLimited) && erase_hook_) erase_hook_(erase_ctx_, idx, f);
  indexRemove(origKey(f), idx, Dir::Orig);
  indexRemove(replyKey(f), idx, Dir::Reply);
  if (f.nic != kNoNic && f.nic < per_nic_.size()) --per_nic_[f.nic];
  used_[idx] = 0;
  --live_;
  free_.push_back(idx);
}

uint32_t FlowTable::timeoutMs(const Flow& f) const {
  const Timeouts& t = cfg_.timeouts;
  uint32_t s;
  switch (f.proto) {
    case pkt::ipproto::kTcp:
      switch (f.tcp_state) {
        case TcpState::SynSent:
          s = t.tcp_syn_sent;
          break;
        case TcpState::SynRecv:
          s = t.tcp_syn_recv;
          break;
        case TcpState::Established:
          s = t.tcp_established;
          break;
        case TcpState::FinWait:
          s = t.tcp_fin_wait;
          break;
        case TcpState::CloseWait:
          s = t.tcp_close_wait;
          break;
        case TcpState::LastAck:
          s = t.tcp_last_ack;
          break;
        case TcpState::TimeWait:
          s = t.tcp_time_wait;
          break;
        default:
          s = t.tcp_close;
          break;
      }
      break;
    case pkt::ipproto::kUdp:
      s = (f.flags & kSeenReply) ? t.udp_stream : t.udp;
      break;
    case pkt::ipproto::kIcmp:
    case pkt::ipproto::kIcmpv6:
      s = t.icmp;
      break;
    default:
      s = t.other;
  }
  return std::min<uint32_t>(s, 0x7fffffffu / 1000) * 1000;
}

namespace {

struct Segment {
  uint32_t seq, ack, end, win;
  uint8_t flags;
};

Segment segmentOf(const pkt::Packet& p) {
  Segment s{};
  s.flags = p.tcp.flags;
  s.seq = p.tcp.seq;
  s.ack = p.tcp.ack;
  s.win = p.tcp.window;
  s.end = s.seq + p.payload_len + ((s.flags & pkt::tcpflag::kSyn) ? 1 : 0) +
          ((s.flags & pkt::tcpflag::kFin) ? 1 : 0);
  return s;
}

uint32_t scaled(uint32_t win, uint8_t wscale, uint8_t flags) {
  // Window fields of SYN segments are never scaled (RFC 7323 2.2).
  if ((flags & pkt::tcpflag::kSyn) || wscale == 0xff) return win;
  return win << std::min<uint8_t>(wscale, 14);
}

}  // namespace

Track FlowTable::start(Flow& f, const pkt::Packet& p, uint32_t now_ms) {
  using namespace pkt::tcpflag;
  const Segment s = segmentOf(p);
  const uint8_t fl = s.flags & (kSyn | kAck | kRst | kFin);
  TcpWindow& w = f.win[0];
  if (fl == kSyn) {
    f.tcp_state = TcpState::SynSent;
    if (p.tcp.opt.has_wscale) f.wscale[0] = p.tcp.opt.wscale;
    w.end = s.end;
    w.maxwin = std::max<uint32_t>(s.win, 1);
    w.maxend = s.end;
  } else if (cfg_.loose && !(fl & kRst) && !(fl & kSyn)) {
    // Mid-stream pickup: trust this segment, leave the peer's window unknown.
    f.tcp_state = TcpState::Established;
    f.flags |= kPickedUp;
    w.end = s.end;
    w.maxwin = std::max<uint32_t>(s.win, 1);
    w.maxend = s.end + w.maxwin;
  } else {
    return Track::NoSyn;
  }
  f.packets[0] = 1;
  f.bytes[0] = p.wire_len;
  f.last_ms = now_ms;
  return Track::Ok;
}

Track FlowTable::track(Flow& f, Dir d, const pkt::Packet& p, uint32_t now_ms) {
  using namespace pkt::tcpflag;
  const int di = static_cast<int>(d);
  if (d == Dir::Reply && !(f.flags & kSeenReply)) f.flags |= kSeenReply;
  if (f.proto == pkt::ipproto::kTcp && p.has(pkt::kTcp)) {
    const Segment s = segmentOf(p);
    TcpWindow& snd = f.win[di];
    TcpWindow& rcv = f.win[1 - di];
    const uint8_t fl = s.flags & (kSyn | kAck | kRst | kFin);
    TcpState st = f.tcp_state;

    // SYN/ACK answering our SYN initialises the responder's window.
    if (d == Dir::Reply && fl == (kSyn | kAck)) {
      if (st != TcpState::SynSent && st != TcpState::SynRecv) return Track::BadFlags;
      if (s.ack != f.win[0].end) return Track::OutOfWindow;  // does not acknowledge our SYN
      if (p.tcp.opt.has_wscale && f.wscale[0] != 0xff)
        f.wscale[1] = p.tcp.opt.wscale;
      else
        f.wscale[0] = 0xff;  // scaling only when both sides offer it
      snd.end = s.end;
      snd.maxwin = std::max<uint32_t>(s.win, 1);
      snd.maxend = s.end;
      rcv.maxend = std::max(rcv.maxend, s.ack + std::max<uint32_t>(s.win, 1));
      f.tcp_state = TcpState::SynRecv;
    } else if (fl & kSyn) {
      // A new SYN on a closed or time-wait flow reopens it (port reuse); any
      // other SYN is invalid here.
      if (d == Dir::Orig && (st == TcpState::SynSent) && s.end == snd.end)
        ;  // retransmitted SYN
      else if (d == Dir::Orig && (st == TcpState::TimeWait || st == TcpState::Close)) {
        std::memset(f.win, 0, sizeof f.win);
        f.flags &= static_cast<uint8_t>(~(kSeenReply | kAssured));
        f.wscale[0] = f.wscale[1] = 0xff;
        return start(f, p, now_ms);
      } else {
        return Track::BadFlags;
      }
    } else {
      // van Rooij window checks, as netfilter's tcp_in_window.
      const uint32_t win = scaled(s.win, f.wscale[di], s.flags);
      const uint32_t ack = (fl & kAck) ? s.ack : rcv.end;
      if (snd.maxwin == 0) {  // first packet from this side (picked up mid-stream)
        snd.end = s.end;
        snd.maxwin = std::max<uint32_t>(win, 1);
        snd.maxend = s.end;
      }
      const uint32_t max_ack_window = std::max<uint32_t>(snd.maxwin, 66000);
      const bool peer_known = rcv.maxwin != 0;
      const bool in_window =
          !before(snd.maxend + 1, s.seq + 1) &&                           // I: seq <= maxend
          !before(s.end, snd.end - (peer_known ? rcv.maxwin : 0) - 1) &&  // II: not too old
          (!peer_known || !after(ack, rcv.end + 1)) &&                  // III: acks nothing unsent
          (!peer_known || !before(ack, rcv.end - max_ack_window - 1));  // IV: not too old
      if (!in_window && !cfg_.loose) return Track::OutOfWindow;
      if (after(s.end, snd.end) || !in_window) snd.end = s.end;
      snd.maxwin = std::max(snd.maxwin, std::max<uint32_t>(win, 1));
      if (fl & kAck) {
        const uint32_t edge = ack + std::max<uint32_t>(win, 1);
        if (after(edge, rcv.maxend) || !in_window) rcv.maxend = edge;
      }
      if (after(snd.end, snd.maxend)) snd.maxend = snd.end;

      if (fl & kRst) {
        f.tcp_state = TcpState::Close;
      } else if (fl & kFin) {
        switch (st) {
          case TcpState::SynRecv:
          case TcpState::Established:
            f.tcp_state = d == Dir::Orig ? TcpState::FinWait : TcpState::CloseWait;
            break;
          case TcpState::FinWait:
            if (d == Dir::Reply) f.tcp_state = TcpState::LastAck;
            break;
          case TcpState::CloseWait:
            if (d == Dir::Orig) f.tcp_state = TcpState::LastAck;
            break;
          default:
            break;
        }
      } else if (fl & kAck) {
        if (st == TcpState::SynRecv && d == Dir::Orig) {
          f.tcp_state = TcpState::Established;
          f.flags |= kAssured;
        } else if (st == TcpState::LastAck) {
          f.tcp_state = TcpState::TimeWait;
        }
      }
    }
  } else if (d == Dir::Reply) {
    f.flags |= kAssured;  // UDP/ICMP: replied
  }
  ++f.packets[di];
  f.bytes[di] += p.wire_len;
  f.last_ms = now_ms;
  return Track::Ok;
}

}  // namespace palisade::flow

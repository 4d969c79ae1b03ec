// AttackBoard: one attack report across the workers that each see a share of
// it (`palisade run --workers N`: the fanout spreads a flood's flows over N
// detectors, each with its floors divided by N).
//
// The first worker to detect an attack on an address (and direction) opens
// it on the board and gets its id; the others that detect it while it lasts
// join under the same id. Every worker posts its view each tick; the board
// answers with whether this worker speaks for the attack (the first one
// still in it) and, when it does, the views merged: packets, bytes, dropped,
// passed, rates, sources and sessions summed; vectors and top sources merged
// by address; peaks the largest sum seen; the earliest start. The `end`
// event comes from the last worker to see the attack end, with the totals.
//
// Thread-safe (one mutex; a worker touches it at attack events and once per
// 100 ms tick while it sees an attack).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "core/net.h"
#include "ddos/detector.h"

namespace palisade::ddos {

class AttackBoard {
 public:
  explicit AttackBoard(uint32_t top_sources = 10) : top_(top_sources) {}

  // Worker `worker`'s attack starts: the id every worker uses for it.
  // *speak: whether this worker reports its start (it opened the attack).
  uint64_t open(uint32_t worker, const AttackInfo& info, bool* speak);
  // The worker's current view of attack `id` (each tick, and at its updates).
  // True when this worker speaks for the attack now; *merged is then the
  // merged view.
  bool post(uint32_t worker, const AttackInfo& info, AttackInfo* merged);
  // The worker saw the attack end (info: its final view). True when it was
  // the last one in it: *merged is then the whole attack, to report as ended.
  bool close(uint32_t worker, const AttackInfo& info, AttackInfo* merged);

  size_t openAttacks() const;

 private:
  struct Entry {
    uint64_t id = 0;
    std::map<uint32_t, AttackInfo> views;  // by worker, its current stint
    std::vector<AttackInfo> past;          // stints that ended while others went on
    std::vector<uint32_t> active;          // workers still in it, in joining order
    double peak_pps = 0, peak_bps = 0;
  };
  using Key = std::pair<IpAddr, Direction>;
  struct KeyLess {
    bool operator()(const Key& a, const Key& b) const {
      return a.first.b != b.first.b ? a.first.b < b.first.b : a.second < b.second;
    }
  };
  AttackInfo merged(Entry& e) const;

  mutable std::mutex mu_;
  std::map<Key, Entry, KeyLess> attacks_;
  uint64_t next_id_ = 1;
  uint32_t top_;
};

}  // namespace palisade::ddos

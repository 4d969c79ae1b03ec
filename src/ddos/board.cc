#include "ddos/board.h"

#include <algorithm>
#include <unordered_map>

namespace palisade::ddos {

uint64_t AttackBoard::open(uint32_t worker, const AttackInfo& info, bool* speak) {
  std::lock_guard lock(mu_);
  Entry& e = attacks_[{info.target, info.direction}];
  *speak = e.active.empty();
  if (e.active.empty()) {
    e = Entry{};
    e.id = next_id_++;
  }
  e.views[worker] = info;
  e.views[worker].id = e.id;
  if (std::find(e.active.begin(), e.active.end(), worker) == e.active.end())
    e.active.push_back(worker);
  return e.id;
}

bool AttackBoard::post(uint32_t worker, const AttackInfo& info, AttackInfo* out) {
  std::lock_guard lock(mu_);
  auto it = attacks_.find({info.target, info.direction});
  if (it == attacks_.end()) return false;
  Entry& e = it->second;
  e.views[worker] = info;
  double pps = 0, bps = 0;
  for (uint32_t w : e.active) {
    pps += e.views[w].pps;
    bps += e.views[w].bps;
  }
  e.peak_pps = std::max(e.peak_pps, pps);
  e.peak_bps = std::max(e.peak_bps, bps);
  if (e.active.empty() || e.active.front() != worker) return false;
  *out = merged(e);
  return true;
}

bool AttackBoard::close(uint32_t worker, const AttackInfo& info, AttackInfo* out) {
  std::lock_guard lock(mu_);
  auto it = attacks_.find({info.target, info.direction});
  if (it == attacks_.end()) {
    *out = info;
    return true;
  }
  Entry& e = it->second;
  e.views[worker] = info;
  std::erase(e.active, worker);
  if (!e.active.empty()) {
    // Kept whole: if this worker sees the attack again, its new stint is a new view.
    e.past.push_back(std::move(e.views[worker]));
    e.views.erase(worker);
    return false;
  }
  *out = merged(e);
  attacks_.erase(it);
  return true;
}

size_t AttackBoard::openAttacks() const {
  std::lock_guard lock(mu_);
  return attacks_.size();
}

AttackInfo AttackBoard::merged(Entry& e) const {
  // Names, profile, mode: the same in every view.
  AttackInfo m = e.views.empty() ? e.past.front() : e.views.begin()->second;
  m.id = e.id;
  m.packets = m.bytes = m.dropped = m.passed = m.sources = m.sessions = 0;
  m.pps = m.bps = m.threshold_pps = m.baseline_pps = 0;
  m.peak_pps = e.peak_pps;
  m.peak_bps = e.peak_bps;
  m.end_ns = 0;
  m.cut_short = false;
  double entropy_weight = 0, ratio_weight = 0, base_weight = 0;
  m.entropy = 0;
  m.syn_ack_ratio = m.syn_ack_baseline = 0;
  std::unordered_map<size_t, uint64_t> vectors;
  std::map<std::array<uint8_t, 16>, uint64_t> top;
  bool all_ended = true;
  std::vector<std::pair<const AttackInfo*, bool>> all;  // every view, and whether it is live
  for (const auto& [w, v] : e.views)
    all.emplace_back(&v, std::find(e.active.begin(), e.active.end(), w) != e.active.end());
  for (const AttackInfo& v : e.past)
    all.emplace_back(&v, false);
  for (const auto& [vp, active] : all) {
    const AttackInfo& v = *vp;
    m.packets += v.packets;
    m.bytes += v.bytes;
    m.dropped += v.dropped;
    m.passed += v.passed;
    m.sources += v.sources;
    m.sessions += v.sessions;
    m.threshold_pps += v.threshold_pps;
    m.baseline_pps += v.baseline_pps;
    if (active) {
      m.pps += v.pps;
      m.bps += v.bps;
    }
    m.peak_pps = std::max(m.peak_pps, v.peak_pps);
    m.peak_bps = std::max(m.peak_bps, v.peak_bps);
    m.start_ns = std::min(m.start_ns, v.start_ns);
    m.detected_ns = std::min(m.detected_ns, v.detected_ns);
    all_ended &= v.end_ns != 0;
    m.end_ns = std::max(m.end_ns, v.end_ns);
    m.cut_short |= v.cut_short;
    m.entropy += v.entropy * static_cast<double>(v.packets);
    entropy_weight += static_cast<double>(v.packets);
    // The SYN-to-ACK ratios of the views that know one, by their packets.
    if (v.syn_ack_ratio >= 0) {
      m.syn_ack_ratio += v.syn_ack_ratio * static_cast<double>(v.packets + 1);
      ratio_weight += static_cast<double>(v.packets + 1);
    }
    if (v.syn_ack_baseline >= 0) {
      m.syn_ack_baseline += v.syn_ack_baseline * static_cast<double>(v.packets + 1);
      base_weight += static_cast<double>(v.packets + 1);
    }
    for (const auto& [vec, n] : v.vectors)
      vectors[static_cast<size_t>(vec)] += n;
    for (const auto& [addr, n] : v.top)
      top[addr.b] += n;
  }
  if (!all_ended) m.end_ns = 0;
  m.entropy = entropy_weight > 0 ? m.entropy / entropy_weight : 0;
  m.syn_ack_ratio = ratio_weight > 0 ? m.syn_ack_ratio / ratio_weight : -1;
  m.syn_ack_baseline = base_weight > 0 ? m.syn_ack_baseline / base_weight : -1;
  m.vectors.clear();
  for (const auto& [vec, n] : vectors)
    m.vectors.emplace_back(static_cast<Vector>(vec), n);
  std::sort(m.vectors.begin(), m.vectors.end(), [](const auto& x, const auto& y) {
    return x.second != y.second ? x.second > y.second : x.first < y.first;
  });
  m.primary = m.vectors.empty() ? Vector::None : m.vectors.front().first;
  m.top.clear();
  for (const auto& [b, n] : top) {
    IpAddr a;
    a.b = b;
    m.top.emplace_back(a, n);
  }
  std::sort(m.top.begin(), m.top.end(), [](const auto& x, const auto& y) {
    return x.second != y.second ? x.second > y.second : x.first.b < y.first.b;
  });
  if (m.top.size() > top_) m.top.resize(top_);
  return m;
}

}  // namespace palisade::ddos

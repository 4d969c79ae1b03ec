#include "ids/prefilter.h"

#include <hs/hs.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/strings.h"

namespace palisade::ids {

LiteralSet::~LiteralSet() {
  hs_free_database(db_);
}

namespace {

// How often a byte occurs in web traffic's bodies and streams, in thousandths
// (a fixed model, not fitted to any capture): lowercase letters as in English
// prose, uppercase far rarer, space the commonest byte, the punctuation of
// markup, scripts, URLs and form data, digits; NUL, 0xff and line ends as
// binary formats and headers use them; every other byte rare.
struct ByteModel {
  double cost[256];  // -log(frequency): higher is rarer
  constexpr ByteModel() : cost() {
    double f[256] = {};
    for (double& v : f)
      v = 0.2;
    for (int c = 33; c < 127; ++c)
      f[c] = 2;
    const char* letters = "etaoinshrdlcumwfgypbvkjxqz";
    const double english[26] = {127, 91, 82, 75, 70, 67, 63, 61, 60, 43,  40,  28, 28,
                                24,  24, 22, 20, 20, 19, 15, 10, 8,  1.5, 1.5, 1,  0.7};
    for (int i = 0; i < 26; ++i) {
      f[static_cast<unsigned char>(letters[i])] = english[i] * 0.6;
      f[static_cast<unsigned char>(letters[i] - 'a' + 'A')] = english[i] * 0.04;
    }
    for (int c = '0'; c <= '9'; ++c)
      f[c] = 6;
    // Markup, scripts, URLs and form data (a POST body is "a=1&b=2").
    for (const char* p = "<>/\"=.,:;(){}[]-_'&%?+#!*|\\\t"; *p; ++p)
      f[static_cast<unsigned char>(*p)] = 8;
    f[0x20] = 150;           // space
    f[0x0d] = f[0x0a] = 10;  // CR, LF
    f[0] = 20;
    f[0xff] = 4;
    for (int c = 0; c < 256; ++c)
      cost[c] = -ln(f[c] / 1000);
  }
  // Natural logarithm for a constant table (no constexpr std::log in C++20).
  static constexpr double ln(double x) {
    int k = 0;
    while (x < 0.5) {
      x *= 2.718281828459045;
      --k;
    }
    const double y = (x - 1) / (x + 1), y2 = y * y;
    double sum = 0, term = y;
    for (int i = 1; i < 60; i += 2) {
      sum += term / i;
      term *= y2;
    }
    return 2 * sum + k;
  }
};
constexpr ByteModel kModel;

double byteCost(unsigned char c, bool nocase) {
  if (nocase && ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
    // Either case may match: the two frequencies add.
    const double a = kModel.cost[c | 0x20], b = kModel.cost[c & ~0x20];
    const double lo = a < b ? a : b, hi = a < b ? b : a;
    return lo - std::log1p(std::exp(lo - hi));
  }
  return kModel.cost[c];
}

bool equalNoCase(const char* a, const char* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    unsigned x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x - 'A' < 26u) x |= 0x20;
    if (y - 'A' < 26u) y |= 0x20;
    if (x != y) return false;
  }
  return true;
}

struct ScanCtx {
  const LiteralSet* set;
  std::string_view data;
  HsScratch* scratch;
  std::vector<uint32_t>* out;
};

}  // namespace

size_t LiteralSet::windowOf(std::string_view literal, bool nocase) {
  if (literal.size() <= kWindow) return 0;
  double window = 0;
  for (size_t i = 0; i < kWindow; ++i)
    window += byteCost(static_cast<unsigned char>(literal[i]), nocase);
  double best = window;
  size_t at = 0;
  for (size_t i = kWindow; i < literal.size(); ++i) {
    window += byteCost(static_cast<unsigned char>(literal[i]), nocase) -
              byteCost(static_cast<unsigned char>(literal[i - kWindow]), nocase);
    if (window > best + 1e-9) {
      best = window;
      at = i + 1 - kWindow;
    }
  }
  return at;
}

void LiteralSet::add(uint32_t ordinal, std::string_view bytes, bool nocase) {
  lits_.push_back({ordinal, 0, static_cast<uint32_t>(bytes.size()), 0, nocase});
  pending_.emplace_back(bytes);
}

Status LiteralSet::build(HsScratch& scratch) {
  if (lits_.empty()) return {};
  std::vector<const char*> exprs;
  std::vector<size_t> lens;
  std::vector<unsigned> ids, flags;
  exprs.reserve(lits_.size());
  for (size_t i = 0; i < lits_.size(); ++i) {
    Literal& l = lits_[i];
    const std::string& bytes = pending_[i];
    size_t from = 0, len = bytes.size();
    unsigned flag = l.nocase ? HS_FLAG_CASELESS : 0u;
    if (windows_ && bytes.size() > kWindow) {
      // Every place the window occurs is reported and confirmed (no
      // single-match flag): the first may not be the whole literal.
      from = windowOf(bytes, l.nocase);
      len = kWindow;
      l.at = static_cast<uint32_t>(pool_.size());
      l.win_end = static_cast<uint32_t>(from + kWindow);
      pool_ += bytes;
    } else {
      flag |= HS_FLAG_SINGLEMATCH;
    }
    exprs.push_back(bytes.data() + from);
    lens.push_back(len);
    ids.push_back(static_cast<unsigned>(i));
    flags.push_back(flag);
  }
  hs_compile_error_t* err = nullptr;
  if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                           static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &db_,
                           &err) != HS_SUCCESS) {
    std::string msg = err && err->message ? err->message : "unknown error";
    hs_free_compile_error(err);
    failed_ = true;
    return makeError(strCat("hyperscan: ", msg));
  }
  // The short literals live in the database now; the long ones in pool_.
  pending_.clear();
  pending_.shrink_to_fit();
  pool_.shrink_to_fit();
  return scratch.growFor(db_, lits_.size());
}

size_t LiteralSet::bytes() const {
  size_t n = 0;
  if (db_) hs_database_size(db_, &n);
  return n + pool_.size() + lits_.size() * sizeof(Literal);
}

int LiteralSet::onMatch(unsigned id, unsigned long long, unsigned long long to, unsigned, void* p) {
  auto* c = static_cast<ScanCtx*>(p);
  const Literal& l = c->set->lits_[id];
  if (l.win_end != 0) {
    // The window ends at `to`: is the whole literal around it?
    if (c->scratch->confirmed(id) || to < l.win_end || to - l.win_end + l.len > c->data.size())
      return 0;
    const char* at = c->data.data() + (to - l.win_end);
    const char* lit = c->set->pool_.data() + l.at;
    if (l.nocase ? !equalNoCase(at, lit, l.len) : std::memcmp(at, lit, l.len) != 0) return 0;
    c->scratch->confirm(id);
  }
  c->out->push_back(l.ordinal);
  return 0;
}

void LiteralSet::scan(std::string_view data, HsScratch& scratch, std::vector<uint32_t>& out) const {
  if (failed_) {  // no database: every rule is a candidate (correct, slow)
    for (const Literal& l : lits_)
      out.push_back(l.ordinal);
    return;
  }
  if (!db_ || data.empty()) return;
  scratch.nextScan();
  ScanCtx ctx{this, data, &scratch, &out};
  hs_scan(db_, data.data(), static_cast<unsigned>(data.size()), 0, scratch.get(), onMatch, &ctx);
}

HsScratch::~HsScratch() {
  hs_free_scratch(s_);
}

Status HsScratch::growFor(const hs_database* db, size_t ids) {
  if (hs_alloc_scratch(db, &s_) != HS_SUCCESS)
    return makeError("hyperscan: cannot allocate scratch");
  if (stamp_.size() < ids) stamp_.resize(ids, 0);
  return {};
}

void HsScratch::nextScan() {
  if (++scan_ == 0) {  // wrapped: forget every stamp
    std::fill(stamp_.begin(), stamp_.end(), 0);
    scan_ = 1;
  }
}

void DirectedLiterals::add(uint32_t ordinal, std::string_view bytes, bool nocase, bool to_server,
                           bool to_client) {
  if (!to_client) dir_[0].add(ordinal, bytes, nocase);
  if (!to_server) dir_[1].add(ordinal, bytes, nocase);
  ++count_;
}

Status DirectedLiterals::build(HsScratch& scratch) {
  Status st = dir_[0].build(scratch);
  Status back = dir_[1].build(scratch);
  return st ? back : st;
}

int PortIndex::classOf(uint8_t p) {
  switch (p) {
    case 6:
      return 0;
    case 17:
      return 1;
    case 1:
    case 58:
      return 2;
    default:
      return 3;
  }
}

size_t PortIndex::portCount(const PortSet& s) {
  size_t n = 0;
  for (const PortRange& r : s.ranges())
    n += static_cast<size_t>(r.hi - r.lo) + 1;
  return n;
}

bool PortIndex::indexable(const PortSet& sport, const PortSet& dport, bool bidirectional) {
  return !bidirectional && (portCount(dport) <= 64 || portCount(sport) <= 64);
}

void PortIndex::add(uint32_t ordinal, bool tcp, bool udp, bool icmp, bool other,
                    const PortSet& sport, const PortSet& dport, bool bidirectional) {
  ++count_;
  const bool cls[4] = {tcp, udp, icmp, other};
  const bool by_dst = portCount(dport) <= 64;
  for (int c = 0; c < 4; ++c) {
    if (!cls[c]) continue;
    // Ports mean something for TCP and UDP only.
    if (c < 2 && indexable(sport, dport, bidirectional)) {
      ByPort& by = by_dst ? by_dport_[c] : by_sport_[c];
      for (const PortRange& r : (by_dst ? dport : sport).ranges())
        for (uint32_t p = r.lo; p <= r.hi; ++p)
          by.pending.emplace_back(static_cast<uint16_t>(p), ordinal);
    } else {
      wild_[c].push_back(ordinal);
    }
  }
}

void PortIndex::build() {
  for (int c = 0; c < 2; ++c) {
    by_dport_[c].build();
    by_sport_[c].build();
  }
}

void PortIndex::ByPort::build() {
  // Stable: a port's rules keep the order they were added in.
  std::stable_sort(pending.begin(), pending.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  present.assign(pending.empty() ? 0 : 65536 / 64, 0);
  ports.clear();
  start.clear();
  ords.clear();
  for (const auto& [port, ordinal] : pending) {
    if (ports.empty() || ports.back() != port) {
      ports.push_back(port);
      start.push_back(static_cast<uint32_t>(ords.size()));
      present[port >> 6] |= uint64_t{1} << (port & 63);
    }
    ords.push_back(ordinal);
  }
  start.push_back(static_cast<uint32_t>(ords.size()));
  pending.clear();
  pending.shrink_to_fit();
}

void PortIndex::ByPort::collect(uint16_t port, std::vector<uint32_t>& out) const {
  if (present.empty() || !(present[port >> 6] >> (port & 63) & 1)) return;
  const size_t i =
      static_cast<size_t>(std::lower_bound(ports.begin(), ports.end(), port) - ports.begin());
  out.insert(out.end(), ords.begin() + start[i], ords.begin() + start[i + 1]);
}

void PortIndex::collect(uint8_t ip_proto, uint16_t sport, uint16_t dport,
                        std::vector<uint32_t>& out) const {
  const int c = classOf(ip_proto);
  out.insert(out.end(), wild_[c].begin(), wild_[c].end());
  if (c < 2) {
    by_dport_[c].collect(dport, out);
    by_sport_[c].collect(sport, out);
  }
}

}  // namespace palisade::ids

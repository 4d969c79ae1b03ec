#include "ids/prefilter.h"

#include <hs/hs.h>

#include "core/strings.h"

namespace palisade::ids {

LiteralSet::~LiteralSet() {
  hs_free_database(db_);
}

void LiteralSet::add(uint32_t ordinal, std::string_view bytes, bool nocase) {
  literals_.emplace_back(bytes);
  flags_.push_back(HS_FLAG_SINGLEMATCH | (nocase ? HS_FLAG_CASELESS : 0u));
  ordinals_.push_back(ordinal);
}

Status LiteralSet::build(HsScratch& scratch) {
  if (literals_.empty()) return {};
  std::vector<const char*> exprs;
  std::vector<size_t> lens;
  std::vector<unsigned> ids;
  exprs.reserve(literals_.size());
  for (size_t i = 0; i < literals_.size(); ++i) {
    exprs.push_back(literals_[i].data());
    lens.push_back(literals_[i].size());
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_compile_error_t* err = nullptr;
  if (hs_compile_lit_multi(exprs.data(), flags_.data(), ids.data(), lens.data(),
                           static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &db_,
                           &err) != HS_SUCCESS) {
    std::string msg = err && err->message ? err->message : "unknown error";
    hs_free_compile_error(err);
    failed_ = true;
    return makeError(strCat("hyperscan: ", msg));
  }
  // The literals live in the database now.
  literals_.clear();
  literals_.shrink_to_fit();
  flags_.clear();
  flags_.shrink_to_fit();
  return scratch.growFor(db_);
}

size_t LiteralSet::bytes() const {
  size_t n = 0;
  if (db_) hs_database_size(db_, &n);
  return n;
}

namespace {
struct ScanCtx {
  const std::vector<uint32_t>* ordinals;
  std::vector<uint32_t>* out;
};
int onMatch(unsigned id, unsigned long long, unsigned long long, unsigned, void* p) {
  auto* c = static_cast<ScanCtx*>(p);
  c->out->push_back((*c->ordinals)[id]);
  return 0;
}
}  // namespace

void LiteralSet::scan(std::string_view data, HsScratch& scratch, std::vector<uint32_t>& out) const {
  if (failed_) {  // no database: every rule is a candidate (correct, slow)
    out.insert(out.end(), ordinals_.begin(), ordinals_.end());
    return;
  }
  if (!db_ || data.empty()) return;
  ScanCtx ctx{&ordinals_, &out};
  hs_scan(db_, data.data(), static_cast<unsigned>(data.size()), 0, scratch.get(), onMatch, &ctx);
}

HsScratch::~HsScratch() {
  hs_free_scratch(s_);
}

Status HsScratch::growFor(const hs_database* db) {
  if (hs_alloc_scratch(db, &s_) != HS_SUCCESS)
    return makeError("hyperscan: cannot allocate scratch");
  return {};
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
      auto& map = by_dst ? by_dport_ : by_sport_;
      for (const PortRange& r : (by_dst ? dport : sport).ranges())
        for (uint32_t p = r.lo; p <= r.hi; ++p)
          map[static_cast<uint32_t>(c) << 16 | p].push_back(ordinal);
    } else {
      wild_[c].push_back(ordinal);
    }
  }
}

void PortIndex::collect(uint8_t ip_proto, uint16_t sport, uint16_t dport,
                        std::vector<uint32_t>& out) const {
  const int c = classOf(ip_proto);
  out.insert(out.end(), wild_[c].begin(), wild_[c].end());
  if (c < 2) {
    if (auto it = by_dport_.find(static_cast<uint32_t>(c) << 16 | dport); it != by_dport_.end())
      out.insert(out.end(), it->second.begin(), it->second.end());
    if (auto it = by_sport_.find(static_cast<uint32_t>(c) << 16 | sport); it != by_sport_.end())
      out.insert(out.end(), it->second.begin(), it->second.end());
  }
}

}  // namespace palisade::ids

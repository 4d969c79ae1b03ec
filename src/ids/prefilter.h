// Choosing which rules to evaluate: most rules never run on a given buffer.
//
// A rule with a content it cannot match without (its fast pattern: the one
// marked fast_pattern, else the longest non-negated content) is tried only
// when a Hyperscan scan of the buffer finds that content: all fast patterns
// of one buffer kind are compiled into one literal database, scanned once per
// buffer. A rule with none is kept in a PortIndex by protocol and destination
// port, so a packet meets only the rules its protocol and port can match.
// Both hand back rule ordinals (positions in the engine's inspection order);
// the engine sorts and evaluates them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "ids/addr.h"

struct hs_database;
struct hs_scratch;

namespace palisade::ids {

class HsScratch;

// A set of literals, each with the ordinal of the rule it belongs to.
class LiteralSet {
 public:
  LiteralSet() = default;
  ~LiteralSet();
  LiteralSet(const LiteralSet&) = delete;
  LiteralSet& operator=(const LiteralSet&) = delete;

  void add(uint32_t ordinal, std::string_view bytes, bool nocase);
  // Compiles the database; an error names Hyperscan's complaint.
  Status build(HsScratch& scratch);
  bool empty() const { return ordinals_.empty(); }
  size_t size() const { return ordinals_.size(); }
  size_t bytes() const;  // the database's size

  // Appends the ordinals of the literals found in `data` (each at most once).
  void scan(std::string_view data, HsScratch& scratch, std::vector<uint32_t>& out) const;

 private:
  std::vector<std::string> literals_;
  std::vector<unsigned> flags_;
  std::vector<uint32_t> ordinals_;
  hs_database* db_ = nullptr;
  bool failed_ = false;
};

// Scratch space for scanning, grown to fit every database built with it.
class HsScratch {
 public:
  HsScratch() = default;
  ~HsScratch();
  HsScratch(const HsScratch&) = delete;
  HsScratch& operator=(const HsScratch&) = delete;
  hs_scratch* get() const { return s_; }
  Status growFor(const hs_database* db);

 private:
  hs_scratch* s_ = nullptr;
};

// Rules without a fast pattern, by protocol class and destination port.
class PortIndex {
 public:
  // `tcp`, `udp`, `icmp`, `other`: which protocol classes the rule applies to.
  // A rule is indexed by its destination ports when they are few, else by
  // its source ports when those are few, else it is tried on every packet of
  // its protocols.
  void add(uint32_t ordinal, bool tcp, bool udp, bool icmp, bool other, const PortSet& sport,
           const PortSet& dport, bool bidirectional);
  // Appends the ordinals a packet of this protocol and ports may match.
  void collect(uint8_t ip_proto, uint16_t sport, uint16_t dport, std::vector<uint32_t>& out) const;
  size_t size() const { return count_; }
  // Whether a rule with these ports would be indexed rather than wild.
  static bool indexable(const PortSet& sport, const PortSet& dport, bool bidirectional);

 private:
  static int classOf(uint8_t ip_proto);
  static size_t portCount(const PortSet& s);
  std::vector<uint32_t> wild_[4];
  std::unordered_map<uint32_t, std::vector<uint32_t>> by_dport_, by_sport_;  // class << 16 | port
  size_t count_ = 0;
};

}  // namespace palisade::ids

// Choosing which rules to evaluate: most rules never run on a given buffer.
//
// A rule with a content it cannot match without (its fast pattern: the one
// marked fast_pattern, else the longest non-negated content) is tried only
// when a Hyperscan scan of the buffer finds that content: all fast patterns
// of one buffer kind are compiled into one literal database, scanned once per
// buffer. In a set made for long texts (HTTP bodies), a fast pattern longer
// than 8 bytes is scanned for by its rarest 8-byte window (rarity from a
// fixed model of web text, below) and confirmed whole at each place the
// window is found: the answer is the same, and ET Open's ~2,000 body phrases,
// mostly long and caseless, scan text about twice as fast. Hyperscan takes
// several times longer to compile such a set, so the short buffers (URI,
// headers) and the streams, already fast, keep whole literals
// (bench/RESULTS.md, session 25).
//
// A rule with none is kept in a PortIndex by protocol and destination port,
// so a packet meets only the rules its protocol and port can match. Both
// hand back rule ordinals (positions in the engine's inspection order); the
// engine sorts and evaluates them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
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

  // Scan for long literals by their windows (before the first add()).
  void scanByWindows() { windows_ = true; }
  void add(uint32_t ordinal, std::string_view bytes, bool nocase);
  // Compiles the database; an error names Hyperscan's complaint.
  Status build(HsScratch& scratch);
  bool empty() const { return lits_.empty(); }
  size_t size() const { return lits_.size(); }
  size_t bytes() const;  // the database's size and the literals kept to confirm windows

  // Appends the ordinals of the literals found in `data` (each at most once).
  void scan(std::string_view data, HsScratch& scratch, std::vector<uint32_t>& out) const;

  // Literals longer than this are scanned for by a window of this length.
  static constexpr size_t kWindow = 8;
  // Where the window of `literal` starts: the kWindow bytes least likely in
  // web text (text, markup, scripts, some binary) by a fixed byte model.
  static size_t windowOf(std::string_view literal, bool nocase);

 private:
  struct Literal {
    uint32_t ordinal;
    uint32_t at;       // offset in pool_ (the literal's bytes, windowed ones only)
    uint32_t len;      // the literal's length
    uint32_t win_end;  // the window's end in the literal; 0: not windowed
    bool nocase;
  };
  static int onMatch(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                     void* ctx);
  std::vector<std::string> pending_;  // literals added, until build()
  std::vector<Literal> lits_;         // by Hyperscan id
  std::string pool_;
  hs_database* db_ = nullptr;
  bool failed_ = false;
  bool windows_ = false;
};

// Scratch space for scanning, grown to fit every database built with it.
class HsScratch {
 public:
  HsScratch() = default;
  ~HsScratch();
  HsScratch(const HsScratch&) = delete;
  HsScratch& operator=(const HsScratch&) = delete;
  hs_scratch* get() const { return s_; }
  // Grows the scratch for `db`, whose literal ids are below `ids`.
  Status growFor(const hs_database* db, size_t ids);
  // A new scan: a literal id is confirmed at most once per scan.
  void nextScan();
  bool confirmed(uint32_t id) const { return stamp_[id] == scan_; }
  void confirm(uint32_t id) { stamp_[id] = scan_; }

 private:
  hs_scratch* s_ = nullptr;
  std::vector<uint32_t> stamp_;  // by literal id: the scan that confirmed it
  uint32_t scan_ = 0;
};

// The fast patterns of payload rules (stream and packet), one database per
// direction: a rule that can match one direction only (flow:to_server or
// to_client) is in that direction's database only. Most of ET Open's stream
// rules look at what goes to a server (1,797 of 2,283 patterns), while most
// bytes come back from one, and those meet 657. Ports are left to the header
// check each candidate gets: databases by port as well (tried, as Suricata
// groups them) took several times longer to build for a few percent more
// (bench/RESULTS.md, session 25).
class DirectedLiterals {
 public:
  void add(uint32_t ordinal, std::string_view bytes, bool nocase, bool to_server, bool to_client);
  Status build(HsScratch& scratch);
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }  // patterns added
  size_t bytes() const { return dir_[0].bytes() + dir_[1].bytes(); }
  size_t size(int dir) const { return dir_[dir].size(); }
  // Appends the ordinals of the patterns found in `data`, travelling in
  // direction `dir` (0 to the server), each at most once.
  void scan(std::string_view data, int dir, HsScratch& scratch, std::vector<uint32_t>& out) const {
    dir_[dir].scan(data, scratch, out);
  }

 private:
  LiteralSet dir_[2];
  size_t count_ = 0;
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
  // Lays out what add() gathered for collect(); called once, after the adds.
  void build();
  // Appends the ordinals a packet of this protocol and ports may match.
  void collect(uint8_t ip_proto, uint16_t sport, uint16_t dport, std::vector<uint32_t>& out) const;
  size_t size() const { return count_; }
  // Whether a rule with these ports would be indexed rather than wild.
  static bool indexable(const PortSet& sport, const PortSet& dport, bool bidirectional);

 private:
  static int classOf(uint8_t ip_proto);
  static size_t portCount(const PortSet& s);
  // The rules of one protocol class keyed by one port. Asked twice per
  // packet, mostly for ports no rule names (a client's ephemeral port): a
  // bit per port (8 KB) answers those; the few named ports are found by
  // binary search, their rules in one array.
  struct ByPort {
    std::vector<std::pair<uint16_t, uint32_t>> pending;  // (port, ordinal) until build()
    std::vector<uint64_t> present;                       // bit p: port p has rules
    std::vector<uint16_t> ports;                         // sorted
    std::vector<uint32_t> start;  // ports[i]'s rules: ords[start[i]..start[i+1])
    std::vector<uint32_t> ords;
    void build();
    void collect(uint16_t port, std::vector<uint32_t>& out) const;
  };
  std::vector<uint32_t> wild_[4];
  ByPort by_dport_[2], by_sport_[2];  // by class: TCP, UDP
  size_t count_ = 0;
};

}  // namespace palisade::ids

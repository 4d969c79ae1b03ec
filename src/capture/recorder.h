// Policy-driven capture: the packets a `capture:` rule selects, as they entered
// the switch, written to that rule's rotating pcapng files. Each file has one
// interface per switch port (its name and role as if_description), nanosecond
// timestamps, and on every packet a comment saying what the switch did with it
// (forwarded where, under which rules; or dropped, why, by which rule).
//
// Files: DIR/RULE/RULE-YYYYMMDDTHHMMSSZ-NNNNNN.pcapng. A file is closed and the
// next one begun when it reaches the size limit or covers the time limit (by
// packet time); beyond max_files the oldest file of the rule is deleted, files
// of earlier runs included. A write error is counted and reported once, the
// rule's packets are dropped (counted) until its next file opens.
//
// Threading: one Recorder per pipeline (a worker); it owns its files. Several
// workers use several directories' worth of names: `instance` tells them apart.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/result.h"
#include "core/time.h"
#include "io/capture.h"
#include "packet/decoder.h"
#include "pipeline/pipeline.h"

namespace palisade::capture {

struct Limits {
  uint64_t file_size = 64ull << 20;
  uint64_t file_seconds = 3600;
  uint32_t max_files = 10;
  uint32_t snaplen = 262144;
};

struct RuleStats {
  std::string name;
  uint64_t packets = 0, bytes = 0, files = 0, deleted = 0, dropped = 0;
  std::string last_error;
};

class Recorder {
 public:
  // The policy's capture rules compiled against its data plane: rule and
  // reason names are checked here (errors name the capture rule and its line).
  // `instance` goes into file names (a worker's number; empty for one).
  static Result<std::unique_ptr<Recorder>> create(
      std::shared_ptr<const pipeline::CompiledPolicy> policy, std::string dir,
      std::string instance = {});

  // One packet and the switch's verdict on it: written to each rule it matches.
  void offer(const pipeline::Pipeline& pl, uint16_t in_port, Bytes frame, uint32_t wire_len,
             TimeNs ts, const pipeline::Verdict& v);
  // Closes every open file; the first error, if any.
  Status close();
  ~Recorder();

  const std::vector<RuleStats>& stats() const { return stats_; }
  size_t ruleCount() const { return rules_.size(); }

 private:
  struct Rule;
  Recorder() = default;
  bool matches(const Rule& r, const pipeline::Pipeline& pl, uint16_t in_port, Bytes frame,
               uint32_t wire_len, const pipeline::Verdict& v);
  // What the frame's own addresses say, decoded once per packet (lazily): the
  // NIC its destination is in the sender's VNet, and the tenant owning the
  // public address an uplink packet is sent to (kNoIndex when none).
  struct Addressed {
    bool done = false;
    uint32_t dst_nic = pipeline::kNoIndex, vip_tenant = pipeline::kNoIndex;
  };
  const Addressed& addressed(uint16_t in_port, Bytes frame, uint32_t wire_len);
  std::string comment(const pipeline::Pipeline& pl, uint16_t in_port,
                      const pipeline::Verdict& v) const;
  Status rotate(Rule& r, RuleStats& st, TimeNs ts);

  std::shared_ptr<const pipeline::CompiledPolicy> policy_;
  std::string dir_, instance_;
  Limits limits_;
  std::vector<io::InterfaceInfo> interfaces_;
  std::vector<uint32_t> rule_tenant_;  // per RuleInfo: its tenant, kNoIndex for the perimeter
  std::vector<std::unique_ptr<Rule>> rules_;
  std::vector<RuleStats> stats_;
  pkt::Decoder decoder_;
  pkt::Packet decoded_;
  Addressed addressed_;
};

}  // namespace palisade::capture

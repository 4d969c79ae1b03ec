// Engine: `palisade run`, the switch on live interfaces.
//
//   ports (AF_PACKET, TPACKET_V3 rings, one fanout group per port)
//     -> workers (one Pipeline each; the fanout program sends both directions
//        of a flow to one worker, live/fanout.h)
//     -> forwarding out of the verdict's port (the uplink's layer 2 by live/uplink.h)
//   control thread: signals (SIGHUP reload, SIGINT/SIGTERM stop), the control
//     socket (`palisade stats`, `palisade reload`), Prometheus metrics over HTTP
//     on a loopback port.
//
// Reload: the control thread loads and compiles the policy off the data path;
// each worker swaps it in between bursts (Pipeline::setPolicy + reconfigure),
// so established flows stay (or are re-evaluated when the policy asks). A
// policy that no longer has a NIC bound to an interface is refused, and the
// running one stays.
//
// Privileges: every socket is opened in start(); then the process drops every
// capability (it needs none to run, reload or answer the control socket) and
// sets no_new_privs.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "events/writer.h"
#include "live/packet_socket.h"
#include "live/uplink.h"
#include "pipeline/pipeline.h"

namespace palisade::live {

// Counters the pipeline does not keep: what happens around it on real ports.
#define PALISADE_LIVE_DROPS(X)                                                                    \
  X(Oversize, "oversize",                                                                         \
    "frame larger than the port's MTU that is not TCP, or than the ring block")                   \
  X(VlanTag, "vlan_tag", "VLAN-tagged frame (tag taken off by the NIC)")                          \
  X(PortNotAttached, "port_not_attached", "to a NIC with no interface on this switch")            \
  X(Unresolved, "neighbour_unresolved", "uplink next hop not yet resolved (ARP/NS sent)")         \
  X(NdInvalid, "nd_invalid", "uplink neighbour discovery that is malformed or not from the link") \
  X(TxError, "tx_error", "the kernel refused the send (buffer full, interface down)")             \
  X(Passive, "passive", "not forwarded: passive mode")

enum class LiveDrop : uint8_t {
#define PALISADE_X(id, name, help) id,
  PALISADE_LIVE_DROPS(PALISADE_X)
#undef PALISADE_X
      Count
};
const char* toString(LiveDrop d);

struct PortCounters {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0, kernel_drops = 0;
};

struct LiveStats {
  std::vector<PortCounters> ports;  // by live port: [0] uplink, then --port order
  std::array<uint64_t, static_cast<size_t>(LiveDrop::Count)> drops{};
  uint64_t proxy_arp = 0, arp_requests = 0, checksums_completed = 0;
  uint64_t proxy_nd = 0, neighbour_solicitations = 0;  // IPv6 on the uplink
  uint64_t super_frames = 0, segments = 0;             // GSO/GRO frames cut, and what they became
  // Bursts received while the ring was three quarters full (inline
  // inspection overloaded: the policy's ids.overload applied to them).
  uint64_t ids_overloaded = 0;
  uint32_t policy_generation = 0;
  uint64_t live_flows = 0;
  void add(const LiveStats& o);
};

struct PortBinding {
  std::string nic;    // "tenant/nic" of the policy
  std::string iface;  // the interface it is plugged into
};

struct EngineConfig {
  std::string policy_path;
  std::vector<PortBinding> ports;
  std::string uplink;
  unsigned workers = 1;
  bool passive = false;      // inspect only: nothing is sent
  UplinkConfig uplink_l2;    // mac filled in from the interface
  std::string control_path;  // unix socket for `palisade stats` / `reload`
  std::string metrics;       // "127.0.0.1:9469"; empty: no metrics listener
  std::string events_path;   // EVE JSON flow logs; empty: none
  std::vector<std::unique_ptr<events::EventSink>>
      sinks;  // more sinks for the events (the chained log)
  RingConfig ring;
  bool drop_privileges = true;
  // The policy's capture rules record here (capture/recorder.h); empty: none.
  // Each worker writes its own files (…-wN-…), max_files each.
  std::string capture_dir;
  // The pipeline settings for a policy: called at start and on every reload
  // (the policy's conntrack settings, then the command line's overrides).
  std::function<pipeline::Config(const policy::Policy&)> settings;
  // Loads and compiles the policy file; the error says what is wrong.
  std::function<Result<std::shared_ptr<const pipeline::CompiledPolicy>>(const std::string& path,
                                                                        uint32_t generation)>
      load;
};

class Engine {
 public:
  explicit Engine(EngineConfig cfg);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Loads the policy, checks and opens every port, the control socket and the
  // metrics listener, starts the workers, drops privileges. Errors name what
  // failed (a missing interface, a port not in the policy, no privileges).
  Status start();
  // Serves signals and the control socket until SIGINT/SIGTERM or stop();
  // then stops the workers and flushes the flow logs.
  Status run();
  void stop();

  // Reload the policy file now (what SIGHUP and `palisade reload` do).
  // Returns a one-line description of what changed, or why it was refused.
  Result<std::string> reload();

  LiveStats liveStats() const;            // summed over workers
  pipeline::Stats pipelineStats() const;  // summed over workers
  std::string statsText() const;
  std::string statsJson() const;
  std::string metricsText() const;  // Prometheus text exposition format 0.0.4

  const std::vector<std::string>& portNames() const { return port_names_; }

 private:
  struct Worker;
  struct Shared;
  void serveControl(int fd);
  void serveMetrics(int fd);

  EngineConfig cfg_;
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::string> port_names_;  // live port names: "uplink", then the NICs
  events::EventWriter events_;
  bool events_on_ = false;
  int control_fd_ = -1, metrics_fd_ = -1, signal_fd_ = -1;
  std::atomic<bool> stopping_{false};
  int stop_pipe_[2] = {-1, -1};
};

}  // namespace palisade::live

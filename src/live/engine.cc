#include "live/engine.h"

#include "capture/recorder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "core/strings.h"
#include "ddos/board.h"
#include "live/fanout.h"
#include "live/segment.h"
#include "packet/checksum.h"
#include "packet/decoder.h"
#include "pipeline/report.h"

namespace palisade::live {
namespace {

using pipeline::CompiledPolicy;

constexpr TimeNs kMs = 1'000'000;

TimeNs wallNow() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Error sysError(const std::string& what) {
  return Error{strCat(what, ": ", std::strerror(errno))};
}

uint16_t ethertypeOf(Bytes f) {
  return static_cast<uint16_t>(static_cast<uint8_t>(f[12]) << 8 | static_cast<uint8_t>(f[13]));
}

// Drops every capability of the calling thread (threads started after it
// inherit the empty sets) and forbids regaining any through execve.
Status dropCapabilities() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sysError("prctl(PR_SET_NO_NEW_PRIVS)");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);  // needs CAP_SETPCAP; harmless without it
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &hdr, data) != 0) return sysError("capset");
  return {};
}

}  // namespace

const char* toString(LiveDrop d) {
  switch (d) {
#define PALISADE_X(id, name, help) \
  case LiveDrop::id:               \
    return name;
    PALISADE_LIVE_DROPS(PALISADE_X)
#undef PALISADE_X
    case LiveDrop::Count:
      break;
  }
  return "?";
}

void LiveStats::add(const LiveStats& o) {
  if (ports.size() < o.ports.size()) ports.resize(o.ports.size());
  for (size_t i = 0; i < o.ports.size(); ++i) {
    ports[i].rx_packets += o.ports[i].rx_packets;
    ports[i].rx_bytes += o.ports[i].rx_bytes;
    ports[i].tx_packets += o.ports[i].tx_packets;
    ports[i].tx_bytes += o.ports[i].tx_bytes;
    ports[i].kernel_drops += o.ports[i].kernel_drops;
  }
  for (size_t i = 0; i < drops.size(); ++i)
    drops[i] += o.drops[i];
  proxy_arp += o.proxy_arp;
  proxy_nd += o.proxy_nd;
  super_frames += o.super_frames;
  segments += o.segments;
  arp_requests += o.arp_requests;
  neighbour_solicitations += o.neighbour_solicitations;
  checksums_completed += o.checksums_completed;
  ids_overloaded += o.ids_overloaded;
  live_flows += o.live_flows;
  policy_generation = std::max(policy_generation, o.policy_generation);
}

// One policy generation as the workers use it.
struct Generation {
  std::shared_ptr<const CompiledPolicy> policy;
  pipeline::Config cfg;
  std::vector<uint32_t> live_of_pl;  // pipeline port -> live port (kNoIndex: not attached)
  std::vector<uint16_t> pl_of_live;  // live port -> pipeline port
  uint64_t seq = 0;
  // A reload with new IDS rules: each worker's engine, built by the reload
  // off the data path; worker i takes element i (only its own) when it adopts.
  mutable std::vector<std::unique_ptr<ids::Engine>> ids_engines;
};

struct Engine::Shared {
  explicit Shared(const UplinkConfig& u) : uplink(u) {}
  Uplink uplink;
  std::atomic<bool> stop{false};
  std::mutex gen_mu;
  std::shared_ptr<const Generation> gen;  // the newest; workers pick it up between bursts
  std::atomic<uint64_t> gen_seq{0};
  // The workers' DDoS stages report each attack once, together.
  std::shared_ptr<ddos::AttackBoard> attacks = std::make_shared<ddos::AttackBoard>();
};

struct Engine::Worker {
  uint32_t index = 0;
  bool passive = false;
  std::string capture_dir, capture_instance;
  std::unique_ptr<capture::Recorder> recorder;
  std::vector<PacketSocket> socks;  // by live port
  std::vector<uint32_t> mtu;        // by live port: larger frames are cut (segment.h)
  std::vector<pipeline::Pipeline::Input> burst_in;
  std::vector<std::vector<std::byte>> segments;  // of a burst's super-frames
  std::unique_ptr<pipeline::Pipeline> pl;
  std::shared_ptr<const Generation> gen;
  events::EventQueue* queue = nullptr;
  std::thread thread;
  std::atomic<uint64_t> applied{0};
  LiveStats live;
  mutable std::mutex snap_mu;
  LiveStats live_snap;
  pipeline::Stats pl_snap;
  pkt::Decoder side_decoder;  // for checksum completion and uplink ARP
  pkt::Packet side;
  std::vector<std::byte> tx, arp;

  void loop(Shared& sh);
  void adopt(Shared& sh);
  void receiveBurst(Shared& sh, size_t port, TimeNs now);
  // A verdict's frame out of a live port (the uplink's addressed for its next hop).
  void transmit(Shared& sh, size_t port, Bytes frame, TimeNs now);
  bool send(size_t port, Bytes frame);  // counted; false when not sent
  void snapshot();
};

void Engine::Worker::adopt(Shared& sh) {
  if (sh.gen_seq.load(std::memory_order_acquire) == applied.load(std::memory_order_relaxed)) return;
  std::shared_ptr<const Generation> next;
  {
    std::lock_guard lock(sh.gen_mu);
    next = sh.gen;
  }
  pipeline::Config cfg = next->cfg;
  cfg.ddos_board = sh.attacks;
  cfg.ddos_worker = index;
  if (!pl) {
    pl = std::make_unique<pipeline::Pipeline>(next->policy, cfg, queue);
  } else {
    if (index < next->ids_engines.size() && next->ids_engines[index])
      pl->offerIdsEngine(std::move(next->ids_engines[index]), next->policy->ids_digest);
    pl->setPolicy(next->policy);
    pl->reconfigure(cfg);
  }
  gen = next;
  if (!capture_dir.empty()) {
    // The rules of the new policy, in new files (rule indexes changed with it).
    if (recorder) (void)recorder->close();
    auto r = capture::Recorder::create(next->policy, capture_dir, capture_instance);
    if (!r) std::fprintf(stderr, "palisade run: capture: %s\n", r.error().message.c_str());
    recorder = r ? std::move(*r) : nullptr;
  }
  live.policy_generation = next->policy->generation;
  snapshot();  // `palisade stats` shows the generation as soon as reload returns
  applied.store(next->seq, std::memory_order_release);
}

void Engine::Worker::snapshot() {
  for (size_t i = 0; i < socks.size(); ++i)
    live.ports[i].kernel_drops += socks[i].kernelDrops();
  live.live_flows = pl->flows().size();
  std::lock_guard lock(snap_mu);
  live_snap = live;
  pl_snap = pl->stats();
}

void Engine::Worker::transmit(Shared& sh, size_t port, Bytes frame, TimeNs now) {
  if (port != 0) {
    send(port, frame);
    return;
  }
  tx.assign(frame.begin(), frame.end());
  if (!sh.uplink.address(tx, now, arp)) {
    ++live.drops[static_cast<size_t>(LiveDrop::Unresolved)];
    if (!arp.empty() && send(0, arp)) {
      if (ethertypeOf(arp) == pkt::ethertype::kArp)
        ++live.arp_requests;
      else
        ++live.neighbour_solicitations;
    }
    return;
  }
  send(0, Bytes(tx.data(), tx.size()));
}

bool Engine::Worker::send(size_t port, Bytes frame) {
  if (passive) {
    ++live.drops[static_cast<size_t>(LiveDrop::Passive)];
    return false;
  }
  if (!socks[port].send(frame)) {
    ++live.drops[static_cast<size_t>(LiveDrop::TxError)];
    return false;
  }
  ++live.ports[port].tx_packets;
  live.ports[port].tx_bytes += frame.size();
  return true;
}

void Engine::Worker::receiveBurst(Shared& sh, size_t port, TimeNs now) {
  std::array<pipeline::Verdict, pipeline::Pipeline::kBurst> verdicts;
  // A burst's frames, and the segments of any TCP super-frame among them in
  // its place (segment.h); processed in order, kBurst at a time.
  std::vector<pipeline::Pipeline::Input>& in = burst_in;
  in.clear();
  segments.clear();
  size_t n = 0;
  const uint16_t pl_port = gen->pl_of_live[port];
  PortCounters& pc = live.ports[port];
  const size_t got = socks[port].receive(pipeline::Pipeline::kBurst, [&](RxFrame& f) {
    ++pc.rx_packets;
    pc.rx_bytes += f.wire_len;
    if (f.data.size() < f.wire_len) {
      ++live.drops[static_cast<size_t>(LiveDrop::Oversize)];
      return;
    }
    if (f.data.size() > 14 + mtu[port]) {
      // A GSO/GRO super-frame: cut into the segments the sender's stack
      // would have sent without offload (their checksums computed afresh).
      const size_t first = segments.size();
      if (!segmentTcp(f.data, mtu[port], segments)) {
        ++live.drops[static_cast<size_t>(LiveDrop::Oversize)];
        return;
      }
      ++live.super_frames;
      live.segments += segments.size() - first;
      for (size_t i = first; i < segments.size(); ++i) {
        const Bytes s(segments[i].data(), segments[i].size());
        in.push_back({pkt::LinkType::Ethernet, s, static_cast<uint32_t>(s.size()), pl_port, now});
        ++n;
      }
      return;
    }
    if (f.status & TP_STATUS_VLAN_VALID) {
      ++live.drops[static_cast<size_t>(LiveDrop::VlanTag)];
      return;
    }
    if (f.data.size() < 14) {  // the pipeline counts it malformed
      in.push_back({pkt::LinkType::Ethernet, f.data, f.wire_len, pl_port, now});
      ++n;
      return;
    }
    const uint16_t type = ethertypeOf(f.data);
    if (f.status & TP_STATUS_CSUMNOTREADY) {
      // A local sender (a veth peer) left the checksum to offload.
      if (side_decoder.decode(pkt::LinkType::Ethernet, f.data, f.wire_len, side) &&
          pkt::completeTransportChecksum(f.data, side))
        ++live.checksums_completed;
    }
    if (port == 0) {
      if (type == pkt::ethertype::kArp) {
        if (side_decoder.decode(pkt::LinkType::Ethernet, f.data, f.wire_len, side) &&
            side.has(pkt::kArp) && sh.uplink.onArp(side, arp)) {
          ++live.proxy_arp;
          send(0, arp);  // addressed already: to the asker, from the uplink
        }
        return;
      }
      const auto* b = reinterpret_cast<const uint8_t*>(f.data.data());
      const MacAddr src_mac = MacAddr::from(b + 6);
      if (type == pkt::ethertype::kIpv4 && f.data.size() >= 34) {
        sh.uplink.learn(IpAddr::v4(b + 26), src_mac);
      } else if (type == pkt::ethertype::kIpv6 && f.data.size() >= 54) {
        sh.uplink.learn(IpAddr::v6(b + 22), src_mac);
        // Neighbour discovery (ICMPv6 133-137, right after the fixed header
        // as RFC 4861 senders put it) is the switch's to answer, not the pipeline's.
        if (b[20] == pkt::ipproto::kIcmpv6 && f.data.size() >= 58 && b[54] >= 133 && b[54] <= 137) {
          if (!side_decoder.decode(pkt::LinkType::Ethernet, f.data, f.wire_len, side))
            ++live.drops[static_cast<size_t>(LiveDrop::NdInvalid)];
          else if (sh.uplink.onNd(side, arp) && send(0, arp))
            ++live.proxy_nd;
          return;
        }
      }
    }
    in.push_back({pkt::LinkType::Ethernet, f.data, f.wire_len, pl_port, now});
    ++n;
  });
  if (got == 0) return;
  // Three quarters of the ring waiting: the worker is not keeping up, and
  // inline inspection does what the policy's ids.overload says until it is.
  if (pl->idsStats()) {
    const bool over = socks[port].backlog() * 4 >= socks[port].blocks() * 3;
    if (over) ++live.ids_overloaded;
    pl->setOverloaded(over);
  }
  // What a verdict sends: an IPS reject's answer, the frame out of its port.
  auto emit = [&](uint16_t in_port, Bytes frame, uint32_t wire_len, const pipeline::Verdict& v) {
    if (recorder) recorder->offer(*pl, in_port, frame, wire_len, now, v);
    if (!v.reply.empty() && v.reply_port < gen->live_of_pl.size() &&
        gen->live_of_pl[v.reply_port] != pipeline::kNoIndex)
      transmit(sh, gen->live_of_pl[v.reply_port], v.reply, now);
    if (v.action != pipeline::Action::Forward && v.action != pipeline::Action::Answer) return;
    if (v.frame.empty()) return;
    const uint32_t out =
        v.out_port < gen->live_of_pl.size() ? gen->live_of_pl[v.out_port] : pipeline::kNoIndex;
    if (out == pipeline::kNoIndex) {
      ++live.drops[static_cast<size_t>(LiveDrop::PortNotAttached)];
      return;
    }
    transmit(sh, out, v.frame, now);
  };
  for (size_t start = 0; start < n;) {
    const size_t done = pl->processBurst(
        std::span(in.data() + start, std::min(n - start, pipeline::Pipeline::kBurst)), verdicts);
    const std::span<const pipeline::Pipeline::Released> released = pl->released();
    size_t next = 0;
    for (size_t j = 0; j < done; ++j) {
      const size_t i = start + j;
      emit(in[i].in_port, in[i].frame, in[i].wire_len, verdicts[j]);
      // Fragments that waited for their datagram's first leave right after it.
      for (; next < released.size() && released[next].after == j; ++next)
        emit(released[next].in_port, released[next].frame, released[next].wire_len,
             released[next].verdict);
    }
    if (done == 0) break;
    start += done;
  }
  socks[port].release();
}

void Engine::Worker::loop(Shared& sh) {
  std::vector<pollfd> pfds;
  for (const PacketSocket& s : socks)
    pfds.push_back({s.fd(), POLLIN, 0});
  TimeNs last_tick = 0, last_snap = 0;
  while (!sh.stop.load(std::memory_order_relaxed)) {
    adopt(sh);
    bool busy = false;
    TimeNs now = wallNow();
    for (size_t p = 0; p < socks.size(); ++p) {
      // A few bursts per port per round, so one busy port cannot starve the rest.
      for (int round = 0; round < 8; ++round) {
        const uint64_t before = live.ports[p].rx_packets;
        receiveBurst(sh, p, now);
        if (live.ports[p].rx_packets == before) break;
        busy = true;
      }
    }
    now = wallNow();
    if (now - last_tick >= 10 * kMs) {
      pl->tick(now);
      last_tick = now;
    }
    if (now - last_snap >= 100 * kMs) {
      snapshot();
      last_snap = now;
    }
    if (!busy) poll(pfds.data(), pfds.size(), 10);
  }
  pl->finish(wallNow());
  if (recorder) {
    if (Status st = recorder->close(); !st)
      std::fprintf(stderr, "palisade run: capture: %s\n", st.error().message.c_str());
  }
  snapshot();
}

Engine::Engine(EngineConfig cfg) : cfg_(std::move(cfg)) {}

Engine::~Engine() {
  stop();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  if (events_on_) events_.stop();
  for (int fd : {control_fd_, metrics_fd_, signal_fd_, stop_pipe_[0], stop_pipe_[1]})
    if (fd >= 0) close(fd);
  if (!cfg_.control_path.empty() && control_fd_ >= 0) unlink(cfg_.control_path.c_str());
}

namespace {

// The live port mapping of a policy: every bound NIC must be in it.
Result<std::shared_ptr<Generation>> makeGeneration(const EngineConfig& cfg,
                                                   std::shared_ptr<const CompiledPolicy> policy,
                                                   uint64_t seq) {
  auto g = std::make_shared<Generation>();
  g->policy = policy;
  g->cfg = cfg.settings(*policy->model);
  g->cfg.ddos_shares = std::max(1u, cfg.workers);
  g->seq = seq;
  g->live_of_pl.assign(policy->ports.size(), pipeline::kNoIndex);
  g->pl_of_live.push_back(pipeline::kUplinkPort);
  g->live_of_pl[pipeline::kUplinkPort] = 0;
  const uint32_t host = g->cfg.host.empty() ? pipeline::kNoIndex : policy->hostByName(g->cfg.host);
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    const PortBinding& b = cfg.ports[i];
    const uint32_t p = policy->portByName(b.nic);
    if (p == pipeline::kNoIndex || p == pipeline::kUplinkPort) {
      std::vector<std::string_view> names;
      for (const pipeline::PortInfo& pi : policy->ports)
        if (pi.nic != pipeline::kNoIndex) names.push_back(pi.name);
      const std::string_view near = closestMatch(b.nic, names);
      return Error{strCat("--port ", b.nic, "=", b.iface, ": the policy has no NIC '", b.nic, "'",
                          near.empty() ? "" : strCat(" (did you mean '", near, "'?)"))};
    }
    const pipeline::NicInfo& nic = policy->nics[policy->ports[p].nic];
    if (host != pipeline::kNoIndex && nic.host != pipeline::kNoIndex && nic.host != host)
      return Error{strCat("--port ", b.nic, "=", b.iface, ": the policy places NIC ", b.nic,
                          " on host ", policy->hosts[nic.host].name, ", not on ", g->cfg.host)};
    if (g->live_of_pl[p] != pipeline::kNoIndex)
      return Error{strCat("--port ", b.nic, " is given twice")};
    g->live_of_pl[p] = static_cast<uint32_t>(i + 1);
    g->pl_of_live.push_back(static_cast<uint16_t>(p));
  }
  // Capture rules name rules and drop reasons of this policy: checked now, so
  // a start or a reload with a wrong one is refused.
  if (!cfg.capture_dir.empty())
    if (auto r = capture::Recorder::create(policy, cfg.capture_dir, "check"); !r)
      return Error{strCat("the policy is invalid: ", r.error().message)};
  return g;
}

std::vector<IpAddr> ownedOnUplink(const CompiledPolicy& cp, const pipeline::Config& cfg) {
  std::vector<IpAddr> owned;
  for (const pipeline::DeploymentInfo& d : cp.deployments)
    owned.insert(owned.end(), d.vips.begin(), d.vips.end());
  if (!cfg.host.empty()) owned.push_back(cp.hosts[cp.hostByName(cfg.host)].underlay_ip);
  return owned;
}

Result<int> listenUnix(const std::string& path) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path)
    return Error{strCat(path, ": path too long for a unix socket")};
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return sysError("socket(AF_UNIX)");
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  // A stale socket from a previous run is replaced; a live one is not.
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    close(fd);
    return Error{strCat(path, ": another palisade is already listening here")};
  }
  unlink(path.c_str());
  const mode_t old = umask(0077);  // the control socket is root's only
  const int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  umask(old);
  if (rc != 0 || listen(fd, 16) != 0) {
    const Error e = sysError(strCat("control socket ", path));
    close(fd);
    return e;
  }
  return fd;
}

Result<int> listenMetrics(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos)
    return Error{strCat("--metrics ", spec, ": expected ADDRESS:PORT")};
  std::string host = spec.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const auto addr = IpAddr::parse(host);
  char* end = nullptr;
  const unsigned long port = std::strtoul(spec.c_str() + colon + 1, &end, 10);
  if (!addr || *end != '\0' || port == 0 || port > 65535)
    return Error{strCat("--metrics ", spec, ": expected ADDRESS:PORT, e.g. 127.0.0.1:9469")};
  const bool loopback =
      addr->isV4() ? (addr->v4Value() >> 24) == 127 : *addr == *IpAddr::parse("::1");
  if (!loopback)
    return Error{strCat("--metrics ", spec,
                        ": metrics are served on a loopback address only (127.0.0.0/8 or ::1); "
                        "put a scraper or a TLS proxy in front to expose them")};
  const int fd =
      socket(addr->isV4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return sysError("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (addr->isV4()) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sa.sin_addr, addr->b.data() + 12, 4);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } else {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sa.sin6_addr, addr->b.data(), 16);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  if (rc != 0 || listen(fd, 16) != 0) {
    const Error e = sysError(strCat("--metrics ", spec));
    close(fd);
    return e;
  }
  return fd;
}

}  // namespace

Status Engine::start() {
  if (cfg_.workers == 0 || cfg_.workers > 64) return Error{"--workers must be 1 to 64"};
  auto policy = cfg_.load(cfg_.policy_path, 1);
  if (!policy) return policy.error();
  auto gen = makeGeneration(cfg_, *policy, 1);
  if (!gen) return gen.error();

  // Interfaces: each must exist, be up, and be given once.
  std::vector<InterfaceInfo> ifaces;
  port_names_ = {"uplink"};
  std::vector<std::string> seen;
  auto addIface = [&](const std::string& name, const std::string& role) -> Status {
    for (const std::string& s : seen)
      if (s == name) return Error{strCat("interface ", name, " is given twice (", role, ")")};
    seen.push_back(name);
    auto info = interfaceInfo(name);
    if (!info) return Error{strCat(role, ": ", info.error().message)};
    ifaces.push_back(*info);
    return {};
  };
  if (cfg_.uplink.empty()) return Error{"--uplink is required"};
  if (Status st = addIface(cfg_.uplink, "--uplink"); !st) return st;
  for (const PortBinding& b : cfg_.ports) {
    if (Status st = addIface(b.iface, strCat("--port ", b.nic)); !st) return st;
    port_names_.push_back(b.nic);
  }
  cfg_.uplink_l2.mac = ifaces[0].mac;
  shared_ = std::make_unique<Shared>(cfg_.uplink_l2);
  shared_->uplink.setOwned(ownedOnUplink(**policy, (*gen)->cfg));
  shared_->gen = *gen;
  shared_->gen_seq = 1;

  // Sockets: one per worker per port, each port its own fanout group.
  const uint16_t group_base = static_cast<uint16_t>((getpid() * 16) & 0xffff);
  for (unsigned w = 0; w < cfg_.workers; ++w) {
    auto worker = std::make_unique<Worker>();
    worker->index = w;
    worker->passive = cfg_.passive;
    worker->capture_dir = cfg_.capture_dir;
    worker->capture_instance = cfg_.workers > 1 ? strCat("w", std::to_string(w)) : std::string();
    worker->live.ports.resize(ifaces.size());
    worker->side_decoder = pkt::Decoder((*gen)->cfg.decoder);
    for (size_t p = 0; p < ifaces.size(); ++p) {
      std::vector<sock_filter> prog;
      if (p == 0) {
        prog = fanoutProgram(PortRole::Uplink, {}, (*gen)->cfg.decoder.vxlan_port);
      } else {
        const pipeline::NicInfo& nic = (*policy)->nics[(*policy)->ports[(*gen)->pl_of_live[p]].nic];
        prog = fanoutProgram(PortRole::Nic, (*policy)->vnets[nic.vnet].virtual_network, 0);
      }
      auto s =
          PacketSocket::open(ifaces[p], cfg_.ring, static_cast<uint16_t>(group_base + p), prog);
      if (!s) return s.error();
      worker->socks.push_back(std::move(*s));
      worker->mtu.push_back(ifaces[p].mtu);
    }
    workers_.push_back(std::move(worker));
  }

  if (!cfg_.control_path.empty()) {
    auto fd = listenUnix(cfg_.control_path);
    if (!fd) return fd.error();
    control_fd_ = *fd;
  }
  if (!cfg_.metrics.empty()) {
    auto fd = listenMetrics(cfg_.metrics);
    if (!fd) return fd.error();
    metrics_fd_ = *fd;
  }
  if (!cfg_.events_path.empty()) {
    auto sink = events::FileSink::open(cfg_.events_path);
    if (!sink) return sink.error();
    cfg_.sinks.push_back(std::move(*sink));
  }
  if (!cfg_.sinks.empty()) {
    for (auto& sink : cfg_.sinks)
      events_.addSink(std::move(sink));
    cfg_.sinks.clear();
    for (auto& w : workers_)
      w->queue = &events_.addQueue(1u << 14);
    events_on_ = true;
  }
  if (pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return sysError("pipe");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // threads started below inherit the mask
  sigdelset(&set, SIGPIPE);
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) return sysError("signalfd");

  if (cfg_.drop_privileges)
    if (Status st = dropCapabilities(); !st) return st;

  if (events_on_) events_.start();
  for (auto& w : workers_) {
    w->adopt(*shared_);
    Worker* wp = w.get();
    Shared* sh = shared_.get();
    w->thread = std::thread([wp, sh] { wp->loop(*sh); });
  }
  return {};
}

void Engine::stop() {
  stopping_.store(true);
  if (stop_pipe_[1] >= 0) {
    const char c = 's';
    [[maybe_unused]] ssize_t n = write(stop_pipe_[1], &c, 1);
  }
}

Result<std::string> Engine::reload() {
  std::shared_ptr<const Generation> old;
  {
    std::lock_guard lock(shared_->gen_mu);
    old = shared_->gen;
  }
  const uint32_t next_gen = old->policy->generation + 1;
  auto policy = cfg_.load(cfg_.policy_path, next_gen);
  if (!policy)
    return Error{strCat("reload refused, generation ", std::to_string(old->policy->generation),
                        " stays: ", policy.error().message)};
  const uint64_t seq = shared_->gen_seq.load() + 1;
  auto gen = makeGeneration(cfg_, *policy, seq);
  if (!gen)
    return Error{strCat("reload refused, generation ", std::to_string(old->policy->generation),
                        " stays: ", gen.error().message)};
  if ((*gen)->cfg.host != old->cfg.host)
    return Error{"reload refused: the host cannot change in a running switch"};
  // Fanout programs follow the new address spaces (one socket per group sets it).
  for (size_t p = 1; p < (*gen)->pl_of_live.size(); ++p) {
    const pipeline::NicInfo& nic = (*policy)->nics[(*policy)->ports[(*gen)->pl_of_live[p]].nic];
    const auto prog = fanoutProgram(PortRole::Nic, (*policy)->vnets[nic.vnet].virtual_network, 0);
    if (Status st = workers_[0]->socks[p].setProgram(prog); !st)
      return Error{strCat("reload: ", port_names_[p], ": ", st.error().message)};
  }
  shared_->uplink.setOwned(ownedOnUplink(**policy, (*gen)->cfg));
  // New IDS rules: the workers' engines are built here, so the workers only
  // swap them in (building one with ET Open takes most of a second).
  if ((*policy)->ids_rules && (*policy)->ids_digest != old->policy->ids_digest)
    for (size_t i = 0; i < workers_.size(); ++i)
      (*gen)->ids_engines.push_back(
          pipeline::Pipeline::buildIdsEngine(**policy, old->policy->ids_rules != nullptr));
  {
    std::lock_guard lock(shared_->gen_mu);
    shared_->gen = *gen;
  }
  shared_->gen_seq.store(seq, std::memory_order_release);
  // Wait (briefly) until every worker runs it, so the answer is the truth.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& w : workers_)
    while (w->applied.load(std::memory_order_acquire) < seq &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::string kept;
  if ((*gen)->cfg.conntrack.capacity != old->cfg.conntrack.capacity)
    kept = "; conntrack capacity needs a restart and stays as it was";
  return strCat("policy generation ", std::to_string(next_gen), " from ", cfg_.policy_path, ": ",
                std::to_string((*policy)->rules.size()), " rules, ",
                std::to_string((*policy)->nics.size()), " NICs; ",
                (*gen)->cfg.reevaluate_on_change ? "established flows are re-evaluated"
                                                 : "established flows are kept",
                kept);
}

Status Engine::run() {
  std::vector<pollfd> pfds{{signal_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
  if (control_fd_ >= 0) pfds.push_back({control_fd_, POLLIN, 0});
  if (metrics_fd_ >= 0) pfds.push_back({metrics_fd_, POLLIN, 0});
  while (!stopping_.load()) {
    if (poll(pfds.data(), pfds.size(), 1000) < 0 && errno != EINTR) return sysError("poll");
    for (const pollfd& p : pfds) {
      if (!(p.revents & POLLIN)) continue;
      if (p.fd == signal_fd_) {
        signalfd_siginfo si{};
        while (read(signal_fd_, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            auto r = reload();
            std::fprintf(stderr, "palisade run: SIGHUP: %s\n",
                         r ? r->c_str() : r.error().message.c_str());
          } else {
            std::fprintf(stderr, "palisade run: %s, stopping\n",
                         si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
            stopping_.store(true);
          }
        }
      } else if (p.fd == control_fd_ || p.fd == metrics_fd_) {
        const int c = accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        timeval tv{1, 0};  // a client that says nothing is cut off
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (p.fd == control_fd_)
          serveControl(c);
        else
          serveMetrics(c);
        close(c);
      }
    }
  }
  shared_->stop.store(true);
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  if (events_on_) {
    events_.stop();
    events_on_ = false;
    if (auto e = events_.sinkError()) return Error{strCat("events: ", e->message)};
  }
  return {};
}

namespace {

bool sendAll(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until `end` is seen, the peer closes, the timeout passes or max bytes.
std::string readUntil(int fd, std::string_view end, size_t max) {
  std::string buf;
  char tmp[1024];
  while (buf.size() < max && buf.find(end) == std::string::npos) {
    const ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
  }
  return buf;
}

}  // namespace

void Engine::serveControl(int fd) {
  std::string line = readUntil(fd, "\n", 256);
  if (const size_t nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  if (line == "stats") {
    sendAll(fd, statsText());
  } else if (line == "stats json") {
    sendAll(fd, statsJson());
  } else if (line == "metrics") {
    sendAll(fd, metricsText());
  } else if (line == "reload") {
    auto r = reload();
    sendAll(fd, r ? strCat("ok ", *r, "\n") : strCat("error ", r.error().message, "\n"));
  } else {
    sendAll(fd, strCat("error unknown command '", printable(line),
                       "' (stats, stats json, metrics, reload)\n"));
  }
}

void Engine::serveMetrics(int fd) {
  const std::string req = readUntil(fd, "\r\n\r\n", 8192);
  const size_t sp = req.find(' ');
  const size_t sp2 = sp == std::string::npos ? sp : req.find(' ', sp + 1);
  const std::string method = req.substr(0, sp);
  const std::string target = sp2 == std::string::npos ? "" : req.substr(sp + 1, sp2 - sp - 1);
  auto reply = [&](const char* status, std::string_view type, std::string_view body) {
    sendAll(fd, strCat("HTTP/1.1 ", status, "\r\nContent-Type: ", type, "\r\nContent-Length: ",
                       std::to_string(body.size()), "\r\nConnection: close\r\n\r\n", body));
  };
  if (method != "GET" && method != "HEAD") {
    reply("405 Method Not Allowed", "text/plain", "only GET\n");
  } else if (target == "/metrics") {
    reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", metricsText());
  } else {
    reply("404 Not Found", "text/plain", "metrics are at /metrics\n");
  }
}

LiveStats Engine::liveStats() const {
  LiveStats sum;
  sum.ports.resize(port_names_.size());
  for (const auto& w : workers_) {
    std::lock_guard lock(w->snap_mu);
    sum.add(w->live_snap);
  }
  return sum;
}

pipeline::Stats Engine::pipelineStats() const {
  pipeline::Stats sum;
  for (const auto& w : workers_) {
    std::lock_guard lock(w->snap_mu);
    sum.add(w->pl_snap);
  }
  // An attack several workers see is one attack (each counts the ones it
  // opened on the board); under way: the board's.
  if (shared_) sum.ddos_active = shared_->attacks->openAttacks();
  return sum;
}

std::string Engine::statsJson() const {
  const LiveStats l = liveStats();
  const pipeline::Stats s = pipelineStats();
  nlohmann::json ports = nlohmann::json::object();
  for (size_t i = 0; i < l.ports.size(); ++i)
    ports[port_names_[i]] = {{"interface", i == 0 ? cfg_.uplink : cfg_.ports[i - 1].iface},
                             {"rx_packets", l.ports[i].rx_packets},
                             {"rx_bytes", l.ports[i].rx_bytes},
                             {"tx_packets", l.ports[i].tx_packets},
                             {"tx_bytes", l.ports[i].tx_bytes},
                             {"kernel_drops", l.ports[i].kernel_drops}};
  nlohmann::json live = nlohmann::json::object();
  for (size_t d = 0; d < l.drops.size(); ++d)
    if (l.drops[d]) live[toString(static_cast<LiveDrop>(d))] = l.drops[d];
  nlohmann::json j = pipeline::statsJson(s, l.live_flows);
  j["policy_generation"] = l.policy_generation;
  j["workers"] = workers_.size();
  j["passive"] = cfg_.passive;
  j["ports"] = ports;
  j["answers"]["proxy_arp"] = l.proxy_arp;
  j["answers"]["proxy_nd"] = l.proxy_nd;
  j["port_drops"] = live;
  j["uplink"] = {{"neighbours", shared_->uplink.neighbours()},
                 {"arp_requests", l.arp_requests},
                 {"neighbour_solicitations", l.neighbour_solicitations}};
  j["checksums_completed"] = l.checksums_completed;
  j["gso"] = {{"super_frames", l.super_frames}, {"segments", l.segments}};
  j["ids_overloaded_bursts"] = l.ids_overloaded;
  nlohmann::json per_worker = nlohmann::json::array();
  for (const auto& w : workers_) {
    std::lock_guard lock(w->snap_mu);
    per_worker.push_back({{"packets", w->pl_snap.packets}, {"flows", w->live_snap.live_flows}});
  }
  j["per_worker"] = per_worker;
  return j.dump(2) + "\n";
}

std::string Engine::statsText() const {
  const LiveStats l = liveStats();
  const pipeline::Stats s = pipelineStats();
  std::string out = strCat("palisade run: policy generation ", std::to_string(l.policy_generation),
                           ", ", std::to_string(workers_.size()), " worker(s)",
                           cfg_.passive ? ", passive" : "", "\n\n");
  char line[256];
  std::snprintf(line, sizeof line, "  %-20s %-12s %12s %12s %12s %10s\n", "port", "interface",
                "rx packets", "tx packets", "rx bytes", "ring drops");
  out += line;
  for (size_t i = 0; i < l.ports.size(); ++i) {
    std::snprintf(line, sizeof line, "  %-20s %-12s %12llu %12llu %12llu %10llu\n",
                  port_names_[i].c_str(), (i == 0 ? cfg_.uplink : cfg_.ports[i - 1].iface).c_str(),
                  static_cast<unsigned long long>(l.ports[i].rx_packets),
                  static_cast<unsigned long long>(l.ports[i].tx_packets),
                  static_cast<unsigned long long>(l.ports[i].rx_bytes),
                  static_cast<unsigned long long>(l.ports[i].kernel_drops));
    out += line;
  }
  std::snprintf(
      line, sizeof line,
      "\n  packets %llu: forwarded %llu, dropped %llu, answered %llu (ARP %llu, DHCP "
      "%llu, ND %llu, proxy ARP on the uplink %llu, proxy ND on the uplink %llu)\n  flows: "
      "%llu live, %llu created, %llu expired\n",
      static_cast<unsigned long long>(s.packets), static_cast<unsigned long long>(s.forwarded),
      static_cast<unsigned long long>(s.dropped), static_cast<unsigned long long>(s.answered),
      static_cast<unsigned long long>(s.arp_answered),
      static_cast<unsigned long long>(s.dhcp_answered),
      static_cast<unsigned long long>(s.nd_answered), static_cast<unsigned long long>(l.proxy_arp),
      static_cast<unsigned long long>(l.proxy_nd), static_cast<unsigned long long>(l.live_flows),
      static_cast<unsigned long long>(s.flows_created),
      static_cast<unsigned long long>(s.flows_expired));
  out += line;
  out += pipeline::layerTables(s);
  bool header = s.dropped != 0;  // layerTables printed the reason header
  for (size_t d = 0; d < l.drops.size(); ++d) {
    if (!l.drops[d]) continue;
    if (!header) {
      std::snprintf(line, sizeof line, "\n  %-22s %10s  %s\n", "drop reason", "packets", "layer");
      out += line;
      header = true;
    }
    std::snprintf(line, sizeof line, "  %-22s %10llu  port\n", toString(static_cast<LiveDrop>(d)),
                  static_cast<unsigned long long>(l.drops[d]));
    out += line;
  }
  return out;
}

std::string Engine::metricsText() const {
  const LiveStats l = liveStats();
  const pipeline::Stats s = pipelineStats();
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += strCat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  };
  auto sample = [&](const char* name, const std::string& labels, uint64_t v) {
    out +=
        strCat(name, labels.empty() ? "" : strCat("{", labels, "}"), " ", std::to_string(v), "\n");
  };
  auto portLabel = [&](size_t i) {
    return strCat("port=\"", port_names_[i], "\",interface=\"",
                  i == 0 ? cfg_.uplink : cfg_.ports[i - 1].iface, "\"");
  };
  static constexpr struct {
    const char* name;
    const char* help;
    uint64_t PortCounters::*field;
  } kPortFamilies[] = {
      {"palisade_port_rx_packets_total", "Frames received on a port.", &PortCounters::rx_packets},
      {"palisade_port_rx_bytes_total", "Bytes received on a port.", &PortCounters::rx_bytes},
      {"palisade_port_tx_packets_total", "Frames sent on a port.", &PortCounters::tx_packets},
      {"palisade_port_tx_bytes_total", "Bytes sent on a port.", &PortCounters::tx_bytes},
      {"palisade_port_ring_drops_total",
       "Frames the kernel dropped because a receive ring was full.", &PortCounters::kernel_drops},
  };
  for (const auto& f : kPortFamilies) {
    family(f.name, "counter", f.help);
    for (size_t i = 0; i < l.ports.size(); ++i)
      sample(f.name, portLabel(i), l.ports[i].*f.field);
  }
  family("palisade_packets_total", "counter", "Packets through the pipeline by outcome.");
  sample("palisade_packets_total", "outcome=\"forwarded\"", s.forwarded);
  sample("palisade_packets_total", "outcome=\"dropped\"", s.dropped);
  sample("palisade_packets_total", "outcome=\"answered\"", s.answered);
  family("palisade_layer_packets_total", "counter", "Packets each layer passed or dropped.");
  for (size_t i = 0; i < static_cast<size_t>(pipeline::Layer::Count); ++i) {
    const char* name = pipeline::toString(static_cast<pipeline::Layer>(i));
    sample("palisade_layer_packets_total", strCat("layer=\"", name, "\",result=\"passed\""),
           s.layer_pass[i]);
    sample("palisade_layer_packets_total", strCat("layer=\"", name, "\",result=\"dropped\""),
           s.layer_drop[i]);
  }
  family("palisade_drops_total", "counter", "Dropped packets by reason and layer.");
  for (size_t r = 1; r < s.drops.size(); ++r) {
    const auto reason = static_cast<pipeline::Reason>(r);
    sample("palisade_drops_total",
           strCat("reason=\"", pipeline::toString(reason), "\",layer=\"",
                  pipeline::toString(pipeline::layerOf(reason)), "\""),
           s.drops[r]);
  }
  for (size_t d = 0; d < l.drops.size(); ++d)
    sample("palisade_drops_total",
           strCat("reason=\"", toString(static_cast<LiveDrop>(d)), "\",layer=\"port\""),
           l.drops[d]);
  family("palisade_answers_total", "counter", "Requests the switch answered itself.");
  sample("palisade_answers_total", "kind=\"arp\"", s.arp_answered);
  sample("palisade_answers_total", "kind=\"dhcp\"", s.dhcp_answered);
  sample("palisade_answers_total", "kind=\"nd\"", s.nd_answered);
  sample("palisade_answers_total", "kind=\"proxy_arp\"", l.proxy_arp);
  sample("palisade_answers_total", "kind=\"proxy_nd\"", l.proxy_nd);
  family("palisade_gso_frames_total", "counter",
         "TCP super-frames (GSO/GRO) cut into MTU-sized segments on arrival.");
  sample("palisade_gso_frames_total", "", l.super_frames);
  family("palisade_gso_segments_total", "counter", "Segments the super-frames were cut into.");
  sample("palisade_gso_segments_total", "", l.segments);
  family("palisade_flows", "gauge", "Connections tracked now.");
  sample("palisade_flows", "", l.live_flows);
  family("palisade_flows_created_total", "counter", "Connections created.");
  sample("palisade_flows_created_total", "", s.flows_created);
  family("palisade_flows_expired_total", "counter", "Connections expired.");
  sample("palisade_flows_expired_total", "", s.flows_expired);
  family("palisade_ddos_attacks_total", "counter", "DDoS attacks detected (started).");
  sample("palisade_ddos_attacks_total", "", s.ddos_attacks);
  family("palisade_ddos_attacks_active", "gauge", "DDoS attacks under way.");
  sample("palisade_ddos_attacks_active", "", s.ddos_active);
  family("palisade_ddos_targets", "gauge", "Protected addresses the DDoS stage tracks.");
  sample("palisade_ddos_targets", "", s.ddos_targets);
  family("palisade_ddos_handshakes_total", "counter",
         "TCP handshakes to protected addresses completed (the SYN-to-ACK ratio's ACKs).");
  sample("palisade_ddos_handshakes_total", "", s.ddos_handshakes);
  family("palisade_ddos_flash_crowds_total", "counter",
         "SYN rates over their threshold not taken for a flood: the SYN-to-ACK ratio held.");
  sample("palisade_ddos_flash_crowds_total", "", s.ddos_flash_crowds);
  family("palisade_syn_proxy_cookies_total", "counter",
         "SYN cookies the SYN proxy sent, and client ACKs whose cookie was valid or not.");
  sample("palisade_syn_proxy_cookies_total", "outcome=\"sent\"", s.syn_cookies_sent);
  sample("palisade_syn_proxy_cookies_total", "outcome=\"valid\"", s.syn_cookies_valid);
  sample("palisade_syn_proxy_cookies_total", "outcome=\"invalid\"", s.syn_cookies_invalid);
  family("palisade_syn_proxy_connections_total", "counter",
         "Connections the SYN proxy completed with the server.");
  sample("palisade_syn_proxy_connections_total", "", s.syn_proxied);
  family("palisade_ids_packets_total", "counter",
         "Packets of inspected flows: inspected, or passed uninspected under overload "
         "(fail-open; fail-closed drops them as ids_overload).");
  sample("palisade_ids_packets_total", "outcome=\"inspected\"", s.ids_inspected);
  sample("palisade_ids_packets_total", "outcome=\"bypassed\"", s.ids_bypassed);
  family("palisade_ids_overloaded_bursts_total", "counter",
         "Bursts received with the ring three quarters full: inline inspection overloaded.");
  sample("palisade_ids_overloaded_bursts_total", "", l.ids_overloaded);
  family("palisade_ids_alerts_total", "counter", "Alerts the inline IDS raised.");
  sample("palisade_ids_alerts_total", "", s.ids_alerts);
  family("palisade_ids_flows_dropped_total", "counter", "Flows an IPS drop rule stopped.");
  sample("palisade_ids_flows_dropped_total", "", s.ids_flows_dropped);
  family("palisade_ids_rejects_total", "counter",
         "Answers sent for IPS reject rules (TCP RST, ICMP port unreachable).");
  sample("palisade_ids_rejects_total", "", s.ids_rejects);
  family("palisade_fragments_forwarded_total", "counter",
         "Non-first IP fragments forwarded after their datagram's first fragment.");
  sample("palisade_fragments_forwarded_total", "", s.fragments_forwarded);
  family("palisade_fragments_held_total", "counter",
         "Non-first IP fragments that came before their datagram's first and were held for it.");
  sample("palisade_fragments_held_total", "", s.fragments_held);
  family("palisade_policy_generation", "gauge", "The policy generation the workers run.");
  sample("palisade_policy_generation", "", l.policy_generation);
  family("palisade_uplink_neighbours", "gauge", "Neighbours known on the uplink.");
  sample("palisade_uplink_neighbours", "", shared_->uplink.neighbours());
  return out;
}

}  // namespace palisade::live

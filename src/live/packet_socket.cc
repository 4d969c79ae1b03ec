#include "live/packet_socket.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace palisade::live {
namespace {

Error sysError(const std::string& what) {
  return Error{strCat(what, ": ", std::strerror(errno))};
}

}  // namespace

Result<InterfaceInfo> interfaceInfo(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return Error{strCat("'", name, "' is not a valid interface name")};
  InterfaceInfo info;
  info.name = name;
  info.index = static_cast<int>(if_nametoindex(name.c_str()));
  if (info.index == 0) return Error{strCat("interface ", name, ": no such interface")};
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return sysError("socket");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
    info.mac = MacAddr::from(reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data));
  if (ioctl(fd, SIOCGIFMTU, &ifr) == 0) info.mtu = static_cast<uint32_t>(ifr.ifr_mtu);
  bool up = false;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) up = (ifr.ifr_flags & IFF_UP) != 0;
  close(fd);
  if (!up) return Error{strCat("interface ", name, " is down ('ip link set ", name, " up')")};
  return info;
}

Result<PacketSocket> PacketSocket::open(const InterfaceInfo& iface, const RingConfig& ring,
                                        uint16_t group, std::span<const sock_filter> program) {
  PacketSocket s;
  s.cfg_ = ring;
  const std::string where = strCat("interface ", iface.name);
  // Protocol 0 first: nothing arrives before the ring and the fanout are set
  // up; bind() with ETH_P_ALL below starts reception.
  s.fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s.fd_ < 0) {
    if (errno == EPERM || errno == EACCES)
      return Error{strCat(where,
                          ": opening a packet socket needs CAP_NET_RAW (run as root or grant "
                          "the capability)")};
    return sysError(strCat(where, ": socket(AF_PACKET)"));
  }
  int v = TPACKET_V3;
  if (setsockopt(s.fd_, SOL_PACKET, PACKET_VERSION, &v, sizeof v) != 0)
    return sysError(strCat(where, ": PACKET_VERSION TPACKET_V3"));
  tpacket_req3 req{};
  req.tp_block_size = ring.block_size;
  req.tp_block_nr = ring.blocks;
  req.tp_frame_size = ring.frame_size;
  req.tp_frame_nr = ring.block_size / ring.frame_size * ring.blocks;
  req.tp_retire_blk_tov = ring.retire_ms;
  if (setsockopt(s.fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0)
    return sysError(strCat(where, ": PACKET_RX_RING"));
  s.ring_len_ = size_t{ring.block_size} * ring.blocks;
  void* m = mmap(nullptr, s.ring_len_, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_LOCKED | MAP_POPULATE, s.fd_, 0);
  if (m == MAP_FAILED)  // MAP_LOCKED can exceed RLIMIT_MEMLOCK; unlocked works too
    m = mmap(nullptr, s.ring_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, s.fd_, 0);
  if (m == MAP_FAILED) {
    s.ring_len_ = 0;
    return sysError(strCat(where, ": mmap of the receive ring"));
  }
  s.ring_ = static_cast<std::byte*>(m);
  v = 1;
  // Our own transmissions must not come back (Linux 4.20+).
  if (setsockopt(s.fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v, sizeof v) != 0)
    return sysError(strCat(where, ": PACKET_IGNORE_OUTGOING"));
  // Straight to the driver: the switch is the only sender on its ports.
  setsockopt(s.fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof v);

  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = iface.index;
  if (bind(s.fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0)
    return sysError(strCat(where, ": bind"));
  packet_mreq mr{};
  mr.mr_ifindex = iface.index;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(s.fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0)
    return sysError(strCat(where, ": promiscuous mode"));

  const int fanout = group | (PACKET_FANOUT_CBPF << 16);
  if (setsockopt(s.fd_, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof fanout) != 0)
    return sysError(strCat(where, ": PACKET_FANOUT group ", std::to_string(group)));
  if (Status st = s.setProgram(program); !st) return Error{strCat(where, ": ", st.error().message)};
  return s;
}

Status PacketSocket::setProgram(std::span<const sock_filter> program) {
  if (program.size() > BPF_MAXINSNS)
    return Error{strCat("the fanout program has ", std::to_string(program.size()),
                        " instructions, more than the ", std::to_string(BPF_MAXINSNS),
                        " the kernel takes (too many address prefixes)")};
  sock_fprog fp{};
  fp.len = static_cast<unsigned short>(program.size());
  fp.filter = const_cast<sock_filter*>(program.data());
  if (setsockopt(fd_, SOL_PACKET, PACKET_FANOUT_DATA, &fp, sizeof fp) != 0)
    return sysError("PACKET_FANOUT_DATA (the fanout program)");
  return {};
}

PacketSocket& PacketSocket::operator=(PacketSocket&& o) noexcept {
  if (this != &o) {
    this->~PacketSocket();
    fd_ = o.fd_;
    ring_ = o.ring_;
    ring_len_ = o.ring_len_;
    cfg_ = o.cfg_;
    block_ = o.block_;
    in_block_ = o.in_block_;
    next_ = o.next_;
    o.fd_ = -1;
    o.ring_ = nullptr;
    o.ring_len_ = 0;
  }
  return *this;
}

PacketSocket::~PacketSocket() {
  if (ring_) munmap(ring_, ring_len_);
  if (fd_ >= 0) close(fd_);
  ring_ = nullptr;
  fd_ = -1;
}

void PacketSocket::release() {
  auto* bd = reinterpret_cast<tpacket_block_desc*>(ring_ + size_t{block_} * cfg_.block_size);
  if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) return;
  if (in_block_ < bd->hdr.bh1.num_pkts) return;
  __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  block_ = (block_ + 1) % cfg_.blocks;
  in_block_ = 0;
}

Status PacketSocket::send(Bytes frame) {
  const ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT);
  if (n == static_cast<ssize_t>(frame.size())) return {};
  return sysError("send");
}

uint64_t PacketSocket::kernelDrops() {
  tpacket_stats_v3 st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) return 0;
  return st.tp_drops;
}

}  // namespace palisade::live

#include "packet/summary.h"

#include <cstdio>

namespace palisade::pkt {
namespace {

void appendf(std::string& out, const char* fmt, auto... args) {
  char buf[160];
  const int n = std::snprintf(buf, sizeof buf, fmt, args...);
  if (n > 0)
    out.append(buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

void appendIp(std::string& out, const IpAddr& a) {
  char buf[48];
  out.append(buf, formatIp(a, buf));
}

void appendMac(std::string& out, const MacAddr& m) {
  char buf[18];
  out.append(buf, formatMac(m, buf));
}

void appendEndpoint(std::string& out, const IpAddr& a, uint16_t port) {
  appendIp(out, a);
  appendf(out, ".%u", unsigned{port});
}

void appendTcpFlags(std::string& out, uint8_t f) {
  out += "Flags [";
  if (f & tcpflag::kSyn) out += 'S';
  if (f & tcpflag::kFin) out += 'F';
  if (f & tcpflag::kRst) out += 'R';
  if (f & tcpflag::kPsh) out += 'P';
  if (f & tcpflag::kUrg) out += 'U';
  if (f & tcpflag::kEce) out += 'E';
  if (f & tcpflag::kCwr) out += 'W';
  if (f & tcpflag::kAck) out += '.';
  if (f == 0) out += "none";
  out += ']';
}

const char* dhcpTypeName(uint8_t t) {
  static constexpr const char* kNames[] = {"BOOTP",       "DHCPDISCOVER", "DHCPOFFER",
                                           "DHCPREQUEST", "DHCPDECLINE",  "DHCPACK",
                                           "DHCPNAK",     "DHCPRELEASE",  "DHCPINFORM"};
  return t < 9 ? kNames[t] : "DHCP-unknown";
}

const char* icmpv6Name(uint8_t t) {
  switch (t) {
    case 1:
      return "destination unreachable";
    case 2:
      return "packet too big";
    case 3:
      return "time exceeded";
    case 4:
      return "parameter problem";
    case 128:
      return "echo request";
    case 129:
      return "echo reply";
    case 133:
      return "router solicitation";
    case 134:
      return "router advertisement";
    case 135:
      return "neighbor solicitation";
    case 136:
      return "neighbor advertisement";
    case 137:
      return "redirect";
    default:
      return "type";
  }
}

const char* icmpName(uint8_t t) {
  switch (t) {
    case 0:
      return "echo reply";
    case 3:
      return "unreachable";
    case 5:
      return "redirect";
    case 8:
      return "echo request";
    case 11:
      return "time exceeded";
    case 12:
      return "parameter problem";
    case 13:
      return "time stamp request";
    case 14:
      return "time stamp reply";
    default:
      return "type";
  }
}

void appendL4(std::string& out, const Packet& p, const Packet* inner) {
  const bool v6 = p.has(kIpv6);
  out += v6 ? "IP6 " : "IP ";
  const bool ports = p.has(kTcp) || p.has(kUdp);
  if (ports) {
    appendEndpoint(out, p.src, p.sport);
    out += " > ";
    appendEndpoint(out, p.dst, p.dport);
  } else {
    appendIp(out, p.src);
    out += " > ";
    appendIp(out, p.dst);
  }
  out += ": ";
  if (p.isLaterFragment()) {
    appendf(out, "ip-proto-%u frag (id %u, offset %u%s), length %u", unsigned{p.proto}, p.frag.id,
            unsigned{p.frag.offset}, p.frag.more ? ", more" : "", p.payload_len);
    return;
  }
  if (p.has(kTcp)) {
    appendTcpFlags(out, p.tcp.flags);
    appendf(out, ", seq %u", p.tcp.seq);
    if (p.tcp.flags & tcpflag::kAck) appendf(out, ", ack %u", p.tcp.ack);
    appendf(out, ", win %u", unsigned{p.tcp.window});
    const TcpOptions& o = p.tcp.opt;
    if (o.has_mss || o.has_wscale || o.sack_permitted || o.has_timestamp || o.has_sack) {
      out += ", options [";
      const char* sep = "";
      if (o.has_mss) {
        appendf(out, "%smss %u", sep, unsigned{o.mss});
        sep = ",";
      }
      if (o.sack_permitted) {
        appendf(out, "%ssackOK", sep);
        sep = ",";
      }
      if (o.has_sack) {
        appendf(out, "%ssack", sep);
        sep = ",";
      }
      if (o.has_timestamp) {
        appendf(out, "%sTS val %u ecr %u", sep, o.ts_val, o.ts_ecr);
        sep = ",";
      }
      if (o.has_wscale) appendf(out, "%swscale %u", sep, unsigned{o.wscale});
      out += ']';
    }
    appendf(out, ", length %u", p.payload_len);
  } else if (p.has(kVxlan)) {
    appendf(out, "VXLAN, vni %u: ", p.vxlan.vni);
    if (inner)
      appendSummary(out, *inner);
    else
      appendf(out, "inner frame, length %u", p.vxlan.inner_len);
    return;
  } else if (p.has(kDhcp)) {
    appendf(out, "BOOTP/DHCP, %s from ", p.dhcp.op == 1 ? "Request" : "Reply");
    appendMac(out, p.dhcp.client_mac);
    appendf(out, ", %s, xid 0x%08x", dhcpTypeName(p.dhcp.msg_type), p.dhcp.xid);
    if (p.dhcp.has_requested) {
      out += ", requested ";
      appendIp(out, p.dhcp.requested);
    }
    if (!p.dhcp.yiaddr.isUnspecified()) {
      out += ", your ";
      appendIp(out, p.dhcp.yiaddr);
    }
  } else if (p.has(kUdp)) {
    appendf(out, "UDP, length %u", p.payload_len);
  } else if (p.has(kIcmp)) {
    appendf(out, "ICMP %s", icmpName(p.icmp.type));
    if (p.icmp.type == 0 || p.icmp.type == 8) {
      appendf(out, ", id %u, seq %u", unsigned{p.icmp.id}, unsigned{p.icmp.seq});
    } else {
      appendf(out, " %u code %u", unsigned{p.icmp.type}, unsigned{p.icmp.code});
    }
    appendf(out, ", length %u", p.payload_len + 8);
  } else if (p.has(kIcmpv6)) {
    appendf(out, "ICMP6, %s", icmpv6Name(p.icmp.type));
    if (p.has(kNd) && p.nd.has_target) {
      out += p.icmp.type == 135 ? ", who has " : ", tgt is ";
      appendIp(out, p.nd.target);
    }
    if (p.icmp.type == 128 || p.icmp.type == 129) {
      appendf(out, ", id %u, seq %u", unsigned{p.icmp.id}, unsigned{p.icmp.seq});
    }
  } else {
    appendf(out, "ip-proto-%u, length %u", unsigned{p.proto}, p.payload_len);
  }
  if (p.has(kFragment)) appendf(out, " (frag id %u, more)", p.frag.id);
}

}  // namespace

void appendSummary(std::string& out, const Packet& p, const Packet* inner) {
  if (p.has(kEth)) {
    appendMac(out, p.eth_src);
    out += " > ";
    appendMac(out, p.eth_dst);
    for (uint8_t i = 0; i < p.vlan_count; ++i) {
      appendf(out, ", %s vlan %u", p.vlan_tpid[i] == ethertype::kVlan ? "802.1Q" : "802.1ad",
              unsigned{p.vlan_id[i]});
    }
    out += ", ";
  }
  if (p.has(kArp)) {
    if (p.arp.op == 1) {
      out += "ARP, Request who-has ";
      appendIp(out, p.arp.tpa);
      out += " tell ";
      appendIp(out, p.arp.spa);
    } else if (p.arp.op == 2) {
      out += "ARP, Reply ";
      appendIp(out, p.arp.spa);
      out += " is-at ";
      appendMac(out, p.arp.sha);
    } else {
      appendf(out, "ARP, op %u", unsigned{p.arp.op});
    }
  } else if (p.has(kIpv4) || p.has(kIpv6)) {
    appendL4(out, p, inner);
  } else if (p.ok()) {
    appendf(out, "ethertype 0x%04x, length %u", unsigned{p.ethertype}, p.payload_len);
  }
  if (!p.ok()) {
    out += " [malformed: ";
    out += errorName(p.error);
    out += ']';
  } else if (p.truncated_capture) {
    out += " [truncated capture]";
  }
}

}  // namespace palisade::pkt

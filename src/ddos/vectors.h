// Attack vectors: what a packet towards (or from) a protected address is
// counted as.
//
// A vector belongs to a class; thresholds are set per class (docs/policy.md,
// `ddos.profiles[].thresholds`) and an attack is named by the vectors that
// carried it. Amplification is recognised by the reflector's source port (the
// service abused: DNS 53, NTP 123, SNMP 161, memcached 11211 ...) on traffic the
// protected address never asked for.
#pragma once

#include <cstdint>
#include <string_view>

namespace palisade::ddos {

#define PALISADE_DDOS_CLASSES(X)                                                       \
  X(Syn, "syn")                     /* TCP SYN without ACK */                          \
  X(SynAck, "synack")               /* SYN-ACK for no SYN the address sent */          \
  X(AckRst, "ack_rst")              /* ACK, RST or FIN outside any known connection */ \
  X(Udp, "udp")                     /* UDP not from an amplification port */           \
  X(Amplification, "amplification") /* UDP from a reflector's service port */          \
  X(Icmp, "icmp")                                                                      \
  X(Fragment, "fragment") /* non-first fragments of no known datagram */               \
  X(Other, "other")       /* other IP protocols */

enum class VectorClass : uint8_t {
#define PALISADE_X(id, name) id,
  PALISADE_DDOS_CLASSES(PALISADE_X)
#undef PALISADE_X
};
inline constexpr size_t kClassCount = 0
#define PALISADE_X(id, name) +1
    PALISADE_DDOS_CLASSES(PALISADE_X)
#undef PALISADE_X
    ;

// id, event name, class, reflector source ports (amplification only; 0 ends).
#define PALISADE_DDOS_VECTORS(X)                                     \
  X(SynFlood, "syn_flood", Syn, 0)                                   \
  X(SynAckReflection, "synack_reflection", SynAck, 0)                \
  X(AckRstFlood, "ack_rst_flood", AckRst, 0)                         \
  X(UdpFlood, "udp_flood", Udp, 0)                                   \
  X(IcmpFlood, "icmp_flood", Icmp, 0)                                \
  X(FragmentFlood, "fragment_flood", Fragment, 0)                    \
  X(IpFlood, "ip_flood", Other, 0)                                   \
  X(Chargen, "chargen_amplification", Amplification, 19)             \
  X(Qotd, "qotd_amplification", Amplification, 17)                   \
  X(Dns, "dns_amplification", Amplification, 53)                     \
  X(Tftp, "tftp_amplification", Amplification, 69)                   \
  X(Portmap, "portmap_amplification", Amplification, 111)            \
  X(Ntp, "ntp_amplification", Amplification, 123)                    \
  X(Netbios, "netbios_amplification", Amplification, 137)            \
  X(Snmp, "snmp_amplification", Amplification, 161)                  \
  X(Cldap, "cldap_amplification", Amplification, 389)                \
  X(Isakmp, "isakmp_amplification", Amplification, 500, 4500)        \
  X(Openvpn, "openvpn_amplification", Amplification, 1194)           \
  X(Mssql, "mssql_amplification", Amplification, 1434)               \
  X(Ssdp, "ssdp_amplification", Amplification, 1900)                 \
  X(Ard, "ard_amplification", Amplification, 3283)                   \
  X(Rdp, "rdp_amplification", Amplification, 3389)                   \
  X(Stun, "stun_amplification", Amplification, 3478)                 \
  X(WsDiscovery, "ws_discovery_amplification", Amplification, 3702)  \
  X(Sip, "sip_amplification", Amplification, 5060)                   \
  X(Mdns, "mdns_amplification", Amplification, 5353)                 \
  X(Coap, "coap_amplification", Amplification, 5683)                 \
  X(Ubiquiti, "ubiquiti_amplification", Amplification, 10001)        \
  X(Memcached, "memcached_amplification", Amplification, 11211)      \
  X(Steam, "steam_amplification", Amplification, 27015)              \
  X(Plex, "plex_amplification", Amplification, 32414)                \
  X(Dvr, "dvr_amplification", Amplification, 37810) /* DHDiscover */ \
  X(Bacnet, "bacnet_amplification", Amplification, 47808)

enum class Vector : uint8_t {
#define PALISADE_X(id, ...) id,
  PALISADE_DDOS_VECTORS(PALISADE_X)
#undef PALISADE_X
      None,
};
inline constexpr size_t kVectorCount = static_cast<size_t>(Vector::None);

std::string_view vectorName(Vector v);
std::string_view className(VectorClass c);
inline constexpr VectorClass kClassOf[] = {
#define PALISADE_X(id, name, cls, ...) VectorClass::cls,
    PALISADE_DDOS_VECTORS(PALISADE_X)
#undef PALISADE_X
};
// A vector's class (v is not None). Inline: asked per packet of a flood.
inline VectorClass classOf(Vector v) {
  return kClassOf[static_cast<size_t>(v)];
}
// The amplification vector whose service uses this source port; None if none.
Vector amplificationVector(uint16_t source_port);

}  // namespace palisade::ddos

#!/usr/bin/python3
"""Sends one forged frame with scapy, for the live suites' spoofing attempts.

  forge.py IFACE arp-claim  MAC CLAIMED_IP TARGET_IP   ARP request claiming an address
  forge.py IFACE ip-from    MAC SRC_IP DST_IP          UDP from an address not the VM's
  forge.py IFACE dhcp-offer MAC SERVER_IP OFFERED_IP   a rogue DHCP server's offer
  forge.py IFACE vxlan      SRC_IP DST_IP VNI          VXLAN to a host's underlay address,
                                                     inner frame to 192.0.2.68:5432
  forge.py IFACE frag-reversed MAC SRC_IP DST_IP PORT  a 3,000-byte UDP datagram (bytes i*7
                                                     mod 251) from port 40001 in three
                                                     fragments, the last sent first

Three of each go out as they are (VXLAN is routed), the fragments once;
exit 1 on bad arguments.
"""
import sys

from scapy.all import ARP, BOOTP, DHCP, IP, TCP, UDP, VXLAN, Ether, conf, fragment, send, sendp

GATEWAY_MAC = "12:34:56:78:9a:bc"


def frame(kind, args):
    if kind == "arp-claim":
        mac, claimed, target = args
        return Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=mac, psrc=claimed, pdst=target)
    if kind == "ip-from":
        mac, src, dst = args
        return Ether(src=mac, dst=GATEWAY_MAC) / IP(src=src, dst=dst) / UDP(
            sport=40000, dport=9) / b"spoofed"
    if kind == "dhcp-offer":
        mac, server, offered = args
        return (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=server, dst="255.255.255.255") /
                UDP(sport=67, dport=68) /
                BOOTP(op=2, yiaddr=offered, siaddr=server, chaddr=b"\x02\x00\x00\x00\x00\x99",
                      xid=0x1234) /
                DHCP(options=[("message-type", "offer"), ("server_id", server),
                              ("router", server), ("lease_time", 600), "end"]))
    if kind == "vxlan":
        src, dst, vni = args
        inner = (Ether(src="02:00:0a:00:00:24", dst=GATEWAY_MAC) /
                 IP(src="192.0.2.36", dst="192.0.2.68") / TCP(sport=40000, dport=5432, flags="S"))
        # Routed like any datagram of the sender (layer 3), so it crosses routers.
        return IP(src=src, dst=dst) / UDP(sport=40000, dport=4789) / VXLAN(vni=int(vni)) / inner
    if kind == "frag-reversed":
        mac, src, dst, port = args
        payload = bytes((i * 7) % 251 for i in range(3000))
        datagram = IP(src=src, dst=dst, id=0x5151) / UDP(sport=40001, dport=int(port)) / payload
        return [Ether(src=mac, dst=GATEWAY_MAC) / f for f in reversed(fragment(datagram, 1480))]
    raise ValueError(f"unknown kind {kind}")


def main():
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 1 if len(sys.argv) < 3 else 0
    iface, kind = sys.argv[1], sys.argv[2]
    try:
        f = frame(kind, sys.argv[3:])
    except ValueError as e:
        print(f"forge.py: {e}", file=sys.stderr)
        return 1
    conf.verb = 0
    if isinstance(f, list):
        sendp(f, iface=iface, inter=0.02)
    elif isinstance(f, Ether):
        sendp(f, iface=iface, count=3, inter=0.05)
    else:
        send(f, iface=iface, count=3, inter=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())

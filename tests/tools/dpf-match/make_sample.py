#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes sample.pcap, the capture the dpf-match tests read: ten Ethernet frames, one per line
of the table below (packet numbers from 1), so that a test can say which packets an expression
accepts. Run it again after changing the table: python3 make_sample.py
"""
import struct

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ether(etype, payload, vlan=None):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return MAC_B + MAC_A + tag + struct.pack("!H", etype) + payload


def ipv4(proto, payload, src="192.168.0.1", dst="10.0.0.1", frag=0x4000, options=b""):
    ihl = 5 + len(options) // 4
    a = bytes(int(x) for x in src.split("."))
    b = bytes(int(x) for x in dst.split("."))
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(payload), 1, frag, 64, proto,
                    0, a, b) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(nxt, payload, src="2001:db8::1", dst="2001:db8::2"):
    import ipaddress
    return (struct.pack("!IHBB", 0x60000000, len(payload), nxt, 64) +
            ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload)


def tcp(sport, dport, flags=0x02):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)


def udp(sport, dport, data=b"\0" * 8):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def arp():
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, bytes([192, 168, 0, 1]),
                       b"\0" * 6, bytes([192, 168, 0, 2]))


HOP_BY_HOP = 0
FRAMES = [
    ether(0x0800, ipv4(17, udp(40000, 53))),                        # 1 IPv4 UDP to DNS
    ether(0x0800, ipv4(6, tcp(40001, 80))),                         # 2 IPv4 TCP SYN to 80
    ether(0x0806, arp()),                                           # 3 ARP request
    ether(0x86DD, ipv6(6, tcp(40002, 443))),                        # 4 IPv6 TCP to 443
    ether(0x86DD, ipv6(HOP_BY_HOP, bytes([6, 0, 1, 4, 0, 0, 0, 0]) +
                       tcp(40003, 22))),                             # 5 IPv6 hop-by-hop, TCP to 22
    ether(0x0800, ipv4(6, tcp(40004, 80), options=b"\x01\x01\x01\x00")),  # 6 IPv4 options, TCP to 80
    ether(0x0800, ipv4(6, tcp(40005, 8080, 0x12)), vlan=100),       # 7 VLAN 100, TCP SYN-ACK
    ether(0x0800, ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1]))),        # 8 ICMP echo request
    ether(0x0800, ipv4(17, b"\0" * 8, frag=0x00B9)),                # 9 a later UDP fragment
    ether(0x0800, ipv4(17, udp(53, 40006, b"\0" * 600))),           # 10 a large DNS answer
]


def main():
    with open("sample.pcap", "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for i, frame in enumerate(FRAMES):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)))
            f.write(frame)


if __name__ == "__main__":
    main()

"""Hand-made packets for ``BPF_PROG_TEST_RUN``: Ethernet frames of IPv4 TCP,
UDP and VXLAN with correct checksums, as if they had arrived on a lab
interface (``bench/ebpf_paths.py`` times the programs with them; kernel tests
replay one chosen packet at a chosen moment)."""

from __future__ import annotations

import ipaddress
import struct

ETH = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"  # IPv4
TCP_ACK, TCP_SYN = 0x10, 0x02


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        0x4000,  # DF
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return ETH + header[:10] + struct.pack("!H", _csum(header)) + header[12:] + payload


def tcp(src: str, sport: int, dst: str, dport: int, flags: int = TCP_ACK) -> bytes:
    """An Ethernet/IPv4/TCP packet without payload, checksums right."""
    segment = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4, flags, 65000, 0, 0)
    pseudo = (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!BBH", 0, 6, len(segment))
    )
    segment = segment[:16] + struct.pack("!H", _csum(pseudo + segment)) + segment[18:]
    return _ipv4(src, dst, 6, segment)


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes = bytes(50)) -> bytes:
    """An Ethernet/IPv4/UDP packet (checksum 0, allowed over IPv4)."""
    return _ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def vxlan(src: str, dst: str, port: int, vni: int, inner: bytes) -> bytes:
    """``inner`` (an Ethernet frame) in VXLAN from node ``src`` to node ``dst``'s ``port``."""
    return udp(src, 49152, dst, port, struct.pack("!II", 0x08000000, vni << 8) + inner)

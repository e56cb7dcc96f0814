"""The cluster's DNS, answered from the apiserver: ``<service>.<namespace>.svc.<domain>``
is the Service's ClusterIP (A records; no AAAA: the cluster is IPv4 only).

What a cluster add-on (CoreDNS) does for Services, reduced to what pods here resolve: a
chart's ``helm test`` pod calls its Service by name. Names outside the cluster domain are
refused: nothing is forwarded off the machine.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
NOERROR, NXDOMAIN, SERVFAIL, REFUSED = 0, 3, 2, 5
TTL = 5

# (namespace, service) -> ClusterIP, or None when there is no such Service
ServiceLookup = Callable[[str, str], str | None]


def _question(packet: bytes) -> tuple[str, int, int, int]:
    """(name, type, class, end offset) of the first question; ValueError if malformed."""
    labels, offset = [], 12
    while True:
        length = packet[offset]
        if length & 0xC0:
            raise ValueError("compressed question name")
        offset += 1
        if length == 0:
            break
        labels.append(packet[offset : offset + length].decode("ascii").lower())
        offset += length
    qtype, qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return ".".join(labels), qtype, qclass, offset + 4


def answer(packet: bytes, *, domain: str, lookup: ServiceLookup) -> bytes | None:
    """The response to one query packet (None: not worth an answer)."""
    if len(packet) < 12:
        return None
    query_id, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    try:
        name, qtype, qclass, end = _question(packet)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        return None
    rcode, address = _resolve(name, qtype, qclass, domain=domain, lookup=lookup)
    header_flags = 0x8000 | (flags & 0x0100) | 0x0400 | 0x0080 | rcode  # QR, RD, AA, RA
    answers = 1 if address else 0
    response = struct.pack("!HHHHHH", query_id, header_flags, 1, answers, 0, 0)
    response += packet[12:end]
    if address:
        rdata = socket.inet_aton(address)
        response += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, len(rdata)) + rdata
    return response


def _resolve(
    name: str, qtype: int, qclass: int, *, domain: str, lookup: ServiceLookup
) -> tuple[int, str | None]:
    suffix = f".svc.{domain}"
    if qclass != CLASS_IN or not (name == domain or name.endswith(f".{domain}")):
        return REFUSED, None
    parts = name.removesuffix(suffix).split(".") if name.endswith(suffix) else []
    if len(parts) != 2:
        return NXDOMAIN, None
    service, namespace = parts
    try:
        cluster_ip = lookup(namespace, service)
    except Exception:  # the apiserver did not answer: let the client retry
        return SERVFAIL, None
    if cluster_ip is None:
        return NXDOMAIN, None
    if qtype != TYPE_A or cluster_ip == "None":  # headless Services: not served here
        return NOERROR, None
    return NOERROR, cluster_ip


@dataclass
class DnsServer:
    """UDP on ``address``:``port`` in a daemon thread; ``stop()`` closes it."""

    address: str
    lookup: ServiceLookup
    domain: str = "cluster.local"
    port: int = 53
    _socket: socket.socket = field(init=False)
    _thread: threading.Thread = field(init=False)

    def start(self) -> DnsServer:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((self.address, self.port))
        self._thread = threading.Thread(target=self._serve, name="cluster-dns", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                packet, peer = self._socket.recvfrom(512)
            except OSError:
                return  # closed
            response = answer(packet, domain=self.domain, lookup=self.lookup)
            if response is not None:
                with contextlib.suppress(OSError):
                    self._socket.sendto(response, peer)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)

"""Where a lookup may connect: a network backend for httpcore that checks every address.

A tenant names the registry host (and so, through the registry's answers, token realms and
redirect targets). Without a check the webhook connects wherever that leads: cloud metadata,
the kubelet, its own sidecars, cluster Services. The check runs at connect time on the
addresses actually dialled, after name resolution, so neither a redirect nor a DNS name (nor
one that changes its answer between a check and a connect) gets past it.

An address is refused when it lies in a denied network (`registryDeniedNetworks`, or the
cluster's Service and Pod ranges as the server reads them from the API) and not in an allowed
one, unless the host is one the operator named (insecureRegistries, mirrors) — or,
with a private CA configured, the peer proves to be a registry that CA vouches for: then the
TLS handshake runs with that CA alone, and failing it is a refusal, not a TLS error.
Refusals raise `DeniedAddress`, which the client turns into AddressDenied ("cannot connect",
as for a closed port).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeniedAddress(httpcore.ConnectError):
    """No connection made (or kept): the address is denied. httpx re-raises it as a
    ConnectError `from` this, which is how the client recognises it."""

    def __init__(self, host: str, address: str, why: str) -> None:
        super().__init__(f"{host} ({address}) {why}")
        self.host, self.address, self.why = host, address, why


def parse_networks(values: Iterable[str], setting: str) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses); ValueError naming `setting` and the bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {value!r} is not a network (CIDR)") from None
    return tuple(networks)


@dataclass(slots=True, kw_only=True)
class NetworkPolicy:
    denied: tuple[IPNetwork, ...] = ()
    allowed: tuple[IPNetwork, ...] = ()
    named: frozenset[str] = frozenset()  # host or host:port, normalised: never refused
    vouch: ssl.SSLContext | None = None  # the private CA alone, for denied addresses
    # The cluster's Service and Pod ranges (webhook/server/cluster_networks.py), denied as
    # `denied` is; the only field that changes, replaced whole while serving.
    cluster: tuple[IPNetwork, ...] = ()

    def is_named(self, host: str, port: int) -> bool:
        shown = f"[{host}]" if ":" in host else host
        return host in self.named or f"{shown}:{port}" in self.named

    def refusal(self, address: IPAddress) -> str | None:
        """Why a connection to `address` is refused (for the log), or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in net for net in self.allowed):
            return None
        if any(address in net for net in self.denied):
            return "is in registryDeniedNetworks"
        if any(address in net for net in self.cluster):
            return "is in the cluster's Service or Pod ranges"
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend with `policy` checked on every TCP connect."""

    def __init__(self, policy: NetworkPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        host = host.strip("[]").lower()
        options: dict[str, Any] = {
            "timeout": timeout,
            "local_address": local_address,
            "socket_options": socket_options,
        }
        if self.policy.is_named(host, port):
            return await self._inner.connect_tcp(host, port, **options)
        addresses = await _addresses(host, port, timeout)
        denied = [(a, why) for a in addresses if (why := self.policy.refusal(a))]
        if not denied:
            return await _connect_any(self._inner, addresses, port, options)
        # One denied answer taints the name: "public or loopback" is a rebinding trick.
        vouch, (first, why) = self.policy.vouch, denied[0]
        address = str(first)
        if vouch is None:
            raise DeniedAddress(host, address, why)
        try:
            stream = await _connect_any(self._inner, addresses, port, options)
        except (httpcore.ConnectError, httpcore.ConnectTimeout):
            # Refused, filtered or silent: all one answer, or the tenant learns which.
            raise DeniedAddress(host, address, why) from None
        return _VouchedStream(stream, vouch, host, address)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise DeniedAddress(path, "unix socket", "is not a registry")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _addresses(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except OSError as error:
        raise httpcore.ConnectError(f"resolving {host}: {error}") from None
    # sockaddr[0] may carry an IPv6 scope ("fe80::1%eth0"): the address is what counts.
    found = {ipaddress.ip_address(str(info[4][0]).partition("%")[0]): None for info in infos}
    if not found:
        raise httpcore.ConnectError(f"{host} has no addresses")
    return list(found)


async def _connect_any(
    inner: httpcore.AsyncNetworkBackend,
    addresses: list[IPAddress],
    port: int,
    options: dict[str, Any],
) -> httpcore.AsyncNetworkStream:
    """The first of `addresses` that accepts, dialled by address so that what was checked
    is what is connected to."""
    error: Exception | None = None
    for address in addresses:
        try:
            return await inner.connect_tcp(str(address), port, **options)
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
            error = failed
    assert error is not None
    raise error


class _VouchedStream(httpcore.AsyncNetworkStream):
    """A connection to a denied address that must prove itself: TLS with the private CA
    alone (whatever context httpcore asks for), nothing sent or read before that."""

    def __init__(
        self, inner: httpcore.AsyncNetworkStream, vouch: ssl.SSLContext, host: str, address: str
    ) -> None:
        self._inner, self._vouch, self._host, self._address = inner, vouch, host, address

    def _refuse(self) -> DeniedAddress:
        return DeniedAddress(self._host, self._address, "is not vouched for by registryCaFile")

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._inner.start_tls(self._vouch, server_hostname, timeout)
        except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError):
            # A timeout too: "timed out" would tell a silent open port from a closed one.
            await self._inner.aclose()
            raise self._refuse() from None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise self._refuse()

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise self._refuse()

    async def aclose(self) -> None:
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


__all__ = ["DeniedAddress", "GuardedBackend", "NetworkPolicy", "parse_networks"]

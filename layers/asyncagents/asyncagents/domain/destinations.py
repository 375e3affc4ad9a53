"""Where a webhook may go: https to public addresses only, unless the formation says otherwise.

Checked when a request is submitted and again at every delivery (DNS can change between the two).
The sender then connects to the address that was checked, never to a fresh lookup, so a host cannot
pass the check with a public address and be reached at a private one (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from asyncagents.domain.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Never a destination, whatever the formation says: cloud metadata, link-local, multicast, "this network".
_ALWAYS_REFUSED = (
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("224.0.0.0/4"),
    ipaddress.ip_network("240.0.0.0/4"),
    ipaddress.ip_network("::/128"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("ff00::/8"),
)
# Private networks: allowed only with ``allow_private_networks``.
_PRIVATE = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("fc00::/7"),  # unique-local IPv6
)
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# IPv6 forms that carry an IPv4 address, reached through a translator or a tunnel: judged by that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use translators: your own network
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated "::a.b.c.d"
# Ports a webhook may use unless the formation says otherwise: the web's, and any unprivileged one (the
# privileged ones are other services: SMTP, SSH, ...).
DEFAULT_PORTS: tuple[tuple[int, int], ...] = ((80, 80), (443, 443), (1024, 65535))


class UnsafeDestination(BadRequest):
    """The webhook URL or an address it resolves to is not an allowed destination."""

    code = "unsafe_webhook_url"


class UnresolvedDestination(UnsafeDestination):
    """The webhook URL's host did not resolve just now: at a delivery, maybe a DNS failure that passes (retried)."""


@dataclass(frozen=True)
class DestinationPolicy:
    allow_http: bool = False
    allow_private_networks: bool = False
    allow_loopback: bool = False
    allowed_ports: tuple[tuple[int, int], ...] = DEFAULT_PORTS


@dataclass(frozen=True)
class Destination:
    """A checked destination: connect to ``address``, present ``host`` (Host header and TLS SNI)."""

    url: str
    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str

    @property
    def connect_url(self) -> str:
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = {str(info[4][0]) for info in infos}
    # IPv4 first: the sender connects to the first address, and Lambda outside a VPC has no IPv6 egress.
    return sorted(addresses, key=lambda address: (":" in address, address))


def classify(address: IPAddress) -> str:
    """``public``, ``loopback``, ``private`` or ``refused`` (never allowed). An IPv6 address that carries an
    IPv4 one (mapped, NAT64, 6to4, IPv4-compatible) is judged by the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "private"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify(embedded)
    if any(address in network for network in _ALWAYS_REFUSED):
        return "refused"
    if any(address in network for network in _LOOPBACK):
        return "loopback"
    if any(address in network for network in _PRIVATE):
        return "private"
    return "public" if address.is_global else "refused"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    low_32_bits = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _NAT64:
        return low_32_bits
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not "::" or "::1", which have their own rules
        return low_32_bits
    return None


def _allowed(kind: str, policy: DestinationPolicy) -> bool:
    return (
        kind == "public"
        or (kind == "loopback" and policy.allow_loopback)
        or (kind == "private" and policy.allow_private_networks)
    )


def check_destination(
    url: str, policy: DestinationPolicy, *, resolver: Resolver = system_resolver, field: str = "webhook_url"
) -> Destination:
    """Parse and check ``url``; resolve its host and check every address. Raises ``UnsafeDestination``."""

    def refuse(reason: str) -> UnsafeDestination:
        return UnsafeDestination(f"{field}: {reason}", details={"field": field, "reason": reason})

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise refuse(f"not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"}:
        raise refuse("must be an https URL")
    if scheme == "http" and not policy.allow_http:
        raise refuse("must use https (plain http is not allowed by this formation)")
    if parts.username or parts.password:
        raise refuse("must not contain credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise refuse("has no host")
    port = port or (443 if scheme == "https" else 80)
    if not any(low <= port <= high for low, high in policy.allowed_ports):
        raise refuse(f"port {port} is not allowed (allowed: {describe_ports(policy.allowed_ports)})")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolver(host, port)
        except UnicodeError as error:
            raise refuse(f"host {host} does not resolve ({error})") from None
        except OSError as error:  # the resolver's failure (SERVFAIL, a timeout) or the name's absence, for now
            reason = f"host {host} does not resolve ({error})"
            raise UnresolvedDestination(f"{field}: {reason}", details={"field": field, "reason": reason}) from None
    if not addresses:
        raise refuse(f"host {host} does not resolve")
    for address in addresses:
        kind = classify(ipaddress.ip_address(address.split("%", 1)[0]))
        if not _allowed(kind, policy):
            raise refuse(f"host {host} resolves to a {kind} address ({address}), which is not allowed")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return Destination(url=url, scheme=scheme, host=host, port=port, target=target, address=addresses[0])


def port_ranges(value: object) -> tuple[tuple[int, int], ...]:
    """Ports and ranges as a formation writes them ("80, 443, 1024-65535", or a list of ports, ranges or
    [low, high] pairs, as JSON gives them back). Raises ValueError naming the part that is not a port."""
    if isinstance(value, tuple) and all(isinstance(item, tuple) for item in value):
        return value
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError('give ports and ranges, as "80, 443, 1024-65535" or a list of them')
    ranges = []
    for item in items:
        if isinstance(item, list | tuple) and len(item) == 2:
            low, high = int(item[0]), int(item[1])
        else:
            low_text, _, high_text = str(item).strip().partition("-")
            try:
                low = int(low_text)
                high = int(high_text) if high_text else low
            except ValueError:
                raise ValueError(f"{item!r} is not a port or a range of ports (like 443 or 1024-65535)") from None
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"{item!r}: ports are 1-65535, the low end first")
        ranges.append((low, high))
    return tuple(ranges)


def describe_ports(ranges: tuple[tuple[int, int], ...]) -> str:
    """``"80, 443, 1024-65535"``: how the formation writes them."""
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)

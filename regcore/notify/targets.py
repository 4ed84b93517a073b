"""Where webhooks may go: not to this machine, the cloud's metadata service or the cluster's
private network, unless the operator allows it.

Any token holder names a webhook URL, and a worker or the service POSTs to it from inside
the cluster. Without a guard that is a request forgery: ``http://169.254.169.254/...``
(cloud credentials), ``http://127.0.0.1:...`` (the machine's own services), or any private
service of the cluster. So a URL's host is resolved and refused when any address it
resolves to is not globally routable: loopback, link-local, private (10/8, 172.16/12,
192.168/16, fc00::/7), shared (100.64/10), unspecified, multicast, reserved or
documentation ranges (Python's ``ipaddress`` ``is_global``, with IPv4 hidden in IPv6 —
mapped, 6to4, NAT64 — checked as IPv4). Private networks are refused too, by default:
they are exactly "the cluster's private services".

``REGSWEEP_WEBHOOK_ALLOW`` lists what may be reached anyway: host names (exact, or
``.example.internal`` for every name under it), addresses and CIDR networks, comma-separated.
A host allowed by name may resolve to anything; otherwise each address must be global or
inside an allowed network.

The check runs at submit (early, to name the setting) and again at every delivery, since
DNS answers change; the delivery then connects to the addresses it checked
(:class:`Target`), not to a second lookup's, so a name cannot rebind in between.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ALLOW_SETTING", "Target", "TargetRefusedError", "WebhookTargets", "parse_allow"]

ALLOW_SETTING = "REGSWEEP_WEBHOOK_ALLOW"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefusedError(ValueError):
    """The URL's host is, or resolves to, an address webhooks may not reach; the message
    names the address, why, and the setting that allows it (never the URL's path)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook destination: connect to ``addresses`` (in order), not to ``host``."""

    host: str
    port: int
    addresses: tuple[str, ...]


def parse_allow(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    """The allowed host names and networks of ``entries``; ValueError names a bad one."""
    names: set[str] = set()
    networks: list[Network] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        label = entry.removeprefix(".")
        if "/" in entry or ":" in entry or not label or " " in entry or "*" in entry:
            raise ValueError(
                f"{ALLOW_SETTING} takes host names (hooks.internal, .internal), addresses and "
                f"CIDR networks (10.0.0.0/8), comma-separated, but got {raw.strip()!r}"
            )
        names.add(entry)
    return frozenset(names), tuple(networks)


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: Address) -> str | None:
    """Why webhooks may not reach ``address`` by default, or None when they may."""
    for label, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
    ):
        if flag:
            return label
    return None if address.is_global else "not globally routable"


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class WebhookTargets:
    """The rule of one deployment: refuse non-global addresses except those ``allow`` lists
    (the entries of :data:`ALLOW_SETTING`)."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._names, self._networks = parse_allow(allow)

    def _name_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self._names or any(
            n.startswith(".") and host.endswith(n) for n in self._names
        )

    def _refusal(self, host: str, address: Address) -> str | None:
        inner = _embedded_ipv4(address) or address  # ::ffff:169.254.169.254 is link-local
        kind = _kind(inner)
        if kind is None or any(a in n for n in self._networks for a in (address, inner)):
            return None
        what = host if _literal(host) == address else f"{host} resolves to {address}, which"
        return (
            f"webhook host {what} is {kind}: webhooks may not reach it unless allowed; "
            f"to allow it, add the host or its network to {ALLOW_SETTING} "
            f"(e.g. {ALLOW_SETTING}={host})"
        )

    def resolve(self, url: str) -> Target:
        """Check ``url``'s host and the addresses it resolves to now.

        Raises TargetRefusedError (final: no retry will change it) or ValueError for a URL
        without an http(s) scheme and host, and OSError when the name does not resolve
        (``socket.gaierror``: perhaps passing, so worth retrying).
        """
        parts = urlsplit(url)
        port = parts.port  # ValueError on a malformed port
        host = (parts.hostname or "").partition("%")[0]  # an IPv6 zone (%25eth0) goes
        if parts.scheme not in {"http", "https"} or not host:
            raise ValueError("use an http:// or https:// URL with a host")
        port = port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if not addresses:
            raise socket.gaierror(f"{host} resolves to no address")
        if not self._name_allowed(host):
            for text in addresses:
                problem = self._refusal(host, ipaddress.ip_address(text))
                if problem is not None:
                    raise TargetRefusedError(problem)
        return Target(host=host, port=port, addresses=addresses)

    def refusal(self, url: str) -> str | None:
        """At submit: why ``url`` is refused, or None (also when its host does not resolve
        from here now: the delivery checks again, where it matters)."""
        try:
            self.resolve(url)
        except TargetRefusedError as exc:
            return str(exc)
        except (OSError, ValueError, UnicodeError):
            return None
        return None

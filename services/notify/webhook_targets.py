"""Where a webhook may go: public addresses only, unless the configuration allows some private ones.

A subscriber chooses the URL, and notify sits inside the city's network: without this, a subscription to
`http://169.254.169.254/` or `http://10.0.0.5:5432/` would make notify reach what only it can reach
(server-side request forgery). So a target is checked twice:
- when it is subscribed (`check_url`), to say at once what is wrong (422 naming the address);
- at each connection (`pin`): the name is resolved, every address it resolves to is checked, and the
  request goes to the checked address itself (the original name in `Host` and in TLS's SNI, against which
  the certificate is verified), so a name that resolves differently later (DNS rebinding) gets nowhere.

Refused: loopback, private (RFC 1918, unique-local), link-local (the cloud metadata address among them),
multicast, reserved, unspecified and other non-public addresses, in IPv4 and IPv6, also when an IPv6
address carries an IPv4 one (IPv4-mapped, 6to4, NAT64). `WEBHOOK_ALLOW_PRIVATE` may allow `loopback`
(make run: a receiver on your own machine), `private`, or networks given as CIDRs (`10.20.0.0/16`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
KEYWORDS = ("loopback", "private")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_KINDS = (
    ("unspecified", "is_unspecified"),
    ("loopback", "is_loopback"),
    ("link-local", "is_link_local"),
    ("multicast", "is_multicast"),
    ("reserved", "is_reserved"),
    ("private", "is_private"),
    ("private", "is_site_local"),
)


class TargetRefused(Exception):
    """A target URL notify will not call. `key` names the message in `shared/locales/`."""

    def __init__(self, key: str, **params: str) -> None:
        super().__init__(f"{key}: {params}")
        self.key, self.params = key, params

    def describe(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.params.items()) or self.key


@dataclass(frozen=True)
class Allowances:
    """What `WEBHOOK_ALLOW_PRIVATE` lets through: kinds of address (`loopback`, `private`) and networks."""

    kinds: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def permit(self, address: IPAddress, kind: str) -> bool:
        return kind in self.kinds or any(address in network for network in self.networks)


def parse_allowances(entries: Iterable[str]) -> Allowances:
    """`("loopback", "10.20.0.0/16")` -> Allowances; a ValueError names an entry that is neither."""
    kinds, networks = set(), []
    for entry in entries:
        if entry in KEYWORDS:
            kinds.add(entry)
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"WEBHOOK_ALLOW_PRIVATE: {entry!r} is neither {' nor '.join(KEYWORDS)} nor a network "
                "such as 10.20.0.0/16"
            ) from exc
    return Allowances(frozenset(kinds), tuple(networks))


def _kind(address: IPAddress) -> str | None:
    for kind, attribute in _KINDS:
        if getattr(address, attribute, False):
            return kind
    return None if address.is_global else "non-public"


def _as_checked(address: IPAddress) -> list[IPAddress]:
    """The addresses to check for `address`: itself, or the IPv4 address it carries."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    carried = [address.sixtofour, address.teredo[1] if address.teredo else None]
    if address in NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [address, *(a for a in carried if a is not None)]


def refusal(address: IPAddress, allowed: Allowances) -> str | None:
    """The kind of address (`loopback`, `private`, ...) for which a webhook may not go there, or None."""
    for checked in _as_checked(address):
        kind = _kind(checked)
        if kind is not None and not allowed.permit(checked, kind):
            return kind
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal: itself). Tests replace this function."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def parse_url(url: str) -> httpx.URL:
    """The URL, if notify could call it at all (http or https, a host, no credentials in it)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise TargetRefused("notify.url_invalid", url=url) from exc
    if parsed.scheme not in SCHEMES:
        raise TargetRefused("notify.url_scheme", url=url, scheme=parsed.scheme or "(none)")
    if not parsed.host:
        raise TargetRefused("notify.url_invalid", url=url)
    if parsed.userinfo:
        # They would travel in every request and sit in logs; the signature already proves the sender.
        raise TargetRefused("notify.url_credentials", url=url)
    return parsed


async def checked_addresses(parsed: httpx.URL, allowed: Allowances) -> list[IPAddress]:
    """The addresses the URL's host resolves to, all of them allowed; else `TargetRefused` naming one."""
    host = parsed.raw_host.decode("ascii")
    try:
        addresses = await resolve(host, parsed.port or _default_port(parsed))
    except (OSError, UnicodeError) as exc:
        raise TargetRefused("notify.url_unresolvable", host=host) from exc
    if not addresses:
        raise TargetRefused("notify.url_unresolvable", host=host)
    for address in addresses:
        if (kind := refusal(address, allowed)) is not None:
            raise TargetRefused("notify.url_refused_address", host=host, address=str(address), kind=kind)
    return addresses


async def check_url(url: str, allowed: Allowances) -> None:
    """At subscription time: `TargetRefused` if notify would not call `url`."""
    await checked_addresses(parse_url(url), allowed)


@dataclass(frozen=True)
class PinnedTarget:
    """A request's destination once checked: the address to connect to, and the name it stands for."""

    url: httpx.URL
    host_header: str
    sni_hostname: str | None


async def pin(url: str, allowed: Allowances) -> PinnedTarget:
    """At connection time: resolve, check every address, and aim at the first one."""
    parsed = parse_url(url)
    addresses = await checked_addresses(parsed, allowed)
    host = parsed.raw_host.decode("ascii")
    is_literal = str(addresses[0]) == host
    return PinnedTarget(
        url=parsed.copy_with(host=str(addresses[0])),
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=host if parsed.scheme == "https" and not is_literal else None,
    )


def _default_port(parsed: httpx.URL) -> int:
    return 443 if parsed.scheme == "https" else 80

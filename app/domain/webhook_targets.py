"""Which URLs webhooks may be sent to: the rules only, over addresses already resolved.

A webhook URL is chosen by the caller, so without rules it would let any team make the
service POST into its own network (cloud metadata at 169.254.169.254, an admin port on
localhost, a database on 10.x). So only http(s) URLs without userinfo are taken, and by
default every address the host resolves to must be globally routable; an operator lets
chosen hosts or networks through (`WEBHOOK_ALLOWED_HOSTS`), or all private ones
(`WEBHOOK_ALLOW_PRIVATE_NETWORKS`, for tests and farms on a private network). The checks
run at registration and again before every attempt, since DNS answers change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """What the operator allows beyond public addresses."""

    allow_private: bool = False
    hosts: frozenset[str] = frozenset()  # exact host names, lower case
    domains: tuple[str, ...] = ()  # ".example.com": any host under it
    networks: tuple[IpNetwork, ...] = ()


def parse_policy(allowed_hosts: str, *, allow_private: bool = False) -> TargetPolicy:
    """`"hooks.internal, .corp.example, 10.20.0.0/16"` → a policy letting those through."""
    hosts: set[str] = set()
    domains: list[str] = []
    networks: list[IpNetwork] = []
    for entry in filter(None, (part.strip().lower() for part in allowed_hosts.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.removeprefix("*")
        if not name.strip(".") or any(c in name for c in "/:@ "):
            raise ValueError(f"{entry!r} is neither a host name, a .domain nor a network")
        if name.startswith("."):
            domains.append(name)
        else:
            hosts.add(name)
    return TargetPolicy(allow_private, frozenset(hosts), tuple(domains), tuple(networks))


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL on its face (before any DNS), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as bad:
        return f"not a valid URL: {bad}"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are allowed"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL (user:password@) are not allowed"
    if not parts.hostname:
        return "the URL has no host"
    if parts.fragment:
        return "the URL may not have a #fragment"
    return None


def url_host(url: str) -> str:
    """The host of a URL `url_problem` passed, lower case, without IPv6 brackets."""
    return (urlsplit(url).hostname or "").lower()


def host_allowed(host: str, policy: TargetPolicy) -> bool:
    """Whether the operator listed this host name (or a domain it is under)."""
    host = host.lower().rstrip(".")
    return host in policy.hosts or any(host.endswith(domain) for domain in policy.domains)


def address_refusal(address: IpAddress) -> str | None:
    """The kind of address a webhook may not reach by default, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # shared (100.64/10), documentation and other special ranges
        return "non-global"
    return None


def target_refusal(host: str, addresses: Sequence[IpAddress], policy: TargetPolicy) -> str | None:
    """Why a host resolving to `addresses` may not be sent to under `policy`, or None."""
    if not addresses:
        return f"{host} resolves to no address"
    if policy.allow_private or host_allowed(host, policy):
        return None
    for address in addresses:
        if any(address in network for network in policy.networks):
            continue
        kind = address_refusal(address)
        if kind is not None:
            return (
                f"{host} resolves to {address}, a {kind} address; webhooks go to public "
                f"addresses only unless the operator allows it (WEBHOOK_ALLOWED_HOSTS)"
            )
    return None

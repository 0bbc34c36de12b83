"""Which network addresses camera streams and webhooks may be aimed at.

Internal addresses (loopback, private ranges, link-local, multicast, reserved, unspecified,
shared CGNAT space) are refused unless an administrator allows their network in settings
(``CAMERA_ALLOWED_NETWORKS``, ``WEBHOOK_ALLOWED_NETWORKS``: CIDRs, or ``*`` for any). A host
name is checked against every address it resolves to, when it is saved and again each time
it is used (so a name re-pointed later at an internal address is caught too).

No Django here: callers pass the allowed networks.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class AddressNotAllowed(ValueError):
    """The host is, or resolves to, an internal address that settings do not allow."""


def parse_networks(values: Iterable[str] | str | None) -> list[Network] | None:
    """CIDRs (or bare addresses) -> networks; ``*`` -> None, meaning every address is allowed.
    ValueError naming the bad entry."""
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    networks: list[Network] = []
    for raw in values or ():
        value = raw.strip()
        if not value:
            continue
        if value == "*":
            return None
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"not a network (CIDR such as 192.168.1.0/24): {value!r}") from None
    return networks


def is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or address in _CGNAT
    )


def resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address ``host`` stands for (itself when it is an IP literal); [] when it does not resolve."""
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def check_host(host: str, allowed: list[Network] | None, *, what: str = "host",
               require_resolution: bool = False) -> None:
    """AddressNotAllowed when ``host`` is or resolves to an internal address outside ``allowed``.

    ``allowed`` None allows everything. A name that does not resolve passes unless
    ``require_resolution`` (it is checked again when used).
    """
    if allowed is None:
        return
    addresses = resolve(host)
    if not addresses and require_resolution:
        raise AddressNotAllowed(f"{what} {host!r} does not resolve to any address")
    for address in addresses:
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
        if is_internal(plain) and not any(plain in net for net in allowed if net.version == plain.version):
            shown = host if str(plain) == host.strip("[]") else f"{host} ({plain})"
            raise AddressNotAllowed(
                f"{what} {shown} is an internal address (loopback, private, link-local or reserved); "
                "an administrator can allow its network in settings"
            )

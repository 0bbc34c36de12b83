"""Which network addresses camera streams, model servers and webhooks may be aimed at.

Internal addresses (loopback, private ranges, link-local, multicast, reserved, unspecified,
shared CGNAT space) are refused unless their network is allowed (the site settings' lists:
CIDRs, or ``*`` for any). Cloud metadata addresses are refused whatever is allowed. A host
name is checked against every address it resolves to when it is saved, and
``connections_checked`` checks the address each connection is actually made to (so a name
re-pointed later at an internal address, DNS rebinding, is refused too).

No Django here: callers pass the allowed networks.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


# Instance metadata services (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS ECS: 169.254.170.2;
# AWS IPv6: fd00:ec2::254; Alibaba: 100.100.100.200): they hand out credentials, and no camera,
# model server or webhook lives there. Refused even where "*" is allowed.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"))


class AddressNotAllowed(ValueError):
    """The host is, or resolves to, an internal address that settings do not allow."""


class ConnectionNotAllowed(ConnectionRefusedError):
    """A connection was about to be made to an address the policy refuses (raised by the guard
    of ``connections_checked``: HTTP clients report it as a failed connection)."""


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


def refusal(address, allowed: list[Network] | None) -> str:
    """Why ``address`` may not be connected to under ``allowed`` ("" when it may)."""
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    if plain in METADATA_ADDRESSES:
        return "a cloud metadata address, always refused"
    if allowed is None or not is_internal(plain):
        return ""
    if any(plain in net for net in allowed if net.version == plain.version):
        return ""
    return "an internal address (loopback, private, link-local or reserved) outside the allowed networks"


def check_host(host: str, allowed: list[Network] | None, *, what: str = "host",
               require_resolution: bool = False, where: str = "") -> None:
    """AddressNotAllowed when ``host`` is or resolves to an address ``allowed`` does not cover.

    ``allowed`` None allows every address but the metadata ones. A name that does not resolve
    passes unless ``require_resolution`` (the connection is checked when it is made). ``where``
    names the setting that allows more, for the message.
    """
    addresses = resolve(host)
    if not addresses and require_resolution:
        raise AddressNotAllowed(f"{what} {host!r} does not resolve to any address")
    for address in addresses:
        why = refusal(address, allowed)
        if why:
            plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
            shown = host if str(plain) == host.strip("[]") else f"{host} ({plain})"
            hint = f"; an administrator can allow its network in {where}" if where and "metadata" not in why else ""
            raise AddressNotAllowed(f"{what} {shown} is {why}{hint}")


# --- The connection guard ---------------------------------------------------------------------

_policy: contextvars.ContextVar = contextvars.ContextVar("address_policy", default=None)
_install_lock = threading.Lock()
_installed = False


def _peer_check(sock, address) -> None:
    policy = _policy.get()
    if policy is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    allowed, what, where, refused = policy
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except (ValueError, IndexError, TypeError):
        return
    why = refusal(ip, allowed)
    if why:
        hint = f"; an administrator can allow its network in {where}" if where and "metadata" not in why else ""
        message = f"{what}: {ip} is {why}{hint}"
        refused.append(message)
        raise ConnectionNotAllowed(message)


def _install() -> None:
    """Wrap ``socket.socket.connect`` once per process; it checks only inside ``connections_checked``."""
    global _installed
    with _install_lock:
        if _installed:
            return
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

        def checked_connect(self, address):
            _peer_check(self, address)
            return connect(self, address)

        def checked_connect_ex(self, address):
            _peer_check(self, address)
            return connect_ex(self, address)

        socket.socket.connect = checked_connect
        socket.socket.connect_ex = checked_connect_ex
        _installed = True


@contextmanager
def connections_checked(allowed: list[Network] | None, *, what: str, where: str = "") -> Iterator[list[str]]:
    """Every TCP connection this thread makes inside the block is checked against ``allowed`` at
    the moment it is made, on the address actually connected to (whatever name resolution said
    before): a refused one raises ``ConnectionNotAllowed`` (an OSError) before any packet leaves.
    Covers every client built on Python sockets (requests, urllib, smtplib, Apprise's plugins);
    threads started inside the block are not covered. Yields the list of refusals made in the
    block (for clients that hide the reason of a failed connection)."""
    _install()
    refused: list[str] = []
    token = _policy.set((allowed, what, where, refused))
    try:
        yield refused
    finally:
        _policy.reset(token)

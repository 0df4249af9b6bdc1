"""The client address a rate limit keys by (internal).

``REMOTE_ADDR`` unless ``NUM_PROXIES`` = n > 0, in which case the n-th entry of
``X-Forwarded-For`` counted from the right: the address that the outermost of the
n trusted proxies saw. Entries a client wrote itself sit further left and are
never used. With fewer than n entries, ``REMOTE_ADDR`` is used.

Addresses are normalised so that one client cannot appear as many: a port is
dropped (``1.2.3.4:80``, ``[::1]:80``), an IPv6 address that embeds an IPv4 one
(mapped, translated, NAT64, compatible, 6to4, Teredo) becomes that IPv4 address,
an IPv6 zone is dropped, and other IPv6 addresses are keyed by their /64 network
(one host usually holds a whole /64). Anything that is not an address
never becomes a key of its own: a malformed forwarded entry falls back to
``REMOTE_ADDR``, and a missing or malformed ``REMOTE_ADDR`` shares one key
with every other such request (a warning is logged), so garbage cannot buy a
fresh budget.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping

__all__ = ["UNKNOWN_CLIENT", "client_ip", "normalise_ip"]

logger = logging.getLogger("django_async_cbv")

#: The shared key of every request whose address is missing or malformed.
UNKNOWN_CLIENT = "unknown"

_PORT_V4 = re.compile(r"([0-9.]+):[0-9]{1,5}", re.ASCII)
_BRACKETED = re.compile(r"\[([^\]]+)\](?::[0-9]{1,5})?", re.ASCII)
# An address literal is short; longer text is not parsed at all.
_MAX_LENGTH = 100


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)


def normalise_ip(text: str) -> str | None:
    """The key for one address as written in a header, or None if it is not an address.

    IPv4 → the dotted quad; IPv6 → its /64 network (``2001:db8::/64``).
    """
    if _PLAIN_IPV4.fullmatch(text):  # the common case: already in its normal form
        return text
    text = text.strip()
    if not text or len(text) > _MAX_LENGTH:
        return None
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        text = bracketed[1]
    else:
        with_port = _PORT_V4.fullmatch(text)
        if with_port:
            text = with_port[1]
    text = text.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) names no other host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return str(embedded)
        network = ipaddress.IPv6Network((int(address) >> 64 << 64, 64))
        return str(network)
    return str(address)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765)
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # IPv4-compatible (deprecated)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it embeds one.

    IPv4-mapped, IPv4-translated, NAT64 (well-known prefix), IPv4-compatible, 6to4 and
    Teredo (the client's address): each is the one IPv4 host, so it shares that
    host's budget instead of sharing one /64 with every other IPv4 host, or getting
    a budget per /64 of its 6to4 network.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    for network in (_NAT64, _SIIT, _COMPATIBLE):
        if address in network:
            low = int(address) & 0xFFFFFFFF
            if network is _COMPATIBLE and low <= 1:
                return None  # :: and ::1 are not IPv4 hosts
            return ipaddress.IPv4Address(low)
    return None


def client_ip(meta: Mapping[str, object], num_proxies: int) -> str:
    """The normalised client address of a request's ``META`` (see the module docstring)."""
    if num_proxies > 0:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR")
        if isinstance(forwarded, str):
            entries = forwarded.split(",")
            if len(entries) >= num_proxies:
                address = normalise_ip(entries[-num_proxies])
                if address is not None:
                    return address
                logger.warning(
                    "Malformed X-Forwarded-For entry %r; rate limiting by REMOTE_ADDR.",
                    entries[-num_proxies].strip()[:_MAX_LENGTH],
                )
    remote = meta.get("REMOTE_ADDR")
    address = normalise_ip(remote) if isinstance(remote, str) else None
    if address is None:
        logger.warning(
            "Request without a usable REMOTE_ADDR (%r); it shares one rate limit "
            "bucket with every such request.",
            remote if not isinstance(remote, str) else remote[:_MAX_LENGTH],
        )
        return UNKNOWN_CLIENT
    return address

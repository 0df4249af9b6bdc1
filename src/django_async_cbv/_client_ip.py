"""The client address a rate limit keys by (internal).

``REMOTE_ADDR`` unless ``NUM_PROXIES`` = n > 0, in which case the n-th entry of
``X-Forwarded-For`` counted from the right: the address that the outermost of the
n trusted proxies saw. Entries a client wrote itself sit further left and are
never used. With fewer than n entries, ``REMOTE_ADDR`` is used.

Addresses are normalised so that one client cannot appear as many: a port is
dropped (``1.2.3.4:80``, ``[::1]:80``), an IPv4-mapped IPv6 address becomes its
IPv4 address, an IPv6 zone is dropped, and IPv6 addresses are keyed by their /64
network (one host usually holds a whole /64). Anything that is not an address
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


def normalise_ip(text: str) -> str | None:
    """The key for one address as written in a header, or None if it is not an address.

    IPv4 → the dotted quad; IPv6 → its /64 network (``2001:db8::/64``).
    """
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
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        network = ipaddress.IPv6Network((int(address) >> 64 << 64, 64))
        return str(network)
    return str(address)


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

"""Which addresses a process really listens on, from ``ss -ltnp`` (iproute2), for the
dashboard tests; and the HTTP and interface helpers they share.

Usage::

    from tests._listening import listening, is_loopback, http_status

    rows = listening()          # skips the test when ss is not installed
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request

import pytest


def listening():
    """Every listening TCP socket on this machine, as ``ss -Hltnp`` reports it.

    Returns
    -------
    list of (str, int, set of int)
        (local address, port, pids owning the socket). The address is as ss prints it
        without brackets or ``%interface``: ``127.0.0.1``, ``0.0.0.0``, ``::``, ``::1``,
        or ``*`` (every address, IPv4 and IPv6).
    """
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed: cannot see which addresses are "
                    "listening (apt-get install iproute2; CI installs it)")
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        host, _, port = fields[3].rpartition(":")
        host = host.strip("[]").split("%")[0]
        rows.append((host, int(port), {int(p) for p in re.findall(r"pid=(\d+)", line)}))
    return rows


def sockets_of(port, pids, rows=None):
    """Addresses listening on ``port`` owned by one of ``pids`` (by any process when ss
    shows no owners, as for another user's sockets without root)."""
    rows = listening() if rows is None else rows
    return sorted({host for host, p, owners in rows
                   if p == port and (owners & set(pids) or not owners)})


def is_loopback(host):
    """True for a loopback address (127.0.0.0/8, ::1); False for ``*``, ``0.0.0.0``,
    ``::`` and every other interface."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*"
        return False


def is_wildcard(host):
    """True for an address meaning every interface (``0.0.0.0``, ``::``, ``*``)."""
    return host in ("*", "0.0.0.0", "::")


def http_status(url, timeout=30):
    """(status, body) of a GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def reachable(host, port, timeout=5):
    """True if a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def other_interface_address():
    """An IPv4 address of this machine that is not loopback (e.g. eth0's), or None."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback:
                return a.address
    return None


def link_port(link):
    """The port of a dashboard link ``http://HOST:PORT/status``."""
    match = re.fullmatch(r"https?://[^/]+:(\d+)/status", link)
    assert match, f"not a dashboard link: {link!r}"
    return int(match.group(1))

"""`evreplay local` listens on 127.0.0.1 only (docs/design.md §8): the API has no authentication and the AWS
endpoint (moto) holds every stored event, so neither may be reachable from another machine.

Proved on the running stack (the session's `evreplay local` child): every socket the process
listens on, read from the kernel's socket tables, is a loopback address, the API and AWS ports
among them; and connecting to those ports through each non-loopback address of this machine is
refused while the same ports answer on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.stacks import RunningStack

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc socket tables")


def _decode(hex_address: str, family: socket.AddressFamily) -> tuple[str, int]:
    """/proc/net/tcp{,6} `local_address`: the address as 32-bit words in host (little-endian) order."""
    address, port = hex_address.split(":")
    raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8))
    return socket.inet_ntop(family, raw), int(port, 16)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` is listening on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                found.add(_decode(fields[1], family))
    return found


def non_loopback_ipv4_addresses() -> list[str]:
    """This machine's IPv4 interface addresses other than loopback (SIOCGIFADDR per interface)."""
    import fcntl

    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
            address = socket.inet_ntoa(answer[20:24])
            if not ipaddress.ip_address(address).is_loopback:
                addresses.append(address)
    return addresses


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def stack_ports(stack: RunningStack) -> dict[str, int]:
    return {
        "API": int(urlsplit(stack.api_url).port or 0),
        "AWS endpoint": int(urlsplit(stack.aws_endpoint).port or 0),
    }


def test_every_listening_socket_of_the_local_stack_is_loopback(local_stack: RunningStack) -> None:
    # GIVEN the running `evreplay local` process
    pid = local_stack.process.process.pid  # type: ignore[union-attr]

    listening = listening_addresses(pid)

    # THEN its API and AWS ports are among its listening sockets (the check is not vacuous) ...
    ports = stack_ports(local_stack)
    assert set(ports.values()) <= {port for _, port in listening}, f"{ports} not in {sorted(listening)}"
    # ... and every socket it listens on is bound to a loopback address, not 0.0.0.0 or ::
    assert sorted((a, p) for a, p in listening if not ipaddress.ip_address(a).is_loopback) == []
    assert {a for a, p in listening if p in ports.values()} == {"127.0.0.1"}


def test_the_stack_is_unreachable_through_this_machines_other_addresses(local_stack: RunningStack) -> None:
    addresses = non_loopback_ipv4_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to try (the socket-table test still ran)")

    for what, port in stack_ports(local_stack).items():
        # control: the port does answer on loopback, so a refusal below means "not bound there"
        assert connects("127.0.0.1", port), f"{what} port {port} does not answer on 127.0.0.1"
        for address in addresses:
            assert not connects(address, port), f"{what} port {port} answers on {address}"

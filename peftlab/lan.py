"""Where the students' devices can reach the lab: a host name's kind (this machine only, or any),
and the address of this machine on its local network.

Pure standard library (settings.py reads it before Django is set up).
"""

import ipaddress
import socket

# A private address no one answers at: connecting a UDP socket to it only picks the route (the
# kernel sends nothing for a UDP connect), so getsockname() names the interface that route uses.
PROBE = "10.255.255.255"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def split_host(host: str) -> tuple[str, str]:
    """A Host header's name and port ("" if none): "127.0.0.1:8000" -> ("127.0.0.1", "8000"),
    "[::1]:8000" -> ("::1", "8000"), "lab.example.edu" -> ("lab.example.edu", "")."""
    host = host.strip()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def is_loopback(name: str) -> bool:
    """Whether a host name or address means this machine only (127.0.0.0/8, ::1, localhost)."""
    name = name.strip().strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def lan_address(probe: str = PROBE) -> str | None:
    """This machine's IPv4 address on the network its route to a private address goes through:
    the address other devices of that network (the students' phones and laptops) open it at.
    None when there is no such route (no network) or it is a loopback one. Nothing is sent."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            address = sock.getsockname()[0]
    except OSError:
        return None
    if address == "0.0.0.0" or is_loopback(address):
        return None
    return address


def open_to_network_command(port: int | str) -> str:
    """The command that starts the lab again listening on every interface, on the same port."""
    port_part = "" if str(port) in ("", "8000") else f"PORT={port} "
    return f"PEFTLAB_BIND=0.0.0.0 {port_part}make run"

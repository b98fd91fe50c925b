"""peftlab/lan.py: which host names mean this machine alone, and this machine's address on its
network (what a student's phone opens)."""

import ipaddress
import json
import os
import socket
import subprocess
import sys

import pytest

from peftlab import lan
from peftlab.runs.management.commands.lab import lab_commands, reach_line


@pytest.mark.parametrize(
    "host, parts",
    [
        ("127.0.0.1:8000", ("127.0.0.1", "8000")),
        ("localhost", ("localhost", "")),
        ("[::1]:8080", ("::1", "8080")),
        ("[::1]", ("::1", "")),
        ("lab.example.edu", ("lab.example.edu", "")),
        ("192.168.1.20:8000", ("192.168.1.20", "8000")),
    ],
)
def test_a_host_header_splits_into_name_and_port(host, parts):
    assert lan.split_host(host) == parts


@pytest.mark.parametrize("name", ["127.0.0.1", "127.3.4.5", "localhost", "LOCALHOST.", "::1", "[::1]", "app.localhost"])
def test_loopback_names_mean_this_machine_alone(name):
    assert lan.is_loopback(name)


@pytest.mark.parametrize("name", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "lab.example.edu", "localhost.example"])
def test_other_names_reach_further(name):
    assert not lan.is_loopback(name)


def test_the_lan_address_is_this_machines_own_non_loopback_ipv4_address():
    address = lan.lan_address()
    if address is None:  # a machine with no route to a private network
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(OSError):
            sock.connect((lan.PROBE, 9))
        return
    ip = ipaddress.IPv4Address(address)
    assert not ip.is_loopback and not ip.is_unspecified
    # It is an address of this machine: a socket binds to it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))


class _FakeSocket:
    def __init__(self, *args, local=None, fail=False):
        self.local, self.fail, self.sent = local, fail, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def connect(self, address):
        if self.fail:
            raise OSError(101, "Network is unreachable")
        self.peer = address

    def getsockname(self):
        return (self.local, 40000)

    def send(self, data):  # never called: connect() on UDP only picks the route
        self.sent.append(data)


@pytest.mark.parametrize(
    "local, fail, expected",
    [("192.168.1.20", False, "192.168.1.20"), ("127.0.0.1", False, None), ("0.0.0.0", False, None), (None, True, None)],
)
def test_no_route_or_a_loopback_route_gives_no_address(monkeypatch, local, fail, expected):
    made = []

    def fake(*args):
        made.append(_FakeSocket(*args, local=local, fail=fail))
        return made[-1]

    monkeypatch.setattr(lan.socket, "socket", fake)
    assert lan.lan_address() == expected
    assert made and not made[0].sent


@pytest.mark.parametrize(
    "port, command",
    [
        (8000, "PEFTLAB_BIND=0.0.0.0 make run"),
        ("", "PEFTLAB_BIND=0.0.0.0 make run"),
        (8080, "PEFTLAB_BIND=0.0.0.0 PORT=8080 make run"),
    ],
)
def test_the_command_that_opens_the_lab_to_the_network_keeps_the_port(port, command):
    assert lan.open_to_network_command(port) == command


def test_the_web_server_listens_where_peftlab_bind_says(settings):
    assert lab_commands(8000)["web"][lab_commands(8000)["web"].index("--bind") + 1] == "127.0.0.1:8000"
    settings.PEFTLAB_BIND = "0.0.0.0"
    assert "0.0.0.0:8123" in lab_commands(8123)["web"]


def test_lab_all_says_who_can_open_the_lab():
    assert "PEFTLAB_BIND=0.0.0.0 PORT=8080 make run" in reach_line("127.0.0.1", 8080, "192.168.1.20")
    assert (
        reach_line("0.0.0.0", 8000, "192.168.1.20")
        == "Students on the same network open http://192.168.1.20:8000/join/"
    )
    assert "no network address" in reach_line("0.0.0.0", 8000, None)


def _allowed_hosts(**env) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("PEFTLAB_BIND", "DJANGO_ALLOWED_HOSTS")}
    code = "import json, django; django.setup(); from django.conf import settings; print(json.dumps(settings.ALLOWED_HOSTS))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "peftlab.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_lab_open_to_the_network_answers_at_its_network_address():
    local = ["127.0.0.1", "localhost", "[::1]"]
    assert _allowed_hosts() == local
    address = lan.lan_address()
    assert _allowed_hosts(PEFTLAB_BIND="0.0.0.0") == local + ([address] if address else [])
    assert _allowed_hosts(PEFTLAB_BIND="0.0.0.0", DJANGO_ALLOWED_HOSTS="lab.example.edu") == ["lab.example.edu"]

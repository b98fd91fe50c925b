"""The link students open to join a class, as the teacher's dashboard shows it: as text and as a
QR code drawn here (an inline SVG: no script, no image request), and whether the students'
devices can open it at all.

A teacher who opened the dashboard at an address of this machine only (127.0.0.1, localhost)
would hand out a link no other device can open: the link then names this machine's address on
its network instead (peftlab.lan.lan_address), and when the lab listens on 127.0.0.1 alone, the
dashboard says so and gives the command that opens it to the network.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

import segno
from django.urls import reverse
from django.utils.http import urlencode

from peftlab import lan

LISTENS_ON_LOOPBACK = "loopback"  # the web server listens on this machine's loopback alone
NO_NETWORK = "no-network"  # opened on this machine, which has no network address


@dataclass(frozen=True)
class JoinLink:
    url: str
    problem: str = ""  # "", LISTENS_ON_LOOPBACK or NO_NETWORK
    fix: str = ""  # the command that solves LISTENS_ON_LOOPBACK

    @property
    def reachable(self) -> bool:
        return not self.problem

    @property
    def names_network_address(self) -> bool:
        """Whether the link names an address other devices could open (not 127.0.0.1)."""
        return not lan.is_loopback(urlsplit(self.url).hostname or "")


def join_link(scheme: str, host: str, code: str, bind: str, address: str | None) -> JoinLink:
    """The join link for a dashboard requested at `scheme://host`, served by a web server that
    listens on `bind`, on a machine whose network address is `address` (None: none)."""
    path = f"{reverse('classroom:join')}?{urlencode({'code': code})}"
    name, port = lan.split_host(host)
    if not lan.is_loopback(name):  # the address the teacher reached: the students' too
        return JoinLink(f"{scheme}://{host}{path}")
    if address is None:
        problem = LISTENS_ON_LOOPBACK if lan.is_loopback(bind) else NO_NETWORK
        return JoinLink(f"{scheme}://{host}{path}", problem, lan.open_to_network_command(port))
    url = f"{scheme}://{address}{':' + port if port else ''}{path}"
    if lan.is_loopback(bind):
        return JoinLink(url, LISTENS_ON_LOOPBACK, lan.open_to_network_command(port))
    return JoinLink(url)


def qr_svg(url: str) -> str:
    """`url` as a QR code (error correction M: still reads with 15 % of it hidden or smudged on
    a projector), an <svg> element to place in the page, sized by CSS."""
    code = segno.make(url, error="m", micro=False, boost_error=False)
    return code.svg_inline(scale=1, border=4, omitsize=True, svgclass="qr", dark="#000", light="#fff")

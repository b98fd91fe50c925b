"""Rate limits on submissions, joins and sign-ins, counted in Django's cache (Redis in the class
topology, files under var/ otherwise) so that every web process counts together.

Two layers:
- per person: a student, a teacher, or a visitor's browser session. A whole class shares one
  network address, so a class is never counted by address: each student has their own counts.
- per client address, for visitors (no class, not signed in): a visitor's session is only a
  cookie, and a client that keeps no cookies is a new visitor on every request. The address
  limits are generous (a workshop of visitors behind one address fits) and bound what dropping
  cookies can buy.
The address is REMOTE_ADDR, or, when that is a proxy named in PEFTLAB_TRUSTED_PROXIES, the last
address in X-Forwarded-For that is not one of those proxies (a client can write anything into
that header; only what a trusted proxy appended is believed). It is kept only as a keyed hash.

A fixed window per minute: simple, and a refusal can say exactly when to try again. Counting never
creates a session: a refused request leaves no session row behind.
"""

import hashlib
import hmac
import ipaddress
import time
from functools import cache

from django.conf import settings
from django.core.cache import cache as counters

from peftlab.classroom.viewer import ANONYMOUS, viewer_of
from peftlab.errors import TooMany, Unavailable

WINDOW = 60  # seconds


@cache
def _trusted_proxies(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in spec if entry.strip())


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _trusted_proxies(tuple(settings.PEFTLAB_TRUSTED_PROXIES)))


def client_address(request) -> str:
    """The address of the client behind this request (see the module's docstring)."""
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    if not _is_trusted(address):
        return address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if not _is_trusted(hop):
            return hop
    return address


def address_key(request) -> str:
    """The client's address as the lab keeps it (counters, Run.client): a keyed hash, not the address."""
    digest = hmac.new(settings.SECRET_KEY.encode(), client_address(request).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def _key(scope: str, who: str, window: int) -> str:
    return f"ratelimit:{scope}:{who}:{int(time.time() // window)}"


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(
        f"the lab cannot count requests right now ({type(exc).__name__}); try again in a minute", retry_after=30
    )


def _refusal(limit: int, what: str, window: int) -> TooMany:
    retry_after = int(window - time.time() % window) + 1
    return TooMany(f"too many {what}: at most {limit} a minute; try again in {retry_after} seconds", retry_after)


def count(scope: str, who: str, window: int = WINDOW) -> int:
    """Add one `scope` action by `who` to the current window; return the window's count."""
    key = _key(scope, who, window)
    try:
        counters.add(key, 0, timeout=window + 5)
        try:
            return counters.incr(key)
        except ValueError:  # expired between add and incr
            counters.set(key, 1, timeout=window + 5)
            return 1
    except Exception as exc:  # noqa: BLE001 - Redis down (the class topology): say so, never 500
        raise _unavailable(exc) from exc


def hit(scope: str, who: str, limit: int, what: str, window: int = WINDOW) -> None:
    """Count one `scope` action by `who`; raise TooMany past `limit` in the window (0: no
    limit). `what` names the action in the message ("run submissions")."""
    if limit > 0 and count(scope, who, window) > limit:
        raise _refusal(limit, what, window)


def check(scope: str, who: str, limit: int, what: str, window: int = WINDOW) -> None:
    """Raise TooMany if `who` has already used up `limit` in this window; counts nothing
    (for limits on failures, counted with `count` once an attempt has failed)."""
    if limit <= 0:
        return
    try:
        used = counters.get(_key(scope, who, window), 0)
    except Exception as exc:  # noqa: BLE001
        raise _unavailable(exc) from exc
    if used >= limit:
        raise _refusal(limit, what, window)


def submission(request) -> str:
    """One submission (a run, a race, a sweep or an upload): counted per person and, for a
    visitor, per client address. Returns the owner key, "" for a visitor who has no session yet
    (it is made when what they submit is stored: peftlab/classroom/viewer.py `establish_owner`)."""
    viewer = viewer_of(request)
    if viewer.kind == ANONYMOUS:
        hit(
            "submit-address",
            address_key(request),
            settings.PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE,
            "run submissions from your network address",
        )
    if viewer.owner:
        hit("submit", viewer.owner, settings.PEFTLAB_SUBMISSIONS_PER_MINUTE, "run submissions")
    return viewer.owner


def counted_for_new_session(owner: str) -> None:
    """The submission that made a visitor's session counts for that session too."""
    count("submit", owner)


def join_attempt(request) -> None:
    """Before a join's code is looked up: per browser session, every attempt; per address, the
    wrong codes so far (a class joining at once from one address uses none of that)."""
    check(
        "join-wrong",
        address_key(request),
        settings.PEFTLAB_ADDRESS_WRONG_JOINS_PER_MINUTE,
        "wrong class codes from your network address",
    )
    if owner := viewer_of(request).owner:
        hit("join", owner, settings.PEFTLAB_JOINS_PER_MINUTE, "attempts to join a class")


def wrong_join_code(request) -> None:
    count("join-wrong", address_key(request))


def _account(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


def login_attempt(request, username: str) -> None:
    """Before a password is checked: refused once this account has had PEFTLAB_LOGINS_PER_MINUTE
    failed sign-ins from this client's address. Failures elsewhere do not count here, so someone
    guessing from another network cannot lock the teacher out during class."""
    check(
        "login-failed",
        f"{_account(username)}:{address_key(request)}",
        settings.PEFTLAB_LOGINS_PER_MINUTE,
        "failed sign-ins for this account from your network address",
    )


def login_failed(request, username: str) -> None:
    count("login-failed", f"{_account(username)}:{address_key(request)}")


def signup_attempt(request) -> None:
    """Teacher sign-up (where it is open): every attempt, per client address."""
    hit(
        "signup", address_key(request), settings.PEFTLAB_LOGINS_PER_MINUTE, "sign-up attempts from your network address"
    )

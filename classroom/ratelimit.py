"""Rate limits on submissions, joins and logins, counted in Django's cache (Redis in the class
topology, files under var/ otherwise) so that every web process counts together.

Limits are keyed by who asks (student, teacher or browser session), not by IP address: a whole
class shares one address. A fixed window per minute: simple, and a refusal can say exactly when
to try again.
"""
import hashlib
import time

from django.conf import settings
from django.core.cache import cache

from .refusals import RateLimited, Refused
from .viewer import owner_key

WINDOW = 60  # seconds


def hit(scope: str, who: str, limit: int, what: str, window: int = WINDOW) -> None:
    """Count one `scope` action by `who`; raise RateLimited past `limit` in the window (0: no
    limit). `what` names the action in the message ("run submissions")."""
    if limit <= 0:
        return
    now = time.time()
    key = f"ratelimit:{scope}:{who}:{int(now // window)}"
    try:
        cache.add(key, 0, timeout=window + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window + 5)
            count = 1
    except Exception as exc:  # noqa: BLE001 - Redis down (the class topology): say so, never 500
        raise Refused(503, f"the lab cannot count requests right now ({type(exc).__name__}); "
                           "try again in a minute", retry_after=30) from exc
    if count > limit:
        retry_after = int(window - now % window) + 1
        raise RateLimited(f"too many {what}: at most {limit} a minute; try again in {retry_after} seconds",
                          retry_after)


def submission(request) -> str:
    """One run submission (a run, a race or a sweep) by the request's owner; returns the owner."""
    owner = owner_key(request)
    hit("submit", owner, settings.PEFTLAB_SUBMISSIONS_PER_MINUTE, "run submissions")
    return owner


def join_attempt(request) -> None:
    hit("join", owner_key(request), settings.PEFTLAB_JOINS_PER_MINUTE, "attempts to join a class")


def login_attempt(request, username: str) -> None:
    """Per browser session, and per account name (a password guesser drops its cookies)."""
    limit = settings.PEFTLAB_LOGINS_PER_MINUTE
    hit("login", owner_key(request), limit, "sign-in attempts")
    if username:
        account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        hit("login-user", account, limit, "sign-in attempts for this account")

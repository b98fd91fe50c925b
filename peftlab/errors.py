"""What went wrong with a request, for the person who sent it: one family of exceptions that every
part of the web project raises, each kind named for what happened (not for a number) and carrying
the HTTP status it is answered with.

    raise NotFound(f"there is no run {run_id}")
    raise TooMany("too many run submissions: ...", retry_after=42)

The API answers every one of them in one place (peftlab/api/lab.py) with {"error": message}, the
kind's status and, where the lab knows how long to wait, Retry-After; the class pages show the
message with the same status (peftlab/classroom/views.py). A module may name its own refusals as
subclasses of a kind (peftlab/runs/lifecycle.BrokerUnavailable is an Unavailable).

Plain Python, outside the project's layered apps, so that every layer may import it: the runs app
at the bottom as much as the routers at the top. The engine (workers/) and the math
(simulations/) import nothing of peftlab: their request errors are ValueErrors that the API's
handler table answers with 400.
"""


class LabError(Exception):
    """A request the lab will not carry out. `message` says what went wrong and what to do about
    it; `retry_after` (seconds) how long to wait before trying again, where the lab knows."""

    status = 500

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Invalid(LabError):
    """The request asks for something the lab cannot do: a parameter, a file or a limit says no."""

    status = 400


class NotAllowed(LabError):
    """This person may not do this here (a class's settings, a failed CSRF check)."""

    status = 403


class NotFound(LabError):
    """There is no such thing, or none this person may see."""

    status = 404


class Conflict(LabError):
    """Not in the state the request needs (a run already finished, a class paused, a full shelf)."""

    status = 409


class TooLarge(LabError):
    """The request, or a file in it, is larger than the lab takes."""

    status = 413


class TooMany(LabError):
    """Too many requests or runs for now: `retry_after`, where known, says when to try again."""

    status = 429


class Unavailable(LabError):
    """Something the lab needs (the job queue, the request counters) is not reachable now."""

    status = 503


KINDS = (Invalid, NotAllowed, NotFound, Conflict, TooLarge, TooMany, Unavailable)

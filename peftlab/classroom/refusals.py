"""A request the lab will not carry out, with the HTTP status and a message for the person who
sent it (a quota, a class setting, a rate limit). The API answers {"error": message}; pages show
the message."""


class Refused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after  # seconds, sent as the Retry-After header


class RateLimited(Refused):
    def __init__(self, message: str, retry_after: int):
        super().__init__(429, message, retry_after)

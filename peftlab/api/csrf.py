"""The CSRF rule of every state-changing operation (POST, PUT, PATCH, DELETE).

ninja exempts its views from Django's CSRF middleware; each such operation calls require_csrf
first, so that the API follows Django's rules all the same (tests/api walks the OpenAPI document
and proves that every state-changing operation refuses a request without the token).
"""

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from peftlab.errors import NotAllowed

MESSAGE = "CSRF check failed: load any page to get the csrftoken cookie and send it back in the X-CSRFToken header"


def require_csrf(request: HttpRequest) -> None:
    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if reason is not None:
        raise NotAllowed(MESSAGE)

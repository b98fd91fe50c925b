"""ASGI entry point: the web server runs under ASGI so that the SSE stream is async."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peftlab.settings")
application = get_asgi_application()

# Each web server process builds now what its first requests would otherwise build while a class
# waits on them: the URLconf (every view and API module, imported on the event loop that serves
# all of the process's requests: seconds of CPU on a busy machine) and the broker sender.
from django.urls import get_resolver  # noqa: E402 - after the Django setup above

from peftlab.runs.lifecycle import prepare_dispatch  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - imported on first access
prepare_dispatch()

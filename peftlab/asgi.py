"""ASGI entry point: the web server runs under ASGI so that the SSE stream is async."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peftlab.settings")
application = get_asgi_application()

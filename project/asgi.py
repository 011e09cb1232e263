"""ASGI entry point (``uvicorn project.asgi:application --no-proxy-headers``); async
views stay on the loop. ``ratelimit_app.asgi`` wraps Django's handler so that the
server's shutdown logs the last denial counts (uvicorn's workers never run ``atexit``)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from ratelimit_app.asgi import get_asgi_application

application = get_asgi_application()

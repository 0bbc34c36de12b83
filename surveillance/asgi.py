import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "surveillance.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.DEBUG:  # development: daphne serves the admin's static files itself
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from surveillance.routing import websocket_urlpatterns  # noqa: E402
from surveillance.ws_auth import JWTOrSessionAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The Origin check (ALLOWED_HOSTS) is inside, for cookie-session sockets only: a token socket
        # needs no Origin (native apps send none). Why: surveillance/ws_auth.py.
        "websocket": JWTOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as account_views

from . import health, metrics

api_v1 = [
    path("", include("accounts.urls")),
    path("cameras/<int:camera_id>/figures/", metrics.CameraFiguresApi.as_view(), name="camera-figures"),
    path("", include("cameras.urls")),
    path("", include("events.urls")),
    path("", include("arming.urls")),
    path("", include("alerts.urls")),
    path("", include("recordings.urls")),
    path("", include("siteconfig.urls")),
    path("stats/", metrics.StatsApi.as_view(), name="stats"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    # The admin signs in through the product's sign-in page, throttled per user name and address.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True), name="admin-login"),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's): the product's icon.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("api/v1/", include(api_v1)),
    path("health/", health.health, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", include("accounts.page_urls")),
    path("", include("cameras.page_urls")),
    path("", include("events.page_urls")),
    path("", include("alerts.page_urls")),
    path("accounts/preferences/", account_views.preferences, name="preferences"),
]

handler404 = "surveillance.api.not_found"

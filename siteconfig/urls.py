from django.urls import path

from . import apis

urlpatterns = [
    path("site/settings/", apis.SiteSettingsApi.as_view(), name="site-settings"),
]

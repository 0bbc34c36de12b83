"""API-wide pieces: the exception handler that turns every error into a clear 4xx."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    # Services raise Django's ValidationError; the API answers 400 naming the field.
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": exc.messages})
    return drf_exception_handler(exc, context)


def not_found(request, exception=None):
    """Django's 404 for URLs no view matches (``/api/v1/cameras/abc/``): JSON under /api/, like every
    other API error, and the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API endpoint at {request.path[:200]!r}. See /api/v1/docs/."},
                            status=404)
    return page_not_found(request, exception)

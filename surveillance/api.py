"""API-wide pieces: the exception handler that turns every error into a clear 4xx, and the pagination
of every list endpoint."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, pagination
from rest_framework.settings import api_settings
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


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's ``?limit=&offset=`` pagination (REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]) with a ceiling.

    What DRF users expect, never a database error: ``limit`` over ``max_limit`` (1000) gives
    ``max_limit`` rows (DRF's ``max_limit``); a missing, zero, negative or non-numeric ``limit`` gives
    the default page (``PAGE_SIZE``); a negative or non-numeric ``offset`` starts at 0; an offset past
    the last row gives an empty page. Offsets over ``max_offset`` (2**62, past any table's end) are
    ``max_offset``, so that ``offset + limit`` always fits the databases' 64-bit integers: a giant
    ``limit`` reached SQLite as "datatype mismatch" (a 500) before.
    """

    max_limit = 1000
    max_offset = 2**62
    limit_query_description = (f"Number of results to return per page (default {api_settings.PAGE_SIZE}, "
                               f"at most {max_limit}: a larger limit returns {max_limit}).")
    offset_query_description = "The initial index from which to return the results (0 when negative)."

    def get_offset(self, request):
        return min(super().get_offset(request), self.max_offset)

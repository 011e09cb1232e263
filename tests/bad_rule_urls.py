"""A URLconf with one DRF view whose ``throttle_key`` can never work (for the checks)."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class BadKeyView(APIView):
    throttle_key = "cookie:session"

    def get(self, request: object) -> Response:
        return Response({})


urlpatterns = [path("bad", BadKeyView.as_view())]

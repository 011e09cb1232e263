"""A URLconf whose views name a policy that is not configured, or an impossible cost."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.views import APIView

from ratelimit_app.decorators import ratelimit
from ratelimit_app.throttling import TokenBucketThrottle


@ratelimit("nope")
def unknown_policy(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


@ratelimit("default", cost=50)
def too_costly(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


class GhostView(APIView):
    throttle_classes = [TokenBucketThrottle]
    throttle_scope = "ghost"


class HeavyView(APIView):
    throttle_classes = [TokenBucketThrottle]
    throttle_cost_by_method = {"POST": 9}


nested = [path("ghost", GhostView.as_view()), path("heavy", HeavyView.as_view())]
urlpatterns = [
    path("unknown", unknown_policy),
    path("costly", too_costly),
    path("drf/", include(nested)),
]

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def home(request: HttpRequest) -> HttpResponse:
    items = "".join(f'<li><a href="/api/v1/users/{i}">user{i}</a>' for i in range(1, 11))
    return HttpResponse(
        '<!doctype html><meta charset=utf-8><title>people</title>'
        f'<link rel=stylesheet href="/static/site.css"><h1>people</h1><ul>{items}</ul>'
    )


def stylesheet(request: HttpRequest) -> HttpResponse:
    return HttpResponse("body { font-family: sans-serif }", content_type="text/css")


def profile(request: HttpRequest, user_id: int) -> JsonResponse:
    return JsonResponse({"id": user_id, "username": f"user{user_id}", "phone": f"+44 7700 9{user_id:05d}"})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the app's own bug")


urlpatterns = [
    path("", home),
    path("static/site.css", stylesheet),
    path("api/v1/users/<int:user_id>", profile),
    path("boom", boom),
]

"""The people's pages' templates and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Pages that hold a form token or a person's name: not kept by any cache, not framed by
# another site (a login form in a frame could be clicked through), no script or style
# from anywhere but here (there is no script at all), forms sent only here.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(HEADERS)
    return response


def refuse(request: web.Request, status: int, code: str, zh: str, en: str) -> web.Response:
    """A refusal with a stable id (`code`): a page for people, JSON for a script that
    asks for it (the pages to come may fetch)."""
    if _wants_json(request):
        return web.json_response({"error": code, "message": en}, status=status, headers=HEADERS)
    return render(request, "refused.html", {"code": code, "zh": zh, "en": en}, status=status)


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept

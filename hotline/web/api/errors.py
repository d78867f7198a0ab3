"""The API's errors: JSON with a stable id that scripts can rely on, and a sentence for people."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error(status: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    """Errors carry a stable id (`code`) that scripts can rely on, and a sentence for people."""
    return status(
        text=web.json_response({"error": code, "message": message}).text,
        content_type="application/json",
    )


# aiohttp's own refusals, which answer in plain text, as the API's stable error ids.
_HTTP_ERRORS = {
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
}


def as_json(exc: web.HTTPException) -> web.HTTPException:
    """An error raised by aiohttp itself (no such route, a body over the limit) in the
    API's JSON shape; the API's own errors, already JSON, pass unchanged."""
    if exc.status < 400 or exc.content_type == "application/json":
        return exc
    code = _HTTP_ERRORS.get(exc.status, "bad-request" if exc.status < 500 else "server-error")
    kept = {k: v for k, v in exc.headers.items() if k not in ("Content-Type", "Content-Length")}
    message = (exc.text or exc.reason).removeprefix(f"{exc.status}: ")
    converted = web.HTTPException(
        text=web.json_response({"error": code, "message": message}).text,
        content_type="application/json",
        headers=kept,
    )
    converted.set_status(exc.status, exc.reason)
    return converted


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise error(web.HTTPBadRequest, "invalid-json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise error(web.HTTPBadRequest, "invalid-json", "the body must be a JSON object")
    return body

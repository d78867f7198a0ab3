"""The API's errors: JSON with a stable id that scripts can rely on, and a sentence for people."""

from __future__ import annotations

from typing import Any

import orjson
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


# The API's bodies are two levels deep (an agent's desks); a client has no need of 32.
# Deeper ones are refused: str() of such a value, and pydantic's report of it, recurse
# into it until RecursionError.
MAX_DEPTH = 32


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object. Read as UTF-8 whatever charset the request names (JSON is
    UTF-8, RFC 8259), by orjson: unlike the standard library it refuses a lone surrogate
    (no UTF-8 encodes one, no database stores one) and stops at 1024 levels of nesting,
    where the standard library recurses until RecursionError."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise error(
            web.HTTPBadRequest, "invalid-json", f"the body must be a JSON object: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise error(web.HTTPBadRequest, "invalid-json", "the body must be a JSON object")
    _check(body)
    return body


def _check(body: dict[str, Any]) -> None:
    """At most MAX_DEPTH levels, and no NUL in a string, keys too (no field takes one, and
    PostgreSQL's text cannot hold it). A loop, not recursion: the body may be 1024 deep."""
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise error(
                web.HTTPBadRequest,
                "invalid-json",
                f"the body must be a JSON object nested at most {MAX_DEPTH} levels deep",
            )
        if isinstance(item, str):
            if "\x00" in item:
                raise error(
                    web.HTTPBadRequest, "invalid-parameter", "no text of the body may hold a NUL"
                )
        elif isinstance(item, dict):
            pending.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            pending.extend((part, depth + 1) for part in item)

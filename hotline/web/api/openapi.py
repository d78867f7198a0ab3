"""`GET /api/openapi.json`: the ops API's OpenAPI document (`openapi.yaml`, packaged)."""

from __future__ import annotations

from importlib import resources

import yaml
from aiohttp import web

SUBPATH = "/openapi.json"
PATH = "/api" + SUBPATH


def document() -> object:
    """The document as data; read from the package each time (it is asked for rarely)."""
    text = resources.files("hotline.web.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(), headers={"Cache-Control": "no-cache"})

"""The people's pages: login and logout, and a landing page for each role.

The pages that come next (the agents' desk, the departments' cases, the centre) are added
here the same way: a handler under `@requires(role, ...)` (guard.py) added with
`add_page` (pages.py), a template under templates/ extending base.html, its forms carrying
`csrf_token`, their styles in static/.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from hotline.web.people import home, login
from hotline.web.people.pages import add_page
from hotline.web.people.render import STATIC, TEMPLATES


def add_people_pages(app: web.Application) -> None:
    """The routes, templates and static files of the people's pages, on the main app (their
    paths are at the root)."""
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, default_helpers=False
    )
    add_page(app, "GET", "/login", login.form)
    add_page(app, "POST", "/login", login.log_in)
    add_page(app, "POST", "/logout", login.log_out)
    add_page(app, "GET", "/desk", home.desk)
    add_page(app, "GET", "/cases", home.cases)
    add_page(app, "GET", "/centre", home.centre)
    app.router.add_static("/static", STATIC)

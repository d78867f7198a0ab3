"""Each role's landing page, for now only who is logged in and the way out.

The agents' desk (`/desk`), the departments' cases (`/cases`) and the centre (`/centre`)
replace these with their own pages; the routes and the roles that may open them stay.
"""

from __future__ import annotations

from aiohttp import web

from hotline.auth.accounts import AccountRole
from hotline.web.keys import ACCOUNT, CONFIG
from hotline.web.people import sessions
from hotline.web.people.csrf import FIELD
from hotline.web.people.guard import requires
from hotline.web.people.render import render

# Each role's name, in Chinese and English.
ROLE_NAMES = {
    AccountRole.AGENT: ("坐席", "agent"),
    AccountRole.DEPARTMENT: ("部门工作人员", "department staff"),
    AccountRole.CENTRE: ("热线中心", "centre"),
    AccountRole.ADMIN: ("管理员", "administrator"),
}


@requires(AccountRole.AGENT)
async def desk(request: web.Request) -> web.StreamResponse:
    return await _home(request, "坐席工作台", "Agents' desk")


@requires(AccountRole.DEPARTMENT)
async def cases(request: web.Request) -> web.StreamResponse:
    return await _home(request, "部门工单", "Department cases")


@requires(AccountRole.CENTRE, AccountRole.ADMIN)
async def centre(request: web.Request) -> web.StreamResponse:
    return await _home(request, "热线中心", "Hotline centre")


async def _home(request: web.Request, title_zh: str, title_en: str) -> web.Response:
    account = request[ACCOUNT]
    names = request.config_dict[CONFIG].current.departments
    department = names.get(account.department or "", {})
    role_zh, role_en = ROLE_NAMES[account.role]
    context = {
        "title_zh": title_zh,
        "title_en": title_en,
        "account": account,
        "role_zh": role_zh,
        "role_en": role_en,
        # A department the config no longer names is shown by its id.
        "department_zh": department.get("zh", account.department),
        "department_en": department.get("en", account.department),
        "csrf_field": FIELD,
        "csrf_token": await sessions.csrf_token(request),
    }
    return render(request, "home.html", context)

"""`GET /api/kpi`: the period's response, resolution and satisfaction rates by group."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from casework.kpi import KpiDimension, KpiRow
from hotline.kpi.report import group_names, names_of
from hotline.store.kpi import kpi_report
from hotline.web.api.errors import error
from hotline.web.api.params import moment
from hotline.web.keys import CLOCK, CONFIG, STORE


async def get_kpi(request: web.Request) -> web.Response:
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&by=department|district`: local days, `to` included."""
    q = request.query
    config = request.config_dict[CONFIG].current
    zone = config.plan.hours.zone
    start = moment(q.get("from"), zone, "from")
    end = moment(q.get("to"), zone, "to", end_of_day=True)
    if start is None or end is None:
        raise error(web.HTTPBadRequest, "invalid-parameter", "from and to are both required")
    if start >= end:
        raise error(web.HTTPBadRequest, "invalid-parameter", "from must come before to")
    try:
        by = KpiDimension(q.get("by") or KpiDimension.DEPARTMENT.value)
    except ValueError:
        raise error(
            web.HTTPBadRequest, "invalid-parameter", "by must be one of: department, district"
        ) from None
    now = request.config_dict[CLOCK]()
    names = group_names(config, by)
    report = await kpi_report(request.config_dict[STORE].engine, start, end, now, by, names)
    return web.json_response(
        {
            "period": {
                "from": q["from"],
                "to": q["to"],
                "start": start.isoformat(),
                "end": end.isoformat(),  # exclusive
                "as_of": now.isoformat(),
            },
            "by": by.value,
            "rows": [_row(row, names_of(row.group, names)) for row in report.rows],
            "total": _row(report.total, names_of(report.total.group, names)),
        }
    )


def _row(row: KpiRow, names: dict[str, str]) -> dict[str, Any]:
    return {
        "group": row.group,
        "names": names,
        "due": row.due,
        "responded_in_time": row.responded_in_time,
        "response_rate": _rounded(row.response_rate),
        "handled": row.handled,
        "resolved": row.resolved,
        "resolution_rate": _rounded(row.resolution_rate),
        "surveyed": row.surveyed,
        "satisfied": row.satisfied,
        "basically_satisfied": row.basically_satisfied,
        "dissatisfied": row.dissatisfied,
        "satisfaction_rate": _rounded(row.satisfaction_rate),
        "overdue": row.overdue,
    }


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)

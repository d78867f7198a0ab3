"""The KPI report for people: group names from the config, a text table and a chart image."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from casework.kpi import TOTAL, UNASSIGNED, KpiDimension, KpiRow
from hotline.config import LoadedConfig
from hotline.store.kpi import KpiReport

_SPECIAL_NAMES = {
    UNASSIGNED: {"zh": "未指定", "en": "unassigned"},
    TOTAL: {"zh": "合计", "en": "total"},
}
# Matplotlib ships no CJK glyphs; these are the fonts Debian (and most Linux) have for them.
_CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC")
_CJK_FILES = ("wqy-", "notosanscjk", "notosanssc")


def group_names(config: LoadedConfig, by: KpiDimension) -> Mapping[str, Mapping[str, str]]:
    """The configured departments or districts: id -> language -> name."""
    return config.departments if by is KpiDimension.DEPARTMENT else config.districts


def name_of(group: str, names: Mapping[str, Mapping[str, str]], language: str) -> str:
    found = names.get(group) or _SPECIAL_NAMES.get(group)
    if not found:
        return group  # on tickets but no longer in the config: its id is all there is
    return found.get(language) or next(iter(found.values()))


def names_of(group: str, names: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return dict(names.get(group) or _SPECIAL_NAMES.get(group) or {})


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


# -- the table ------------------------------------------------------------------------------


_COLUMNS: tuple[tuple[str, Callable[[KpiRow], str]], ...] = (
    ("due", lambda r: str(r.due)),
    ("in time", lambda r: str(r.responded_in_time)),
    ("response", lambda r: percent(r.response_rate)),
    ("handled", lambda r: str(r.handled)),
    ("resolved", lambda r: str(r.resolved)),
    ("resolution", lambda r: percent(r.resolution_rate)),
    ("surveyed", lambda r: str(r.surveyed)),
    ("satisfied+basic", lambda r: str(r.satisfied + r.basically_satisfied)),
    ("satisfaction", lambda r: percent(r.satisfaction_rate)),
    ("overdue", lambda r: str(r.overdue)),
)


def table(report: KpiReport, names: Mapping[str, Mapping[str, str]], language: str) -> str:
    """An aligned text table, one line per group and a total line (CJK names counted wide)."""
    header = [report.by.value, *(title for title, _ in _COLUMNS)]
    lines = [
        [name_of(row.group, names, language), *(cell(row) for _, cell in _COLUMNS)]
        for row in [*report.rows, report.total]
    ]
    widths = [max(_width(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        first = cells[0] + " " * (widths[0] - _width(cells[0]))
        rest = (" " * (w - _width(c)) + c for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "-" * len(render(header))
    return "\n".join([render(header), rule, *map(render, lines[:-1]), rule, render(lines[-1])])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# -- the chart ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    title: str
    rate: Callable[[KpiRow], float | None]
    part: Callable[[KpiRow], int]
    whole: Callable[[KpiRow], int]


_PANELS = (
    _Panel(
        "Response rate\nanswered by the deadline / due",
        lambda r: r.response_rate,
        lambda r: r.responded_in_time,
        lambda r: r.due,
    ),
    _Panel(
        "Resolution rate\nresolved / handled",
        lambda r: r.resolution_rate,
        lambda r: r.resolved,
        lambda r: r.handled,
    ),
    _Panel(
        "Satisfaction rate\n(satisfied + basically) / surveyed",
        lambda r: r.satisfaction_rate,
        lambda r: r.satisfied + r.basically_satisfied,
        lambda r: r.surveyed,
    ),
)
_ABOVE = "#2f6fb0"  # at or above the rate of all groups together
_BELOW = "#e07b39"
_NONE = "#9a9a9a"  # tickets of no department or district: not compared
_LABEL_CHARS = 26


def chart(
    report: KpiReport,
    names: Mapping[str, Mapping[str, str]],
    path: Path,
    first_day: date,
    last_day: date,
) -> None:
    """Three panels of horizontal bars, each group's rate sorted best first, counts annotated.

    Labels are in Chinese when a CJK font is installed, in English otherwise.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    cjk = _cjk_fonts()
    language = "zh" if cjk else "en"
    count = max(1, len(report.rows))
    with pyplot.rc_context({"font.sans-serif": [*cjk, *matplotlib.rcParams["font.sans-serif"]]}):
        figure, axes = pyplot.subplots(
            1, 3, figsize=(19, 2.2 + 0.32 * count), layout="constrained", squeeze=True
        )
        for panel, ax in zip(_PANELS, axes, strict=True):
            _draw_panel(ax, panel, report, names, language, PercentFormatter(1.0, decimals=0))
        period = f"{first_day:%Y-%m-%d}"
        if last_day != first_day:
            period += f" to {last_day:%Y-%m-%d}"
        as_of = report.as_of.astimezone(report.start.tzinfo)
        figure.suptitle(
            f"Hotline KPIs by {report.by.value}, {period}, as of {as_of:%Y-%m-%d %H:%M}    "
            f"(all: {report.total.due} due, {report.total.handled} handled, "
            f"{report.total.surveyed} surveyed, {report.total.overdue} overdue)",
            fontsize=15,
        )
        legend = [
            Patch(color=_ABOVE, label="at or above the rate of all (dashed line)"),
            Patch(color=_BELOW, label="below it"),
            Patch(color=_NONE, label=f"no {report.by.value} on the ticket"),
        ]
        figure.legend(handles=legend, loc="outside lower center", ncols=3, frameon=False)
        figure.savefig(path, dpi=100)
        pyplot.close(figure)


def _draw_panel(
    ax: Any,
    panel: _Panel,
    report: KpiReport,
    names: Mapping[str, Mapping[str, str]],
    language: str,
    formatter: Any,
) -> None:
    rated = [r for r in report.rows if panel.rate(r) is not None]
    unrated = len(report.rows) - len(rated)
    # Best at the top: barh draws the first bar at the bottom.
    rated.sort(key=lambda r: (panel.rate(r) or 0.0, panel.whole(r)))
    overall = panel.rate(report.total)
    positions = range(len(rated))
    values = [panel.rate(r) or 0.0 for r in rated]
    colours = [
        _NONE if r.group == UNASSIGNED else _ABOVE if overall is None or v >= overall else _BELOW
        for r, v in zip(rated, values, strict=True)
    ]
    ax.barh(positions, values, color=colours, height=0.7)
    ax.set_yticks(list(positions))
    ax.set_yticklabels([_label(name_of(r.group, names, language)) for r in rated], fontsize=9)
    for y, row, value in zip(positions, rated, values, strict=True):
        ax.text(
            value + 0.01,
            y,
            f"{value * 100:.0f}%  {panel.part(row)}/{panel.whole(row)}",
            va="center",
            fontsize=8,
            color="#333333",
            # Stays readable where it crosses the line of all groups' rate.
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )
    if overall is not None:
        ax.axvline(overall, color="#555555", linestyle="--", linewidth=1)
        ax.text(
            overall,
            1.0,
            f" all {overall * 100:.1f}%",
            transform=ax.get_xaxis_transform(),
            va="bottom",
            ha="center",
            fontsize=9,
        )
    ax.set_xlim(0, 1.3)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.xaxis.set_major_formatter(formatter)
    ax.set_ylim(-0.7, max(len(rated), 1) - 0.3)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(panel.title, fontsize=11, loc="left", pad=16)
    if not rated:
        ax.text(0.5, 0.5, "nothing to rate", ha="center", va="center", transform=ax.transAxes)
    if unrated:
        ax.set_xlabel(f"{unrated} group(s) with nothing to rate are left out", fontsize=8)


def _label(name: str) -> str:
    return textwrap.fill(name, _LABEL_CHARS, max_lines=2, placeholder="…")


def _cjk_fonts() -> list[str]:
    from matplotlib import font_manager

    def installed() -> list[str]:
        known = {font.name for font in font_manager.fontManager.ttflist}
        return [name for name in _CJK_FONTS if name in known]

    if not installed():
        # Matplotlib's font cache predates a font installed since: look on disk once.
        for path in font_manager.findSystemFonts():
            if any(mark in Path(path).name.lower() for mark in _CJK_FILES):
                font_manager.fontManager.addfont(path)
    return installed()

"""The only module that touches grafanalib (0.7.1, unmaintained since 2024).

Everything else builds dashboards through these helpers, so replacing grafanalib means rewriting
this file only. The helpers bake in our conventions: every panel and target queries the
`${datasource}` variable, panels carry units and explicit grid positions, JSON is deterministic and
carries no explicit nulls (grafanalib writes an unset option as `null`; Grafana treats a missing key
the same way, and strict readers such as grafana-foundation-sdk's `Dashboard.from_json` refuse the
nulls).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

__all__ = [
    "DATASOURCE",
    "Grid",
    "annotation",
    "dashboard",
    "dashboards_link",
    "datasource_variable",
    "dumps",
    "link",
    "query_variable",
    "row",
    "stable_uid",
    "stat",
    "table",
    "target",
    "timeseries",
    "unit_override",
]

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel, target, variable and annotation queries the dashboard's datasource variable."""

_GRID_WIDTH = 24
_UID_MAX = 40  # Grafana rejects longer dashboard uids


def stable_uid(*parts: str) -> str:
    """A readable uid from names (`driftwatch-model-wine`), hashed down when too long for Grafana."""
    uid = "-".join(parts)
    if len(uid) <= _UID_MAX:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:10]
    return f"{uid[: _UID_MAX - 11]}-{digest}"


@dataclass
class Grid:
    """Lays panels out left to right, wrapping at Grafana's 24 columns."""

    x: int = 0
    y: int = 0
    row_height: int = 0

    def place(self, w: int, h: int) -> g.GridPos:
        if self.x + w > _GRID_WIDTH:
            self.newline()
        pos = g.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False) -> g.Target:
    return g.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        datasource=DATASOURCE,
        instant=instant,
        format="table" if table else "time_series",
        intervalFactor=1,
    )


def _steps(thresholds: list[tuple[float | None, str]]) -> list[dict[str, Any]]:
    return [{"color": color, "value": value} for value, color in thresholds]


def timeseries(
    title: str,
    targets: list[g.Target],
    grid_pos: g.GridPos,
    *,
    unit: str,
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    draw_style: str = "line",
    max_value: int | None = None,
    repeat: str | None = None,
    axis_label: str = "",
) -> g.TimeSeries:
    """A time series panel; `thresholds` ([(None, base color), (value, color), ...]) are drawn as lines."""
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        gridPos=grid_pos,
        unit=unit,
        thresholds=_steps(thresholds or [(None, "green")]),
        thresholdsStyleMode="line" if thresholds else "off",
        drawStyle=draw_style,
        fillOpacity=60 if draw_style == "bars" else 10,
        legendDisplayMode="table",
        legendPlacement="bottom",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        tooltipSort="desc",
        valueMin=0,
        valueMax=max_value,
        axisLabel=axis_label,
        repeat=g.Repeat(direction="h", variable=repeat, maxPerRow=4) if repeat else g.Repeat(),
    )


def stat(
    title: str,
    targets: list[g.Target],
    grid_pos: g.GridPos,
    *,
    unit: str,
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
    no_value: str = "No data",
) -> g.Stat:
    """A single-value panel showing the last value (not the mean: these are states, not rates)."""
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        gridPos=grid_pos,
        format=unit,
        decimals=decimals,
        reduceCalc="lastNotNull",
        noValue=no_value,
        graphMode="area",
        colorMode="value",
        thresholds=_steps(thresholds or [(None, "green")]),
    )


def table(
    title: str,
    targets: list[g.Target],
    grid_pos: g.GridPos,
    *,
    description: str = "",
    rename: dict[str, str],
    sort_by: str,
    overrides: list[dict[str, Any]] | None = None,
) -> g.Table:
    """Instant table queries merged on their labels; only the fields named in `rename` (label names and
    `Value #<refId>`) are shown, in that order, under their new titles."""
    keep = {name: i for i, name in enumerate(rename)}
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        gridPos=grid_pos,
        overrides=overrides or [],
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "filterFieldsByName", "options": {"include": {"names": list(rename)}}},
            {"id": "organize", "options": {"indexByName": keep, "renameByName": rename}},
        ],
    )


def unit_override(field: str, unit: str) -> dict[str, Any]:
    """A table/field override setting the unit of one (renamed) field."""
    return {"matcher": {"id": "byName", "options": field}, "properties": [{"id": "unit", "value": unit}]}


def row(title: str, grid: Grid) -> g.RowPanel:
    grid.newline()
    panel = g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=_GRID_WIDTH, x=0, y=grid.y))
    grid.y += 1
    return panel


def datasource_variable() -> g.Template:
    return g.Template(
        name="datasource",
        label="Data source",
        query="prometheus",
        type="datasource",
    )


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    default: str | None = None,
    multi: bool = False,
    include_all: bool = False,
    all_value: str | None = None,
) -> g.Template:
    """A variable filled from Prometheus (`label_values(...)`), refreshed when the time range changes.

    `all_value` is what "All" stands for in queries (`.*` matches series without the label too);
    without it Grafana expands "All" to the listed values, which matches nothing when there are none.
    """
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        default=default,
        multi=multi,
        includeAll=include_all,
        allValue=all_value,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=g.SORT_ALPHA_ASC,
    )


def annotation(name: str, expr: str, title: str, color: str) -> dict[str, Any]:
    """A Prometheus annotation query: one marker wherever `expr` has a sample."""
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": expr,
        "iconColor": color,
        "name": name,
        "step": "1m",
        "tagKeys": "model,outcome",
        "titleFormat": title,
        "useValueForTime": False,
    }


def link(title: str, uid: str, tooltip: str = "") -> dict[str, Any]:
    """A dashboard link to another dashboard by uid, keeping the time range and the variables (the
    cluster and namespace chosen here stay chosen there)."""
    return {
        "asDropdown": False,
        "icon": "dashboard",
        "includeVars": True,
        "keepTime": True,
        "tags": [],
        "targetBlank": False,
        "title": title,
        "tooltip": tooltip,
        "type": "link",
        "url": f"/d/{uid}",
    }


def dashboards_link(title: str, tags: list[str], tooltip: str = "") -> dict[str, Any]:
    """A dropdown of every dashboard carrying all of `tags`, keeping the time range and the variables."""
    return {
        "asDropdown": True,
        "icon": "external link",
        "includeVars": True,
        "keepTime": True,
        "tags": tags,
        "targetBlank": False,
        "title": title,
        "tooltip": tooltip,
        "type": "dashboards",
        "url": "",
    }


def without_nulls(value: Any) -> Any:
    """`value` with every dict entry whose value is None removed, recursively (a threshold's base step
    then has no `value`, which Grafana reads as the base). A None inside a list has no key to drop
    and no meaning to Grafana, so it is refused rather than silently shifted."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if any(v is None for v in value):
            raise ValueError(f"null inside a list of the dashboard model: {value!r}")
        return [without_nulls(v) for v in value]
    return value


def dashboard(
    *,
    title: str,
    uid: str,
    description: str,
    tags: list[str],
    panels: list[g.Panel],
    variables: list[g.Template],
    annotations: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> dict[str, Any]:
    """The dashboard's JSON model (plain dicts, no explicit nulls), panel ids assigned in layout order."""
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    dash = g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=tags,
        panels=panels,
        templating=g.Templating(list=variables),
        annotations=g.Annotations(list=[builtin, *annotations]),
        links=links,
        editable=True,
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        refresh="30s",
        time=g.Time("now-6h", "now"),
        timezone="browser",
        schemaVersion=39,
    ).auto_panel_ids()
    return without_nulls(json.loads(json.dumps(dash.to_json_data(), cls=DashboardEncoder, sort_keys=True)))


def dumps(model: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

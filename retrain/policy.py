"""The retraining trigger policy: pure, deterministic decisions from a model's state and a clock.

No I/O here. The controller feeds in evaluations (or Alertmanager alerts), the current number of
active jobs and the set of triggers already launched, persists the returned state, and acts on the
returned decision. Keeping this pure is what lets the property tests replay thousands of histories.

Streaks use hysteresis: a window *enters* the drifted state when its drift share reaches
`enter_share` (or a critical feature drifted) and the state is only *left* when a window's share
falls below `exit_share` with no critical feature drifted. Windows in between keep the streak going.
A window with fewer than `min_records` records is no evidence either way: it neither extends nor
ends a streak. Windows that are not newer than the last one seen (a replay after a restart) are
ignored, so re-delivery never double-counts. "Newer" is judged by the window's grid point (record
ordinal or the monitor's grid time), never by event timestamps: senders' clocks are not ours, and one
far-future timestamp must not make every later window look old.

A dry run decides exactly as a real run would, with `skip/dry_run` in place of `launch`: it keeps the
fingerprints it would have launched, since no run exists to deduplicate against.

After a launch the streak's counter restarts at the next drifted window: a drift that persists past
the cooldown may trigger again, under a new fingerprint, while the same streak segment never can.

A new reference (a window judged against another `reference_id` than the last) or a new model
version (a window of another `version` than the last decided on) ends the streak: no launch comes
from windows judged against the old reference, or of the version a retrained one replaced. Cooldown
and budget carry over: they bound how often the model is retrained, whatever judged it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from monitor.core.config import RetrainConfig

Action = Literal["launch", "skip", "none"]
Source = Literal["window", "alert", "performance"]

# Reasons, by the action they come with.
LAUNCH_REASONS = ("drift_streak", "alert", "performance_degraded")
SKIP_REASONS = ("dry_run", "cooldown", "budget_exhausted", "max_active", "max_active_total")
NONE_REASONS = ("unknown_model", "disabled", "stale_window", "insufficient_records", "no_drift", "streak_building", "duplicate",
                "superseded")
"""`superseded`: the verdict of a model version older than the newest serving one (docs/versions.md),
which is neither decided on nor recorded: retraining follows the newest version only."""

DRY_RUN_MEMORY = 256
"""Fingerprints a dry run remembers as launched; older ones are forgotten (an alert is re-sent only
while it fires, so only recent ones can come back)."""


@dataclass(frozen=True)
class WindowEvaluation:
    """One evaluated window of a model, as the monitor hands it to the retraining controller."""

    window_start: float
    window_end: float
    n_records: int
    drift_share: float
    dataset_drifted: bool
    drifted_features: tuple[str, ...]
    critical_drifted: tuple[str, ...]
    report_url: str | None = None
    point: tuple[str, float] | None = None
    """The grid point the window ends at (`DueWindow.point`): ("count", last record ordinal) or
    ("time", grid seconds of the monitor's clock). Decides staleness; without it `window_end` does."""
    performance_degraded: bool = False
    """The model's performance degraded in this window, as `retrain.on_performance` asks (estimated,
    or realized when its labels were already in): the window counts as drifted."""
    reference_id: int | None = None
    """The stored reference the window was judged against (None: the config's). A change ends the streak."""
    version: str | None = None
    """The model version whose traffic filled the window (None: traffic that named none). A change ends the streak."""


@dataclass(frozen=True)
class Trigger:
    """What a launch is about: it becomes the Job's env and annotations."""

    source: Source
    window_start: float
    window_end: float
    drift_share: float | None
    drifted_features: tuple[str, ...]
    report_url: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "drift_share": self.drift_share,
            "drifted_features": list(self.drifted_features),
            "report_url": self.report_url,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trigger:
        return cls(
            source=d["source"],
            window_start=float(d["window_start"]),
            window_end=float(d["window_end"]),
            drift_share=None if d.get("drift_share") is None else float(d["drift_share"]),
            drifted_features=tuple(d.get("drifted_features") or ()),
            report_url=d.get("report_url"),
            reason=d["reason"],
        )


@dataclass(frozen=True)
class Decision:
    model: str
    at: float
    source: Source
    action: Action
    reason: str
    fingerprint: str | None = None
    """Identity of the trigger (set once a trigger condition holds); a launched one never launches again."""
    trigger: Trigger | None = None

    @property
    def triggered(self) -> bool:
        """True when the trigger condition held (launched, or skipped by a gate)."""
        return self.action != "none"


@dataclass(frozen=True)
class ModelState:
    """Everything the policy remembers about one model; persisted after every decision."""

    in_drift: bool = False
    segment_start: float | None = None
    segment_end: float | None = None
    """Range of the first window of the streak segment counting towards the next trigger."""
    segment_point: tuple[str, float] | None = None
    """Grid point of that first window (None for evaluations without one, and in states saved before it)."""
    segment_windows: int = 0
    last_window_end: float | None = None
    last_count_point: int | None = None
    last_time_point: float | None = None
    """The newest grid point seen per grid kind: what a replayed window is recognised by."""
    last_trigger: float | None = None
    trigger_times: tuple[float, ...] = field(default_factory=tuple)
    """Trigger times still inside the budget period."""
    dry_launched: tuple[str, ...] = field(default_factory=tuple)
    """Fingerprints a dry run would have launched, oldest first (at most `DRY_RUN_MEMORY`)."""
    reference_id: int | None = None
    """The reference the model's windows were last judged against (None: the config's)."""
    version: str | None = None
    """The model version of the last window decided on (None: traffic that named none)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "in_drift": self.in_drift,
            "segment_start": self.segment_start,
            "segment_end": self.segment_end,
            "segment_point": None if self.segment_point is None else list(self.segment_point),
            "segment_windows": self.segment_windows,
            "last_window_end": self.last_window_end,
            "last_count_point": self.last_count_point,
            "last_time_point": self.last_time_point,
            "last_trigger": self.last_trigger,
            "trigger_times": list(self.trigger_times),
            "dry_launched": list(self.dry_launched),
            "reference_id": self.reference_id,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelState:
        return cls(
            in_drift=bool(d.get("in_drift", False)),
            segment_start=d.get("segment_start"),
            segment_end=d.get("segment_end"),
            segment_point=_point(d.get("segment_point")),
            segment_windows=int(d.get("segment_windows", 0)),
            last_window_end=d.get("last_window_end"),
            last_count_point=d.get("last_count_point"),
            last_time_point=d.get("last_time_point"),
            last_trigger=d.get("last_trigger"),
            trigger_times=tuple(float(t) for t in d.get("trigger_times", ())),
            dry_launched=tuple(d.get("dry_launched", ())),
            reference_id=None if d.get("reference_id") is None else int(d["reference_id"]),
            version=None if d.get("version") is None else str(d["version"]),
        )


def _point(raw: Any) -> tuple[str, float] | None:
    return None if raw is None else (str(raw[0]), float(raw[1]))


@dataclass(frozen=True)
class Capacity:
    """Jobs running now, and the overall cap (`defaults.max_active_jobs_total`)."""

    active_model: int
    active_total: int
    max_total: int


def fingerprint(model: str, *parts: object) -> str:
    """A stable 16-hex-digit identity of a trigger; it names the Job, so it must never change."""
    text = "|".join([model, *(repr(p) for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def window_fingerprint(model: str, segment_start: float, segment_end: float, point: tuple[str, float] | None = None) -> str:
    """A window trigger is identified by the first window of its streak segment. Its grid point is
    part of it when known: sender timestamps alone can repeat (a frozen clock), and a repeat would
    make a new streak look like a launched one."""
    if point is None:
        return fingerprint(model, "window", float(segment_start), float(segment_end))
    return fingerprint(model, "window", float(segment_start), float(segment_end), point[0], float(point[1]))


def performance_fingerprint(model: str, first_point: tuple[str, float] | None, window_start: float) -> str:
    """A realized-degradation trigger is identified by the first window of its streak."""
    if first_point is None:
        return fingerprint(model, "performance", float(window_start))
    return fingerprint(model, "performance", first_point[0], float(first_point[1]))


def alert_fingerprint(model: str, alert_fingerprint: str, starts_at: str) -> str:
    """An Alertmanager trigger is identified by the alert's fingerprint and start time."""
    return fingerprint(model, "alert", alert_fingerprint, starts_at)


def _stale(ev: WindowEvaluation, state: ModelState) -> bool:
    """Whether the window is not newer than the last one seen of its grid (a replay)."""
    if ev.point is None:
        return state.last_window_end is not None and ev.window_end <= state.last_window_end
    kind, value = ev.point
    last = state.last_count_point if kind == "count" else state.last_time_point
    return last is not None and value <= last


def _seen(ev: WindowEvaluation, state: ModelState) -> ModelState:
    """The state remembering the window as the newest seen of its grid."""
    state = replace(state, last_window_end=ev.window_end)
    if ev.point is None:
        return state
    kind, value = ev.point
    if kind == "count":
        return replace(state, last_count_point=int(value))
    return replace(state, last_time_point=float(value))


def _already_launched(cfg: RetrainConfig, state: ModelState, fp: str, launched: Container[str]) -> bool:
    """A run exists for the trigger, or (in a dry run) the dry run would have launched it."""
    return fp in launched or (cfg.dry_run and fp in state.dry_launched)


def _gate(cfg: RetrainConfig, state: ModelState, now: float, cap: Capacity) -> str | None:
    """The first gate that blocks a launch now (skip reason), or None when all pass."""
    if cap.active_total >= cap.max_total:
        return "max_active_total"
    if cap.active_model >= cfg.max_active:
        return "max_active"
    if state.last_trigger is not None and now < state.last_trigger + cfg.cooldown:
        return "cooldown"
    in_period = [t for t in state.trigger_times if t > now - cfg.budget.period]
    if len(in_period) >= cfg.budget.count:
        return "budget_exhausted"
    if cfg.dry_run:
        return "dry_run"
    return None


def _fire(
    cfg: RetrainConfig, state: ModelState, now: float, cap: Capacity, decision: Decision
) -> tuple[Decision, ModelState]:
    """Apply the gates to a trigger; a launch (or a dry-run 'would launch') starts cooldown and spends budget."""
    blocked = _gate(cfg, state, now, cap)
    if blocked is not None and blocked != "dry_run":
        return replace(decision, action="skip", reason=blocked), state
    fired = replace(
        state,
        segment_start=None,
        segment_end=None,
        segment_point=None,
        segment_windows=0,
        last_trigger=now,
        trigger_times=(*(t for t in state.trigger_times if t > now - cfg.budget.period), now),
    )
    if blocked == "dry_run":
        assert decision.fingerprint is not None
        remembered = (*state.dry_launched, decision.fingerprint)[-DRY_RUN_MEMORY:]
        return replace(decision, action="skip", reason="dry_run"), replace(fired, dry_launched=remembered)
    return decision, fired


def decide_window(
    model: str,
    cfg: RetrainConfig,
    state: ModelState,
    ev: WindowEvaluation,
    now: float,
    cap: Capacity,
    launched: Container[str],
) -> tuple[Decision, ModelState]:
    """Advance the model's streak with one evaluated window and decide whether to launch."""
    none = Decision(model=model, at=now, source="window", action="none", reason="")
    if not cfg.enabled:
        return replace(none, reason="disabled"), state
    if _stale(ev, state):
        return replace(none, reason="stale_window"), state
    state = _seen(ev, state)
    if (ev.reference_id, ev.version) != (state.reference_id, state.version):
        # a streak built against the old reference, or on the version being replaced, proves nothing now
        state = replace(state, reference_id=ev.reference_id, version=ev.version, in_drift=False, segment_start=None,
                        segment_end=None, segment_point=None, segment_windows=0)
    if ev.n_records < cfg.min_records:
        return replace(none, reason="insufficient_records"), state

    entering = ev.drift_share >= cfg.enter_share or bool(ev.critical_drifted) or ev.performance_degraded
    leaving = ev.drift_share < cfg.exit_share and not ev.critical_drifted and not ev.performance_degraded
    if not state.in_drift and not entering:
        return replace(none, reason="no_drift"), state
    if state.in_drift and leaving:
        ended = replace(state, in_drift=False, segment_start=None, segment_end=None, segment_point=None, segment_windows=0)
        return replace(none, reason="no_drift"), ended
    if state.segment_start is None:
        state = replace(state, in_drift=True, segment_start=ev.window_start, segment_end=ev.window_end,
                        segment_point=ev.point, segment_windows=1)
    else:
        state = replace(state, segment_windows=state.segment_windows + 1)
    if state.segment_windows < cfg.consecutive_windows:
        return replace(none, reason="streak_building"), state

    assert state.segment_start is not None and state.segment_end is not None
    fp = window_fingerprint(model, state.segment_start, state.segment_end, state.segment_point)
    if _already_launched(cfg, state, fp, launched):
        # Only reachable if the persisted state was lost after a launch: never launch it again.
        reset = replace(state, segment_start=None, segment_end=None, segment_point=None, segment_windows=0)
        return replace(none, reason="duplicate", fingerprint=fp), reset
    features = tuple(dict.fromkeys((*ev.critical_drifted, *ev.drifted_features)))
    trigger = Trigger(
        source="window",
        window_start=state.segment_start,
        window_end=ev.window_end,
        drift_share=ev.drift_share,
        drifted_features=features,
        report_url=ev.report_url,
        reason=f"drift{' or performance degradation' if ev.performance_degraded else ''} held for {state.segment_windows} consecutive windows",
    )
    decision = replace(none, action="launch", reason="drift_streak", fingerprint=fp, trigger=trigger)
    return _fire(cfg, state, now, cap, decision)


def decide_performance(
    model: str,
    cfg: RetrainConfig,
    state: ModelState,
    fp: str,
    trigger: Trigger,
    streak: int,
    now: float,
    cap: Capacity,
    launched: Container[str],
) -> tuple[Decision, ModelState]:
    """Realized performance, judged once labels landed, degraded in `streak` consecutive judged
    windows: a launch once the streak reaches `consecutive_windows` and `on_performance` asks for
    realized degradation, through the same gates as every trigger."""
    decision = Decision(model=model, at=now, source="performance", action="none", reason="", fingerprint=fp)
    if not cfg.enabled or cfg.on_performance not in ("realized", "either"):
        return replace(decision, reason="disabled"), state
    if streak < cfg.consecutive_windows:
        return replace(decision, reason="streak_building"), state
    if _already_launched(cfg, state, fp, launched):
        return replace(decision, reason="duplicate"), state
    return _fire(cfg, state, now, cap, replace(decision, action="launch", reason="performance_degraded", trigger=trigger))


def decide_alert(
    model: str,
    cfg: RetrainConfig,
    state: ModelState,
    fp: str,
    trigger: Trigger,
    now: float,
    cap: Capacity,
    launched: Container[str],
) -> tuple[Decision, ModelState]:
    """A firing `driftwatch_action="retrain"` alert: Prometheus' `for` already proved persistence,
    so only the gates apply (cooldown, active caps, budget, dry run) plus dedup on the trigger."""
    decision = Decision(model=model, at=now, source="alert", action="none", reason="", fingerprint=fp)
    if not cfg.enabled:
        return replace(decision, reason="disabled"), state
    if _already_launched(cfg, state, fp, launched):
        return replace(decision, reason="duplicate"), state
    return _fire(cfg, state, now, cap, replace(decision, action="launch", reason="alert", trigger=trigger))

"""The trigger policy: streaks with hysteresis, gates, dry run, and properties over random histories."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.config import RetrainBudget, RetrainConfig
from retrain.policy import (
    DRY_RUN_MEMORY,
    Capacity,
    Decision,
    ModelState,
    Trigger,
    WindowEvaluation,
    alert_fingerprint,
    decide_alert,
    decide_window,
)

LOCAL = {"command": ["true"]}
FREE = Capacity(active_model=0, active_total=0, max_total=10)


def cfg(**kw: object) -> RetrainConfig:
    base: dict[str, object] = {"consecutive_windows": 3, "min_records": 100, "enter_share": 0.5, "exit_share": 0.3,
                               "cooldown": 0, "max_active": 5, "budget": RetrainBudget(count=100, period=1000),
                               "local": LOCAL}
    base.update(kw)
    return RetrainConfig.model_validate(base)


def ev(i: int, share: float, n: int = 500, critical: tuple[str, ...] = ()) -> WindowEvaluation:
    return WindowEvaluation(window_start=100.0 * i, window_end=100.0 * i + 100, n_records=n, drift_share=share,
                            dataset_drifted=share >= 0.5, drifted_features=("a", "b") if share else (),
                            critical_drifted=critical, report_url=f"http://m/reports/wine?w={i}")


def feed(rc: RetrainConfig, shares: list[float | tuple[float, int]], *, state: ModelState | None = None,
         cap: Capacity = FREE, launched: set[str] | None = None, t0: float = 0.0) -> tuple[list[Decision], ModelState]:
    state = state or ModelState()
    launched = launched if launched is not None else set()
    out = []
    for i, item in enumerate(shares):
        share, n = item if isinstance(item, tuple) else (item, 500)
        d, state = decide_window("wine", rc, state, ev(int(t0 // 100) + i, share, n), t0 + 100.0 * i, cap, launched)
        if d.action == "launch":
            assert d.fingerprint
            launched.add(d.fingerprint)
        out.append(d)
    return out, state


def reasons(ds: list[Decision]) -> list[str]:
    return [d.reason for d in ds]


def test_launches_after_k_consecutive_drifted_windows_with_the_streak_in_the_trigger() -> None:
    ds, _ = feed(cfg(), [0.6, 0.7, 0.8])
    assert reasons(ds) == ["streak_building", "streak_building", "drift_streak"]
    t = ds[-1].trigger
    assert t is not None
    assert (t.window_start, t.window_end) == (0.0, 300.0)
    assert t.drift_share == 0.8
    assert t.drifted_features == ("a", "b")
    assert t.report_url == "http://m/reports/wine?w=2"


def test_hysteresis_in_band_windows_keep_the_streak_but_do_not_start_one() -> None:
    rc = cfg()
    assert reasons(feed(rc, [0.6, 0.4, 0.45])[0]) == ["streak_building", "streak_building", "drift_streak"]
    assert reasons(feed(rc, [0.4, 0.45, 0.49, 0.4])[0]) == ["no_drift"] * 4
    # Falling below exit_share ends the streak; it has to be earned again.
    assert reasons(feed(rc, [0.6, 0.6, 0.29, 0.6, 0.6, 0.6])[0]) == [
        "streak_building", "streak_building", "no_drift", "streak_building", "streak_building", "drift_streak"]


def test_a_critical_feature_alone_counts_and_holds_the_streak() -> None:
    rc = cfg(consecutive_windows=2)
    state = ModelState()
    d1, state = decide_window("wine", rc, state, ev(0, 0.05, critical=("flavanoids",)), 0, FREE, set())
    d2, state = decide_window("wine", rc, state, ev(1, 0.0, critical=("flavanoids",)), 1, FREE, set())
    assert (d1.reason, d2.reason) == ("streak_building", "drift_streak")
    assert d2.trigger is not None
    assert d2.trigger.drifted_features[0] == "flavanoids"


def test_thin_windows_neither_extend_nor_end_a_streak() -> None:
    ds, _ = feed(cfg(), [0.6, (0.0, 10), (0.9, 99), 0.6, 0.6])
    assert reasons(ds) == ["streak_building", "insufficient_records", "insufficient_records", "streak_building",
                           "drift_streak"]


def test_replayed_windows_are_ignored() -> None:
    rc = cfg(consecutive_windows=2)
    _, state = decide_window("wine", rc, ModelState(), ev(5, 0.9), 0, FREE, set())
    d2, state2 = decide_window("wine", rc, state, ev(5, 0.9), 1, FREE, set())
    d3, _ = decide_window("wine", rc, state, ev(4, 0.9), 1, FREE, set())
    assert (d2.reason, d3.reason) == ("stale_window", "stale_window")
    assert state2 == state


def counted(i: int, share: float, end: float, n: int = 100) -> WindowEvaluation:
    """The i-th count-grid window of `n` records, whose newest sender timestamp is `end`."""
    return WindowEvaluation(window_start=end - 60, window_end=end, n_records=n, drift_share=share,
                            dataset_drifted=share >= 0.5, drifted_features=("a",), critical_drifted=(),
                            point=("count", float(n * i)))


def decide_all(rc: RetrainConfig, windows: list[WindowEvaluation], state: ModelState | None = None,
               launched: set[str] | None = None) -> tuple[list[str], ModelState]:
    state, launched = state or ModelState(), launched if launched is not None else set()
    out = []
    for k, w in enumerate(windows):
        d, state = decide_window("wine", rc, state, w, 1_800_000_000.0 + 60 * k, FREE, launched)
        if d.action == "launch":
            assert d.fingerprint
            launched.add(d.fingerprint)
        out.append(d.reason)
    return out, state


def test_a_far_future_event_does_not_make_later_windows_stale() -> None:
    now = 1_800_000_000.0
    windows = [counted(1, 0.9, now + 1e12), *(counted(i, 0.9, now + 60 * i) for i in range(2, 6))]
    got, state = decide_all(cfg(consecutive_windows=3, min_records=50), windows)
    assert got == ["streak_building", "streak_building", "drift_streak", "streak_building", "streak_building"]
    assert state.last_count_point == 500


def test_an_out_of_order_replay_still_triggers_after_the_streak() -> None:
    # 100 current drifted events, then a spool replays 3x100 drifted events stamped an hour earlier.
    now = 1_800_000_000.0
    windows = [counted(1, 0.9, now), *(counted(i, 0.9, now - 3600 + i) for i in range(2, 5))]
    got, _ = decide_all(cfg(consecutive_windows=3, min_records=50), windows)
    assert got == ["streak_building", "streak_building", "drift_streak", "streak_building"]


def test_windows_with_the_same_timestamps_are_distinct_triggers() -> None:
    # A sender with a frozen clock: every window has the same range, each streak is a new trigger.
    windows = [counted(i, 0.9, 1_800_000_000.0) for i in range(1, 5)]
    got, _ = decide_all(cfg(consecutive_windows=2, min_records=50), windows)
    assert got == ["streak_building", "drift_streak", "streak_building", "drift_streak"]


def test_replayed_grid_points_are_ignored_per_grid() -> None:
    rc = cfg(consecutive_windows=2, min_records=50)
    _, state = decide_all(rc, [counted(3, 0.9, 5000.0)])
    timed = replace(counted(3, 0.9, 100.0), point=("time", 1_800_000_000.0))
    got, state = decide_all(rc, [counted(3, 0.9, 9e12), counted(2, 0.9, 9e12), timed, timed], state=state)
    assert got == ["stale_window", "stale_window", "drift_streak", "stale_window"]
    assert (state.last_count_point, state.last_time_point) == (300, 1_800_000_000.0)


def test_states_saved_before_grid_points_still_load_and_decide() -> None:
    old: dict[str, object] = {"in_drift": True, "segment_start": 1.0, "segment_end": 2.0, "segment_windows": 1,
           "last_window_end": 9e12, "last_trigger": None, "trigger_times": []}
    state = ModelState.from_json(old)
    assert state.segment_point is None
    assert state.last_count_point is None
    assert state.dry_launched == ()
    got, _ = decide_all(cfg(consecutive_windows=2, min_records=50), [counted(1, 0.9, 3.0)], state=state)
    assert got == ["drift_streak"]


def test_cooldown_skips_then_the_same_trigger_launches_once_it_passes() -> None:
    rc = cfg(consecutive_windows=2, cooldown=450)
    ds, state = feed(rc, [0.9] * 7)
    assert reasons(ds) == ["streak_building", "drift_streak", "streak_building", "cooldown", "cooldown", "cooldown",
                           "drift_streak"]
    launches = [d for d in ds if d.action == "launch"]
    skipped = [d for d in ds if d.reason == "cooldown"]
    assert [d.at for d in launches] == [100.0, 600.0]
    # The skipped windows and the eventual launch are one trigger (same streak segment).
    assert {d.fingerprint for d in skipped} == {launches[1].fingerprint}
    assert state.last_trigger == 600.0


def test_budget_counts_launches_in_a_sliding_period() -> None:
    rc = cfg(consecutive_windows=1, budget=RetrainBudget(count=2, period=350))
    ds, _ = feed(rc, [0.9] * 6)
    assert reasons(ds) == ["drift_streak", "drift_streak", "budget_exhausted", "budget_exhausted", "drift_streak",
                           "drift_streak"]


def test_active_caps_per_model_and_overall() -> None:
    rc = cfg(consecutive_windows=1, max_active=1)
    busy_model = Capacity(active_model=1, active_total=1, max_total=4)
    busy_cluster = Capacity(active_model=0, active_total=4, max_total=4)
    assert reasons(feed(rc, [0.9], cap=busy_model)[0]) == ["max_active"]
    assert reasons(feed(rc, [0.9], cap=busy_cluster)[0]) == ["max_active_total"]


def test_dry_run_decides_and_spends_cooldown_but_never_launches() -> None:
    rc = cfg(consecutive_windows=1, cooldown=250, dry_run=True)
    ds, state = feed(rc, [0.9, 0.9, 0.9, 0.9])
    assert [(d.action, d.reason) for d in ds] == [("skip", "dry_run"), ("skip", "cooldown"), ("skip", "cooldown"),
                                                  ("skip", "dry_run")]
    assert state.last_trigger == 300.0
    assert ds[0].trigger is not None


def test_disabled_config_decides_nothing() -> None:
    ds, state = feed(cfg(enabled=False), [0.9] * 5)
    assert set(reasons(ds)) == {"disabled"}
    assert state == ModelState()


def test_a_lost_state_never_relaunches_a_launched_trigger() -> None:
    rc = cfg(consecutive_windows=2)
    launched: set[str] = set()
    first, _ = feed(rc, [0.9, 0.9], launched=launched)
    again, _ = feed(rc, [0.9, 0.9], launched=launched)  # same windows, fresh state
    assert first[-1].action == "launch"
    assert again[-1].reason == "duplicate"


def test_alerts_pass_the_same_gates_and_dedupe_on_fingerprint_and_start() -> None:
    rc = cfg(cooldown=100)
    trig = Trigger("alert", 0, 10, None, (), None, "alert firing")
    fp = alert_fingerprint("wine", "abc", "1000.000000")
    assert fp != alert_fingerprint("wine", "abc", "1001.000000") != alert_fingerprint("churn", "abc", "1000.000000")
    d1, s1 = decide_alert("wine", rc, ModelState(), fp, trig, 1000, FREE, set())
    d2, _ = decide_alert("wine", rc, s1, fp, trig, 1010, FREE, {fp})
    other = alert_fingerprint("wine", "def", "1000.000000")
    d3, _ = decide_alert("wine", rc, s1, other, trig, 1050, FREE, {fp})
    d4, _ = decide_alert("wine", rc, s1, other, trig, 1100, Capacity(1, 1, 4), {fp})
    assert [(d.action, d.reason) for d in (d1, d2, d3, d4)] == [
        ("launch", "alert"), ("none", "duplicate"), ("skip", "cooldown"), ("launch", "alert")]


def test_state_round_trips_through_json() -> None:
    _, state = feed(cfg(consecutive_windows=2, budget=RetrainBudget(count=5, period=10_000)), [0.9, 0.9, 0.9])
    assert ModelState.from_json(state.to_json()) == state


def decide_judged(rc: RetrainConfig, judged: list[tuple[float, int | None]]) -> tuple[list[Decision], ModelState]:
    """Windows as (drift share, the reference id that judged them), 100 s apart."""
    state, out = ModelState(), []
    for i, (share, ref) in enumerate(judged):
        d, state = decide_window("wine", rc, state, replace(ev(i, share), reference_id=ref), 100.0 * i, FREE, set())
        out.append(d)
    return out, state


def test_a_new_reference_ends_the_streak_built_against_the_old_one() -> None:
    ds, _ = decide_judged(cfg(), [(0.9, None), (0.9, None), (0.9, 7), (0.9, 7)])
    assert reasons(ds) == ["streak_building"] * 4


def test_a_streak_against_the_new_reference_launches_on_its_own_windows() -> None:
    ds, _ = decide_judged(cfg(), [(0.9, None), (0.9, None), (0.9, 7), (0.9, 7), (0.9, 7)])
    assert ds[-1].trigger is not None and ds[-1].trigger.window_start == 200.0


def test_cooldown_carries_over_a_reference_change() -> None:
    ds, _ = decide_judged(cfg(consecutive_windows=1, cooldown=250), [(0.9, None), (0.9, 7), (0.9, 7), (0.9, 7)])
    assert reasons(ds) == ["drift_streak", "cooldown", "cooldown", "drift_streak"]


def test_the_reference_is_remembered_across_a_restart() -> None:
    _, state = decide_judged(cfg(), [(0.9, 7)])
    assert ModelState.from_json(state.to_json()).reference_id == 7


def decide_versions(rc: RetrainConfig, versions: list[str | None]) -> tuple[list[Decision], ModelState]:
    """Drifted windows (share 0.9) of these model versions, 100 s apart."""
    state, out = ModelState(), []
    for i, version in enumerate(versions):
        d, state = decide_window("wine", rc, state, replace(ev(i, 0.9), version=version), 100.0 * i, FREE, set())
        out.append(d)
    return out, state


def test_a_new_version_ends_the_streak_built_on_the_old_one() -> None:
    ds, _ = decide_versions(cfg(), ["1", "1", "2", "2"])
    assert reasons(ds) == ["streak_building"] * 4


def test_a_streak_of_the_new_version_launches_on_its_own_windows() -> None:
    ds, _ = decide_versions(cfg(), ["1", "1", "2", "2", "2"])
    assert ds[-1].trigger is not None and ds[-1].trigger.window_start == 200.0


def test_the_version_is_remembered_across_a_restart() -> None:
    _, state = decide_versions(cfg(), ["2"])
    assert ModelState.from_json(state.to_json()).version == "2"


# -- properties over random histories ------------------------------------------------------------------

MODELS = ("wine", "churn")


@dataclass
class Sim:
    """Two models sharing a cluster cap; jobs finish when the history says so."""

    rcs: dict[str, RetrainConfig]
    max_total: int
    states: dict[str, ModelState] = field(default_factory=dict)
    active: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in MODELS})
    launched: set[str] = field(default_factory=set)
    launches: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODELS})
    fingerprints: list[str] = field(default_factory=list)

    def cap(self, model: str) -> Capacity:
        return Capacity(len(self.active[model]), sum(map(len, self.active.values())), self.max_total)

    def apply(self, model: str, d: Decision, state: ModelState) -> None:
        self.states[model] = state
        if d.action == "launch":
            assert d.fingerprint
            self.launched.add(d.fingerprint)
            self.fingerprints.append(d.fingerprint)
            self.launches[model].append(d.at)
            self.active[model].append(d.fingerprint)


retrain_configs = st.builds(
    lambda k, exit_, enter, cooldown, max_active, count, period, dry: cfg(
        consecutive_windows=k, exit_share=min(exit_, enter), enter_share=enter, cooldown=cooldown,
        max_active=max_active, budget=RetrainBudget(count=count, period=period), dry_run=dry),
    st.integers(1, 3), st.floats(0, 1), st.floats(0, 1), st.sampled_from([0, 0, 50, 300, 1000]), st.integers(1, 3),
    st.integers(1, 6), st.sampled_from([1, 500, 5000]), st.booleans(),
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["eval", "eval", "eval", "alert", "finish"]),
        st.sampled_from(MODELS),
        st.one_of(st.just(0.0), st.floats(0, 400)),  # seconds since the previous step
        st.one_of(st.sampled_from([0.0, 0.3, 0.9, 1.0]), st.floats(0, 1)),  # drift share
        st.sampled_from([0, 150, 400]),  # records
        st.booleans(),  # a critical feature drifted
        st.integers(0, 3),  # which alert / which job
    ),
    max_size=120,
)


@settings(max_examples=250, deadline=None)
@given(rc_a=retrain_configs, rc_b=retrain_configs, max_total=st.integers(1, 4), history=steps)
def test_policy_invariants_hold_for_any_history(rc_a: RetrainConfig, rc_b: RetrainConfig, max_total: int,
                                                history: list[tuple[str, str, float, float, int, bool, int]]) -> None:
    sim = Sim(rcs={"wine": rc_a, "churn": rc_b}, max_total=max_total)
    now, window = 0.0, 0
    for kind, model, dt, share, n, critical, k in history:
        now += dt
        rc = sim.rcs[model]
        state = sim.states.get(model, ModelState())
        if kind == "finish":
            if sim.active[model]:
                sim.active[model].pop(k % len(sim.active[model]))
            continue
        if kind == "eval":
            window += 1
            e = WindowEvaluation(window * 10.0, window * 10.0 + 10, n, share, share > 0.5, (), ("x",) if critical else ())
            d, state = decide_window(model, rc, state, e, now, sim.cap(model), sim.launched)
        else:
            fp = alert_fingerprint(model, f"alert{k}", "0")
            d, state = decide_alert(model, rc, state, fp, Trigger("alert", 0, 1, None, (), None, "a"), now,
                                    sim.cap(model), sim.launched)
        sim.apply(model, d, state)

        # Never more than N active per model nor M overall.
        assert len(sim.active[model]) <= rc.max_active
        assert sum(map(len, sim.active.values())) <= max_total
    for model, times in sim.launches.items():
        rc = sim.rcs[model]
        if rc.dry_run:
            assert times == []
        # Never inside the cooldown.
        assert all(b - a >= rc.cooldown for a, b in itertools.pairwise(times))
        # Never more than the budget in any period.
        for t in times:
            assert sum(1 for u in times if t - rc.budget.period < u <= t) <= rc.budget.count
    # Never twice for the same trigger.
    assert len(sim.fingerprints) == len(set(sim.fingerprints))


def alert_decisions(rc: RetrainConfig, sends: int, every: float) -> tuple[list[tuple[str, str]], ModelState]:
    """The same firing alert re-sent every `every` seconds (Alertmanager's repeat_interval), with
    the state round-tripped through JSON each time as the controller persists it."""
    fp = alert_fingerprint("wine", "5b8f6a7c2d1e0f93", "1799999000.000000")
    trig = Trigger("alert", 0, 1, None, (), None, "alert firing")
    state, launched, out = ModelState(), set[str](), list[tuple[str, str]]()
    for i in range(sends):
        d, state = decide_alert("wine", rc, state, fp, trig, 1_800_000_000.0 + every * i, FREE, launched)
        if d.action == "launch":
            launched.add(fp)
        state = ModelState.from_json(state.to_json())
        out.append((d.action, d.reason))
    return out, state


def test_a_dry_run_decides_exactly_as_a_real_run_would_for_a_re_sent_alert() -> None:
    real_rc = cfg(cooldown=3600, budget=RetrainBudget(count=3, period=7 * 86400))
    real, real_state = alert_decisions(real_rc, 5, 4 * 3600)
    dry, dry_state = alert_decisions(real_rc.model_copy(update={"dry_run": True}), 5, 4 * 3600)
    assert real == [("launch", "alert")] + [("none", "duplicate")] * 4
    assert dry == [("skip", "dry_run")] + [("none", "duplicate")] * 4
    assert len(dry_state.trigger_times) == len(real_state.trigger_times) == 1


@settings(max_examples=100, deadline=None)
@given(history=steps, rc=retrain_configs)
def test_dry_run_decisions_equal_real_ones_with_dry_run_for_launch(
        history: list[tuple[str, str, float, float, int, bool, int]], rc: RetrainConfig) -> None:
    real, dry = rc.model_copy(update={"dry_run": False}), rc.model_copy(update={"dry_run": True})
    states, launched = {"real": ModelState(), "dry": ModelState()}, set[str]()
    now, window = 0.0, 0
    for kind, _, dt, share, n, critical, k in history:
        now += dt
        if kind == "finish":
            continue
        window += 1
        e = WindowEvaluation(window * 10.0, window * 10.0 + 10, n, share, share > 0.5, (), ("x",) if critical else (),
                             point=("count", float(window)))
        fp = alert_fingerprint("wine", f"alert{k}", "0")
        trig = Trigger("alert", 0, 1, None, (), None, "a")
        got = {}
        for name, c in (("real", real), ("dry", dry)):
            if kind == "eval":
                d, states[name] = decide_window("wine", c, states[name], e, now, FREE, launched if name == "real" else set())
            else:
                d, states[name] = decide_alert("wine", c, states[name], fp, trig, now, FREE, launched if name == "real" else set())
            got[name] = (d.action, d.reason, d.fingerprint)
        if got["real"][0] == "launch":
            assert got["real"][2]
            launched.add(got["real"][2])
            assert got["dry"] == ("skip", "dry_run", got["real"][2])
        else:
            assert got["dry"] == got["real"]


def test_a_dry_run_remembers_a_bounded_number_of_triggers() -> None:
    rc = cfg(dry_run=True, budget=RetrainBudget(count=10_000, period=1))
    trig = Trigger("alert", 0, 1, None, (), None, "a")
    state = ModelState()
    for i in range(DRY_RUN_MEMORY + 5):
        _, state = decide_alert("wine", rc, state, alert_fingerprint("wine", str(i), "0"), trig, 10.0 * i, FREE, set())
    assert len(state.dry_launched) == DRY_RUN_MEMORY
    assert state.dry_launched[-1] == alert_fingerprint("wine", str(DRY_RUN_MEMORY + 4), "0")
    d, _ = decide_alert("wine", rc, state, alert_fingerprint("wine", "0", "0"), trig, 1e6, FREE, set())
    assert d.reason == "dry_run"  # the oldest was forgotten

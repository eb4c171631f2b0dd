"""The retraining controller: policy + history + launchers, driven by evaluations and alerts.

It listens to the monitor's runtime (`on_verdict`, a `monitor.runtime.VerdictListener`): each
`WindowVerdict` becomes the policy's `WindowEvaluation` (retrain.adapter) and is decided like any
other evaluation.

`on_evaluation` / `on_alert` decide under a lock and persist the decision (with the pending run,
for a launch) before returning; the launch itself happens on a small thread pool, so ingestion
never waits for the Kubernetes API or a subprocess. Outcomes come back from the launchers'
followers and are written once. Every counter in `snapshot()` is read from the store, so the
numbers survive restarts and never disagree with the history reports show.

`start()` never waits for the Kubernetes API (the monitor must serve whatever the API does):
reconciliation runs on a thread per namespace, and Kubernetes launches decided before their
namespace's first list are held until it, so a run pending from before a restart is relaunched
once, not raced by a new one. The caps count the store's runs meanwhile (pending ones included,
vanished ones until they are closed), so they can only err on the blocking side, except for Jobs
the store never knew (another replica's), which count from that first list on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Container, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.core.config import PIPELINE_LAUNCHERS, Config, ModelConfig, RetrainConfig
from monitor.core.names import report_path
from monitor.runtime import PerformanceVerdict, WindowVerdict
from retrain import policy
from retrain.adapter import window_evaluation
from retrain.history import OUTCOMES, History
from retrain.launcher import LaunchError, PipelineLauncher
from retrain.local import LocalLauncher, Started
from retrain.policy import Capacity, Decision, ModelState, Trigger, WindowEvaluation
from retrain.run import Run, job_name, rfc3339

if TYPE_CHECKING:  # the Kubernetes client (~35 MiB) loads only when a model launches there
    from retrain.kubernetes import JobStatus, KubernetesLauncher

log = logging.getLogger("driftwatch.retrain")



@dataclass(frozen=True)
class RetrainSnapshot:
    active: int
    launched: int
    """Runs ever launched (each once, whatever became of it)."""
    finished: Mapping[str, int]
    """Runs ever ended, by outcome (every one of `history.OUTCOMES`): each launched run ends at most once,
    so the sum never exceeds `launched`. Skipped triggers are decisions, not runs."""
    last_trigger: float | None
    decisions: Mapping[str, int] = field(default_factory=dict)
    """Cumulative decisions by reason (see retrain.policy for the reasons)."""


class _Launched(Container[str]):
    """Fingerprints that already have a run, looked up in the store on demand."""

    def __init__(self, history: History) -> None:
        self._history = history

    def __contains__(self, fp: object) -> bool:
        return isinstance(fp, str) and self._history.has_fingerprint(fp)


class RetrainController:
    def __init__(
        self,
        config: Config,
        store: History | str | Path,
        *,
        clock: Callable[[], float] = time.time,
        kubernetes: KubernetesLauncher | None = None,
        local: LocalLauncher | None = None,
        pipelines: Mapping[str, PipelineLauncher] | None = None,
        pipeline_poll: float | None = None,
        launch_workers: int = 2,
    ) -> None:
        """`pipelines` maps launcher kinds (argo, kubeflow, airflow, webhook) to launchers; a kind
        missing is built on first use. `pipeline_poll` overrides every pipeline section's
        `poll_interval` (tests)."""
        self._config = config
        self._owns_history = not isinstance(store, History)
        self.history = store if isinstance(store, History) else History(store)
        self._clock = clock
        self._kube = kubernetes
        self._local = local or LocalLauncher(clock=clock)
        self._pipelines: dict[str, PipelineLauncher] = dict(pipelines or {})
        self._pipeline_poll = pipeline_poll
        self._polled: dict[str, float] = {}
        """Run name → monotonic time of its next status poll."""
        self._poller: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=launch_workers, thread_name_prefix="retrain-launch")
        self._lock = threading.Lock()
        self._kube_lock = threading.Lock()
        self._held: dict[str, list[Run]] = {}
        """Namespaces not reconciled yet, with the launches waiting for it."""
        self._stopping = threading.Event()
        self._starters: list[threading.Thread] = []
        self._states: dict[str, ModelState] = self.history.states()
        self._last_eval: dict[str, WindowEvaluation] = {}
        self._launched = _Launched(self.history)

    # -- inputs -----------------------------------------------------------------------------------

    def retrain_config(self, model: str) -> RetrainConfig | None:
        return self._config.retrain_named(model)

    def knows(self, model: str) -> bool:
        return self._config.has_model(model)

    def model_key(self, name: str, namespace: str | None) -> str | None:
        """The key of the configured model an alert's `model` and `namespace` labels name, if any."""
        try:
            return self._config.resolve(name, namespace).key
        except KeyError:
            return None

    def on_verdict(self, verdict: WindowVerdict) -> None:
        """The runtime's verdict on a window (`VerdictListener`): decided as its `WindowEvaluation`,
        unless a newer version of the model serves (docs/versions.md): one version drives retraining,
        so a canary beside its stable version, or an old version's last windows, never trigger twice."""
        if verdict.superseded:
            log.info("retrain_verdict_superseded model=%s version=%s", verdict.model, verdict.version)
            return
        self.on_evaluation(verdict.model, window_evaluation(verdict, self._config))

    def on_evaluation(self, model: str, evaluation: WindowEvaluation) -> Decision:
        """Feed one evaluated window; returns at once (a launch proceeds in the background)."""
        with self._lock:
            self._last_eval[model] = evaluation

        def decide(rc: RetrainConfig, state: ModelState, now: float, cap: Capacity) -> tuple[Decision, ModelState]:
            return policy.decide_window(model, rc, state, evaluation, now, cap, self._launched)

        return self._decide(model, "window", decide)

    def on_performance(self, verdict: PerformanceVerdict) -> Decision:
        """Realized performance of the model's newest judged window (`PerformanceListener`); a
        superseded version's is answered `superseded` and not decided on (as `on_verdict`)."""
        model = verdict.model
        if verdict.superseded:
            return Decision(model=model, at=time.time(), source="performance", action="none", reason="superseded")
        fp = policy.performance_fingerprint(model, verdict.first_degraded_point, verdict.window_start)
        base = self._config.server.public_url
        result = verdict.result

        def decide(rc: RetrainConfig, state: ModelState, now: float, cap: Capacity) -> tuple[Decision, ModelState]:
            trigger = Trigger(
                source="performance",
                window_start=verdict.window_start,
                window_end=verdict.window_end,
                drift_share=None,
                drifted_features=(),
                report_url=base.rstrip("/") + report_path(model) if base else None,
                reason=f"realized {result.metric} degraded in {verdict.realized_streak} consecutive labelled windows",
            )
            return policy.decide_performance(model, rc, state, fp, trigger, verdict.realized_streak, now, cap, self._launched)

        return self._decide(model, "performance", decide)

    def on_alert(self, model: str, alert_fingerprint: str, starts_at: float, *, alertname: str = "",
                 report_url: str | None = None) -> Decision:
        """A firing `driftwatch_action="retrain"` alert for `model` (deduplicated on fingerprint + start)."""
        fp = policy.alert_fingerprint(model, alert_fingerprint, f"{starts_at:.6f}")

        def decide(rc: RetrainConfig, state: ModelState, now: float, cap: Capacity) -> tuple[Decision, ModelState]:
            last = self._last_eval.get(model)
            trigger = Trigger(
                source="alert",
                window_start=last.window_start if last else starts_at,
                window_end=last.window_end if last else now,
                drift_share=last.drift_share if last else None,
                drifted_features=tuple(dict.fromkeys((*last.critical_drifted, *last.drifted_features))) if last else (),
                report_url=report_url or (last.report_url if last else None),
                reason=f"alert {alertname or 'unnamed'} firing since {rfc3339(starts_at)}",
            )
            return policy.decide_alert(model, rc, state, fp, trigger, now, cap, self._launched)

        return self._decide(model, "alert", decide)

    def _decide(self, model: str, source: policy.Source,
                fn: Callable[[RetrainConfig, ModelState, float, Capacity], tuple[Decision, ModelState]]) -> Decision:
        now = self._clock()
        if not self.knows(model):
            return Decision(model=model, at=now, source=source, action="none", reason="unknown_model")
        mc = self._config.model(model)
        rc = self._config.retrain_for(mc)
        if rc is None:
            return Decision(model=model, at=now, source=source, action="none", reason="disabled")
        with self._lock:
            counts = self.history.active_counts()
            cap = Capacity(counts.get(model, 0), sum(counts.values()), self._config.defaults.max_active_jobs_total)
            decision, state = fn(rc, self._states.get(model, ModelState()), now, cap)
            run = self._run(mc, decision) if decision.action == "launch" else None
            ns = _namespace(rc) if run else None
            self.history.record(decision, state, run, rc.launcher if run else None, ns)
            self._states[model] = state
        level = logging.INFO if decision.triggered else logging.DEBUG
        log.log(level, "retrain_decision model=%s source=%s action=%s reason=%s fingerprint=%s job=%s",
                model, source, decision.action, decision.reason, decision.fingerprint, run.name if run else None)
        if run is not None:
            self._submit(run, ns if rc.launcher == "kubernetes" else None)
        return decision

    def _submit(self, run: Run, namespace: str | None) -> None:
        """Launch on the pool, or after `namespace`'s first reconciliation if it has not happened yet."""
        with self._lock:
            held = self._held.get(namespace) if namespace is not None else None
            if held is not None:
                held.append(run)
                return
        self._pool.submit(self._launch, run)

    @staticmethod
    def _run(mc: ModelConfig, decision: Decision) -> Run:
        assert decision.fingerprint is not None and decision.trigger is not None
        return Run(name=job_name(mc.name, decision.fingerprint), model=mc.key, fingerprint=decision.fingerprint,
                   trigger=decision.trigger, reference=mc.reference.source)

    # -- launching and outcomes -------------------------------------------------------------------

    def _launch(self, run: Run) -> None:
        rc = self.retrain_config(run.model)
        try:
            if rc is None:
                raise LaunchError(f"model {run.model!r} no longer has a retrain config", transient=False)
            if rc.launcher == "kubernetes":
                assert rc.kubernetes is not None
                result = self._kubernetes().launch(run, rc.kubernetes)
                self.history.mark_running(run.name, self._clock(),
                                          detail="already existed" if result == "exists" else None)
                log.info("retrain_launched model=%s job=%s namespace=%s result=%s", run.model, run.name,
                         rc.kubernetes.namespace, result)
            elif rc.launcher in PIPELINE_LAUNCHERS:
                self._launch_pipeline(run, rc)
            else:
                assert rc.local is not None
                local = rc.local.model_copy(update={"log_dir": self._config.local_log_dir(rc.local)})
                self._local.launch(run, local, self._on_outcome, on_started=self._on_local_started(run.name))
        except LaunchError as exc:
            if exc.transient and self._stopping.is_set():
                # Cut short by shutdown, not refused: the run stays pending and the next start creates
                # it (the Job name is deterministic, so a create that did land comes back as "exists").
                log.warning("retrain_launch_interrupted job=%s error=%r", run.name, str(exc))
                return
            self._on_outcome(run.name, "failed", None, f"launch failed: {exc}")
        except (OSError, ValueError) as exc:
            self._on_outcome(run.name, "failed", None, f"launch failed: {exc}")
        except Exception as exc:  # an unexpected API answer must not leave the run pending forever
            log.exception("retrain_launch_error job=%s", run.name)
            self._on_outcome(run.name, "failed", None, f"launch failed: {type(exc).__name__}: {exc}")

    def _launch_pipeline(self, run: Run, rc: RetrainConfig) -> None:
        cfg = rc.pipeline()
        launcher = self._pipeline(rc.launcher)
        result = launcher.launch(run, cfg)
        self.history.mark_running(run.name, self._clock(), detail="already existed" if result == "exists" else None)
        log.info("retrain_launched model=%s run=%s launcher=%s result=%s", run.model, run.name, rc.launcher, result)
        if not launcher.follows(cfg):
            self._on_outcome(run.name, "succeeded", None, "delivered; completion not followed (no status_url)")

    def _pipeline(self, kind: str) -> PipelineLauncher:
        with self._kube_lock:
            if kind not in self._pipelines:
                self._pipelines[kind] = _default_pipeline(kind)
            return self._pipelines[kind]

    def _poll_pipelines(self) -> None:
        """Follow every running pipeline run to its outcome, each at its section's `poll_interval`."""
        while not self._stopping.wait(min(1.0, self._pipeline_poll or 1.0)):
            try:
                self.poll_pipelines_once()
            except Exception:  # the store closed under us at shutdown, or a bug: keep following
                if not self._stopping.is_set():
                    log.exception("retrain_poll_error")

    def poll_pipelines_once(self, *, force: bool = False) -> None:
        """One round: ask each due running pipeline run for its status and record outcomes."""
        now = time.monotonic()
        active = self.history.jobs(active_only=True)
        for name in set(self._polled) - {r.name for r in active}:  # closed elsewhere (a failed launch)
            self._polled.pop(name, None)
        for rec in active:
            if rec.launcher not in PIPELINE_LAUNCHERS or rec.state != "running" or self._stopping.is_set():
                continue
            if not force and self._polled.get(rec.name, 0.0) > now:
                continue
            rc = self.retrain_config(rec.model)
            cfg = rc.pipeline() if rc is not None and rc.launcher == rec.launcher else None
            if cfg is None:
                self._on_outcome(rec.name, "failed", None, f"not followed: model {rec.model!r} no longer "
                                 f"launches with {rec.launcher} (its run may still finish there)")
                continue
            self._polled[rec.name] = now + (self._pipeline_poll or cfg.poll_interval)
            try:
                launcher = self._pipeline(rec.launcher)
                if not launcher.follows(cfg):
                    self._on_outcome(rec.name, "succeeded", None, "delivered; completion not followed (no status_url)")
                    continue
                status = launcher.status(rec.run, cfg)
            except LaunchError as exc:
                log.warning("retrain_status_failed run=%s launcher=%s error=%r", rec.name, rec.launcher, str(exc))
                continue
            if not status.found:
                self._on_outcome(rec.name, "failed", None, f"{rec.launcher} run not found (deleted before finishing)")
            elif status.outcome is not None:
                self._on_outcome(rec.name, status.outcome, None, status.detail)
            if status.outcome is not None or not status.found:
                self._polled.pop(rec.name, None)

    def _on_local_started(self, name: str) -> Callable[[Started], None]:
        def started(s: Started) -> None:
            self.history.mark_running(name, self._clock(), pid=s.pid, pid_created=s.pid_created, log_path=s.log_path)

        return started

    def _on_outcome(self, name: str, outcome: str, exit_code: int | None, detail: str | None) -> None:
        if self.history.finish(name, outcome, self._clock(), exit_code=exit_code, detail=detail):
            level = logging.INFO if outcome == "succeeded" else logging.WARNING
            log.log(level, "retrain_finished job=%s outcome=%s exit_code=%s detail=%r", name, outcome,
                    exit_code, detail)

    def _on_kube_status(self, status: JobStatus) -> None:
        rec = self.history.job(status.name)
        if rec is None:
            self._adopt(status)
            return
        if status.outcome is not None:
            self._on_outcome(status.name, status.outcome, None, status.detail)
        elif rec.state == "pending":
            self.history.mark_running(status.name, self._clock())

    def _adopt(self, status: JobStatus) -> None:
        """A running Job of ours this store does not know (another replica, a lost store): count it."""
        rc = self.retrain_config(status.model or "")
        if status.outcome is not None or not status.model or not status.fingerprint or rc is None:
            return
        now = self._clock()
        trigger = Trigger(source="window", window_start=now, window_end=now, drift_share=None,
                          drifted_features=(), report_url=None, reason="adopted: found running in the cluster")
        run = Run(name=status.name, model=status.model, fingerprint=status.fingerprint, trigger=trigger, reference="")
        if self.history.adopt(run, "kubernetes", status.namespace, now):
            log.info("retrain_adopted model=%s job=%s namespace=%s", status.model, status.name, status.namespace)

    def _kubernetes(self) -> KubernetesLauncher:
        with self._kube_lock:  # not the decision lock: loading a kubeconfig may run an exec plugin
            if self._kube is None:
                from retrain.kubernetes import KubernetesLauncher

                try:
                    self._kube = KubernetesLauncher()
                except Exception as exc:  # no in-cluster service account and no usable kubeconfig
                    raise LaunchError(f"no Kubernetes API configuration: {exc}", transient=False) from exc
            return self._kube

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Resume local runs; reconcile and follow Kubernetes namespaces in the background.

        Followed: every namespace of an enabled Kubernetes-launcher model, and every namespace that
        holds an active Kubernetes run in the store whatever the config says now (a model disabled,
        removed or switched to local while its Job ran must still see that Job finish).
        """
        active = self.history.jobs(active_only=True)
        namespaces = sorted({
            rc.kubernetes.namespace
            for m in self._config.models
            if (rc := self._config.retrain_for(m)) and rc.enabled and rc.launcher == "kubernetes" and rc.kubernetes
        } | {r.namespace for r in active if r.launcher == "kubernetes" and r.namespace})
        with self._lock:
            self._held.update({ns: [] for ns in namespaces})
        for ns in namespaces:
            pending = [r.run for r in active if r.launcher == "kubernetes" and r.namespace == ns and r.state == "pending"]
            t = threading.Thread(target=self._start_namespace, args=(ns, pending),
                                 name=f"retrain-k8s-start-{ns}", daemon=True)
            self._starters.append(t)
            t.start()
        for rec in active:
            if rec.launcher in PIPELINE_LAUNCHERS and rec.state == "pending":
                self._pool.submit(self._launch, rec.run)  # decided, maybe created: the launch finds out which
        self._poller = threading.Thread(target=self._poll_pipelines, name="retrain-pipeline-poll", daemon=True)
        self._poller.start()
        for rec in active:
            if rec.launcher != "local":
                continue
            rc = self.retrain_config(rec.model)
            if rec.state == "pending" or rc is None or rc.local is None:
                self._pool.submit(self._launch, rec.run)  # decided, never started: start it (or fail it) now
                continue
            self._local.resume(rec.name, rec.pid, rec.pid_created, rec.log_path, rec.started_at or rec.created_at,
                               rc.local, self._on_outcome)

    def _start_namespace(self, ns: str, pending: list[Run]) -> None:
        """First list of `ns`: adopt, relaunch runs decided but never created, close vanished ones; then follow."""
        relaunch = pending  # without a list (API down, no configuration), each relaunch records its own failure
        try:
            kube = self._kubernetes()
            try:
                items, rv = kube.list_jobs(ns)
            except Exception as exc:  # the follower keeps relisting until the API answers
                if not self._stopping.is_set():
                    log.warning("retrain_list_failed namespace=%s error=%r", ns, str(exc))
                rv = None
            else:
                for item in items:
                    self._on_kube_status(item)
                found = {i.name for i in items}
                relaunch = [r for r in pending if r.name not in found]
                self._close_vanished(ns, found, "Job not found at start-up (deleted while the monitor was down)")
            if not self._stopping.is_set():
                kube.follow(ns, self._on_kube_status, rv, on_relist=lambda jobs: self._close_vanished(
                    ns, {j.name for j in jobs}, "Job not found on relist (deleted before finishing, e.g. "
                    "kubectl delete or TTL clean-up)"))
        except LaunchError as exc:  # no API configuration
            log.error("retrain_kubernetes_unavailable namespace=%s error=%r", ns, str(exc))
        except Exception:  # the store closed under us at shutdown, or a bug: never kill start-up silently
            if not self._stopping.is_set():
                log.exception("retrain_reconcile_error namespace=%s", ns)
        finally:
            with self._lock:
                held = self._held.pop(ns, [])
            if not self._stopping.is_set():
                with contextlib.suppress(RuntimeError):  # the pool shut down as we got here: they stay pending
                    for run in [*relaunch, *held]:
                        self._pool.submit(self._launch, run)

    def _close_vanished(self, ns: str, found: set[str], detail: str) -> None:
        """Runs recorded running in `ns` but absent from a list, confirmed gone by a GET, are failed.

        The GET matters: a Job created while the list was in flight is missing from it, yet exists.
        Pending runs are left to their launch, which records its own outcome. A GET that fails
        leaves the run for the next list.
        """
        kube = self._kubernetes()
        for rec in self.history.jobs(active_only=True):
            if rec.launcher != "kubernetes" or rec.namespace != ns or rec.state != "running" or rec.name in found:
                continue
            try:
                gone = not kube.exists(rec.name, ns)
            except Exception as exc:
                if not self._stopping.is_set():
                    log.warning("retrain_reconcile_failed namespace=%s job=%s error=%r", ns, rec.name, str(exc))
                continue
            if gone:
                self._on_outcome(rec.name, "failed", None, detail)

    def stop(self) -> None:
        self._stopping.set()
        if self._kube is not None:
            self._kube.stop()
        for t in self._starters:
            t.join(1.0)  # one stuck in an API call is a daemon; it touches nothing once stopping is set
        if self._poller is not None:
            self._poller.join(5.0)
        self._pool.shutdown(wait=True, cancel_futures=True)  # before the launchers: a launch may be mid-way
        self._local.stop()
        for launcher in self._pipelines.values():
            close = getattr(launcher, "close", None)
            if close is not None:
                close()
        if self._owns_history:
            self.history.close()

    # -- outputs ------------------------------------------------------------------------------------

    def snapshot(self) -> Mapping[str, RetrainSnapshot]:
        """Per model with a retrain config: active runs, cumulative outcomes and decisions."""
        jobs = self.history.job_counts()
        decisions = self.history.decision_counts()
        last = self.history.last_triggers()
        out: dict[str, RetrainSnapshot] = {}
        for m in self._config.models:
            if self._config.retrain_for(m) is None:
                continue
            jc = jobs.get(m.key, {})
            out[m.key] = RetrainSnapshot(
                active=jc.get("pending", 0) + jc.get("running", 0),
                launched=sum(jc.values()),
                finished={o: jc.get(o, 0) for o in OUTCOMES},
                last_trigger=last.get(m.key),
                decisions=dict(decisions.get(m.key, {})),
            )
        return out


def _namespace(rc: RetrainConfig) -> str | None:
    """The Kubernetes namespace a run is launched into (Jobs and Argo Workflows), for the history."""
    if rc.launcher == "kubernetes" and rc.kubernetes:
        return rc.kubernetes.namespace
    if rc.launcher == "argo" and rc.argo:
        return rc.argo.namespace
    return None


def _default_pipeline(kind: str) -> PipelineLauncher:
    """The launcher for `kind` with its defaults (Argo's needs a Kubernetes API configuration)."""
    if kind == "argo":
        from retrain.argo import ArgoLauncher
        try:
            return ArgoLauncher()
        except Exception as exc:  # no in-cluster service account and no usable kubeconfig
            raise LaunchError(f"no Kubernetes API configuration: {exc}", transient=False) from exc
    if kind == "kubeflow":
        from retrain.kubeflow import KubeflowLauncher
        return KubeflowLauncher()
    if kind == "airflow":
        from retrain.airflow import AirflowLauncher
        return AirflowLauncher()
    from retrain.signed_webhook import WebhookLauncher
    return WebhookLauncher()

"""Builds reports off the event loop, once per window.

- Reads from the source and rendering run on a small thread pool of their own (never the loop's
  default executor, which ingest uses).
- Evidently runs in a separate *process* (spawned once, lazily): it is CPU-heavy pandas code that
  would otherwise hold the GIL and slow ingestion; the process also keeps its ~3 s import out of
  the monitor.
- Results are cached by (kind, model, window) in a byte-bounded LRU; concurrent requests for the
  same report share one build.
- A report page never waits for Evidently: it is our own summary and plots (a fraction of a second),
  with Evidently's page and the column-by-column agreement in frames of their own URLs. Serving a
  page starts Evidently's run for that window in the background, so the frames usually find it ready
  or under way.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.reports.build import EvidentlySection, render_agreement, render_report
from monitor.reports.cache import ByteLRU
from monitor.reports.evidently_report import EvidentlyOutcome, plans_from_result, run_evidently
from monitor.reports.performance_view import PerformanceView, performance_view
from monitor.reports.source import Evaluation, ReportSource
from monitor.reports.view import IndexRow, ReportView, index_row, report_view, with_distributions, with_examples
from monitor.runtime import split_track

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NotFound", "ReportWorker"]

log = logging.getLogger("driftwatch.reports")
T = TypeVar("T")


class NotFound(LookupError):
    """An unknown model or window; the message is meant for the user."""


class ReportWorker:
    def __init__(
        self,
        source: ReportSource,
        *,
        base: str = "/reports",
        history: int = 30,
        cache_bytes: int = 64 * 1024**2,
        evidently: bool = True,
    ) -> None:
        self.source = source
        self.base = base
        self.history = history
        self.evidently_enabled = evidently
        self._threads = ThreadPoolExecutor(2, thread_name_prefix="driftwatch-report")
        self._process: ProcessPoolExecutor | None = None
        self._cache: ByteLRU[Any] = ByteLRU(cache_bytes)
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Future[Any]] = set()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)
            self._process = None

    async def _in(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _cached(self, key: Hashable, make: Callable[[], Awaitable[T]], size: Callable[[T], int | None]) -> T:
        """`make()` once per key at a time; results are kept unless `size` says None (not cacheable)."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._inflight[key] = task

            def done(t: asyncio.Future[Any]) -> None:
                self._inflight.pop(key, None)
                if not t.cancelled() and t.exception() is None and (n := size(t.result())) is not None:
                    self._cache.put(key, t.result(), n)

            task.add_done_callback(done)
        return await asyncio.shield(task)

    # -- lookups --------------------------------------------------------------------------------------

    def _check_model(self, model: str) -> None:
        """`model` is a configured model's key, or one of its version tracks' (docs/versions.md)."""
        models = list(self.source.models())
        if split_track(model)[0] not in models:
            raise NotFound(f"no model named {model!r}; models: {', '.join(models) or 'none configured'}")

    def _evaluation(self, model: str, window_id: int | None) -> Evaluation:
        self._check_model(model)
        if window_id is None:
            latest = self.source.evaluations(model, 1)
            if not latest:
                raise NotFound(f"model {model!r} has no evaluated window yet")
            return latest[-1]
        ev = self.source.evaluation(model, window_id)
        if ev is None:
            raise NotFound(f"model {model!r} has no evaluated window {window_id} (it may be older than the store's retention)")
        return ev

    def _view(self, model: str, window_id: int | None) -> ReportView:
        ev = self._evaluation(model, window_id)
        return report_view(ev, self.source.evaluations(model, self.history, before=ev.window_id))

    async def index(self) -> list[IndexRow]:
        def rows() -> list[IndexRow]:
            out = []
            for m in self.source.models():
                latest = self.source.evaluations(m, 1)
                out.append(index_row(m, latest[-1] if latest else None))
            return out

        return await self._in(self._threads, rows)

    def _performance(self, model: str, window_id: int) -> PerformanceView | None:
        return performance_view(self.source.performance(model, self.history, before=window_id), window_id)

    async def view(self, model: str, window_id: int | None = None) -> ReportView:
        """The report's data; raises NotFound. `None` means the latest window.

        The drift part of a window never changes and is cached; its performance is read on every call
        (a few stored rows), since labels keep arriving and windows are judged again."""
        if window_id is None:
            window_id = (await self._in(self._threads, self._evaluation, model, None)).window_id

        async def make() -> ReportView:
            return await self._in(self._threads, self._view, model, window_id)

        drift = await self._cached(("view", model, window_id), make, lambda v: 16_384 + 512 * len(v.series) * len(v.history))
        performance = await self._in(self._threads, self._performance, model, window_id)
        return drift if performance is None else replace(drift, performance=performance)

    async def json_view(self, model: str, window_id: int | None = None) -> ReportView:
        """`view` with the example texts of a model with text columns (read from the window's records)."""
        view = await self.view(model, window_id)
        counts = self.source.text_examples(model)
        if not any(counts.values()):
            return view
        w = view.window.window_id
        try:
            reference, current = await self.frames(model, w)
        except Exception as exc:  # retention, or a store error: the examples say so
            log.warning("report_frames_unavailable model=%s window=%d error=%s", model, w, type(exc).__name__)
            reference = current = None
        return await self._in(self._threads, with_examples, view, reference, current, counts)

    # -- Evidently ------------------------------------------------------------------------------------

    def _pool(self) -> ProcessPoolExecutor:
        if self._process is None:
            self._process = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._process

    async def frames(self, model: str, window_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The reference and the window's records (re-parsed from the store), shared by the page and Evidently."""

        async def make() -> tuple[pd.DataFrame, pd.DataFrame]:
            def read() -> tuple[pd.DataFrame, pd.DataFrame]:
                ev = self.source.evaluation(model, window_id)  # judged against which reference: its frame is the picture's
                return self.source.reference_frame(model, ev.reference_id if ev else None), self.source.window_frame(model, window_id)

            return await self._in(self._threads, read)

        # The reference is the source's own cached frame; only the window's copy costs memory here,
        # its texts included (a text model's raw prompts and completions are kept for the examples).
        return await self._cached(("frames", model, window_id), make, lambda f: 1024 + max(64 * f[1].size, int(f[1].memory_usage(deep=True).sum())))

    async def evidently(self, view: ReportView) -> EvidentlyOutcome | str:
        """Evidently's outcome for the window, or why it could not run (a message for the page)."""

        async def make() -> EvidentlyOutcome | str:
            m, w = view.model, view.window.window_id
            try:
                reference, current = await self.frames(m, w)
            except Exception as exc:
                log.warning("report_frames_unavailable model=%s window=%d error=%s", m, w, type(exc).__name__)
                return f"the window's records are not available ({type(exc).__name__}: {exc})"
            plans = plans_from_result(view.raw_result)
            try:
                return await self._in(self._pool(), run_evidently, reference, current, plans, view.result.dataset.threshold)
            except BrokenProcessPool:
                self._process = None  # the next request starts a fresh process
                log.warning("evidently_process_died model=%s window=%d", m, w)
                return "Evidently's worker process died; reload to retry"
            except Exception as exc:
                log.warning("evidently_failed model=%s window=%d error=%s", m, w, type(exc).__name__)
                return f"{type(exc).__name__}: {exc}"

        def size(o: EvidentlyOutcome | str) -> int | None:
            return None if isinstance(o, str) else len(o.html) + 256 * len(o.scores)  # failures are retried

        return await self._cached(("evidently", view.model, view.window.window_id), make, size)

    async def page(self, model: str, window_id: int | None = None) -> str:
        """The HTML report of a window (latest if None); Evidently's parts are framed, not awaited."""
        view = await self.view(model, window_id)
        w = view.window.window_id
        failed = False

        async def make() -> str:
            nonlocal failed
            try:
                reference, current = await self.frames(model, w)
            except Exception as exc:  # retention, or a store error: plots from the stored quantiles
                log.warning("report_frames_unavailable model=%s window=%d error=%s", model, w, type(exc).__name__)
                reference = current = None
                failed = True
            section = None
            if self.evidently_enabled:
                url = f"{self.base}/{model}/{w}"
                section = EvidentlySection(scores={}, url=f"{url}/evidently", agreement_url=f"{url}/agreement")
            counts = self.source.text_examples(model)

            def render() -> str:
                shown = with_examples(with_distributions(view, reference, current), reference, current, counts)
                return render_report(shown, self.base, section)

            return await self._in(self._threads, render)

        version = None if view.performance is None else view.performance.version  # new labels: a new page
        html = await self._cached(("page", model, w, version), make, lambda html: None if failed else len(html))
        if self.evidently_enabled and not failed:
            self._start_evidently(view)
        return html

    def _start_evidently(self, view: ReportView) -> None:
        """Run Evidently for the window in the background (once: a cached or running build is reused)."""
        if self._cache.get(("evidently", view.model, view.window.window_id)) is not None:
            return
        task = asyncio.ensure_future(self.evidently(view))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def agreement(self, model: str, window_id: int) -> str:
        """The framed page comparing each column's score with Evidently's; waits for Evidently."""
        view = await self.view(model, window_id)
        outcome = await self.evidently(view)
        section = EvidentlySection(scores={}, error=outcome) if isinstance(outcome, str) else EvidentlySection(scores=outcome.scores)
        return await self._in(self._threads, render_agreement, view, section)

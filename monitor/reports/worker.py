"""Builds reports off the event loop, once per window.

- Reads from the source and rendering run on a small thread pool of their own (never the loop's
  default executor, which ingest uses).
- Evidently runs in a separate *process* (spawned once, lazily): it is CPU-heavy pandas code that
  would otherwise hold the GIL and slow ingestion; the process also keeps its ~3 s import out of
  the monitor.
- Results are cached by (kind, model, window) in a byte-bounded LRU; concurrent requests for the
  same report share one build.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from monitor.reports.build import EvidentlySection, render_report
from monitor.reports.cache import ByteLRU
from monitor.reports.evidently_report import EvidentlyOutcome, plans_from_result, run_evidently
from monitor.reports.source import Evaluation, ReportSource
from monitor.reports.view import IndexRow, ReportView, index_row, report_view

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
        models = list(self.source.models())
        if model not in models:
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

    async def view(self, model: str, window_id: int | None = None) -> ReportView:
        """The report's data; raises NotFound. `None` means the latest window."""
        if window_id is None:
            window_id = (await self._in(self._threads, self._evaluation, model, None)).window_id

        async def make() -> ReportView:
            return await self._in(self._threads, self._view, model, window_id)

        return await self._cached(("view", model, window_id), make, lambda v: 16_384 + 512 * len(v.series) * len(v.history))

    # -- Evidently ------------------------------------------------------------------------------------

    def _pool(self) -> ProcessPoolExecutor:
        if self._process is None:
            self._process = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._process

    async def evidently(self, view: ReportView) -> EvidentlyOutcome | str:
        """Evidently's outcome for the window, or why it could not run (a message for the page)."""

        async def make() -> EvidentlyOutcome | str:
            m, w = view.model, view.window.window_id
            try:
                reference, current = await self._in(self._threads, lambda: (self.source.reference_frame(m), self.source.window_frame(m, w)))
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
        """The full HTML report of a window (latest if None), Evidently's cross-check included."""
        view = await self.view(model, window_id)

        failed = False

        async def make() -> str:
            nonlocal failed
            section = None
            if self.evidently_enabled:
                outcome = await self.evidently(view)
                url = f"{self.base}/{view.model}/{view.window.window_id}/evidently"
                failed = isinstance(outcome, str)
                section = (
                    EvidentlySection(scores={}, error=outcome)
                    if isinstance(outcome, str)
                    else EvidentlySection(scores=outcome.scores, url=url)
                )
            return await self._in(self._threads, render_report, view, self.base, section)

        return await self._cached(("page", model, view.window.window_id), make, lambda html: None if failed else len(html))

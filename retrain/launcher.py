"""What every retraining launcher shares: its errors, its retry loop, and the pipeline protocol.

The Kubernetes Job and local launchers keep their own ways of following runs (a namespace watch,
a child process). The pipeline launchers (Argo Workflows, Kubeflow Pipelines, Airflow, a signed
webhook) are all the same shape, `PipelineLauncher`: `launch` creates the run under a name derived
from the trigger fingerprint and answers "created" or "exists" (an earlier attempt's run for this
trigger: our retry after a lost answer, a restarted monitor, another replica); `status` asks where
a launched run is. The controller polls `status` for every active pipeline run, so completion is
followed across restarts from the store alone (no state lives in the launcher).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import httpx

from monitor.core import secrets
from monitor.core.config import HttpAuth
from retrain.run import LaunchError, Run

log = logging.getLogger("driftwatch.retrain.launcher")

T = TypeVar("T")
Created = Literal["created", "exists"]


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base: float = 0.5
    cap: float = 10.0
    timeout: tuple[float, float] = (5.0, 15.0)
    """(connect, read) seconds for each API call."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: half the capped exponential step, plus a random half."""
        step = min(self.cap, self.base * 2**attempt)
        return step / 2 + rng.uniform(0, step / 2)


DEFAULT_RETRY = Retry()


@dataclass(frozen=True)
class RunStatus:
    """Where a pipeline run is: `outcome` is None while it is pending or running."""

    found: bool
    outcome: str | None = None
    """succeeded / failed / deadline_exceeded (the history's outcomes)."""
    detail: str | None = None


NOT_FOUND = RunStatus(found=False)


class PipelineLauncher(Protocol):
    kind: str

    def launch(self, run: Run, cfg: Any) -> Created:
        """Create the run (idempotent on the trigger); LaunchError when it cannot be made."""
        ...

    def status(self, run: Run, cfg: Any) -> RunStatus:
        """The run's current state; LaunchError(transient=True) when the API cannot say now."""
        ...

    def follows(self, cfg: Any) -> bool:
        """Whether `status` can follow runs under `cfg` (a webhook without a status URL cannot)."""
        ...


def parameters(run: Run) -> dict[str, str]:
    """The DRIFTWATCH_* context every pipeline gets as its parameters (the Job's environment)."""
    return run.env()


# -- retrying calls ------------------------------------------------------------------------------------


def retrying(what: str, fn: Callable[[], T], retry: Retry, *, transient: Callable[[BaseException], bool],
             describe: Callable[[BaseException], str], rng: random.Random, sleep: Callable[[float], None],
             stopping: Callable[[], bool] = lambda: False) -> T:
    """Run `fn`, retrying transient failures with capped jittered backoff; others propagate."""
    for attempt in range(retry.attempts):
        try:
            return fn()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt + 1 >= retry.attempts or stopping():
                raise LaunchError(f"{what}: gave up after {attempt + 1} attempt(s): {describe(exc)}",
                                  transient=True) from exc
            pause = retry.delay(attempt, rng)
            log.warning("launcher_retry call=%s attempt=%d error=%r pause_s=%.2f", what, attempt + 1,
                        describe(exc), pause)
            sleep(pause)
    raise AssertionError("unreachable")


class HttpStatusError(Exception):
    """A non-2xx answer, kept whole so callers can tell 404/409 from the rest."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.status = response.status_code

    def body(self) -> Any:
        try:
            return self.response.json()
        except ValueError:
            return self.response.text[:500]


def http_transient(exc: BaseException) -> bool:
    if isinstance(exc, HttpStatusError):
        return exc.status in (408, 429) or exc.status >= 500
    return isinstance(exc, httpx.TransportError)


def http_describe(exc: BaseException) -> str:
    if isinstance(exc, HttpStatusError):
        return f"HTTP {exc.status}: {_brief(exc.body())}"
    return f"{type(exc).__name__}: {exc}"


def _brief(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "title"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:300]


class HttpApi:
    """One REST endpoint family over httpx, with driftwatch's retry loop and a per-call timeout."""

    def __init__(self, *, retry: Retry = DEFAULT_RETRY, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None) -> None:
        self.retry = retry
        self._rng = rng or random.Random()
        self._sleep = sleep
        connect, read = retry.timeout
        self._client = httpx.Client(timeout=httpx.Timeout(read, connect=connect), transport=transport)

    def close(self) -> None:
        self._client.close()

    def request(self, what: str, method: str, url: str, *,
                headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
                json_body: Any = None, content: bytes | None = None, params: Mapping[str, str] | None = None,
                retry: bool = True, on_attempt: Callable[[], None] | None = None) -> httpx.Response:
        """A 2xx response, or HttpStatusError / LaunchError(transient) after the retries.

        `headers` may be a function, called for every attempt (a fresh signature timestamp, a
        rotated token); `on_attempt` runs before every attempt (e.g. a lookup).
        """
        def once() -> httpx.Response:
            if on_attempt is not None:
                on_attempt()
            hdrs = headers() if callable(headers) else headers
            resp = self._client.request(method, url, headers=hdrs, json=json_body, content=content,
                                        params=params)
            if resp.status_code >= 300:
                raise HttpStatusError(resp)
            return resp

        if not retry:
            return once()
        return retrying(what, once, self.retry, transient=http_transient, describe=http_describe,
                        rng=self._rng, sleep=self._sleep)


# -- credentials -------------------------------------------------------------------------------------


def read_secret(*, env: str | None = None, file: Path | None = None, what: str) -> str | None:
    """`monitor.core.secrets.read_secret`, its failure a `LaunchError` that is not retried."""
    try:
        return secrets.read_secret(env=env, file=file, what=what)
    except secrets.SecretError as exc:
        raise LaunchError(str(exc), transient=False) from None


def auth_headers(auth: HttpAuth, what: str) -> dict[str, str]:
    """`monitor.core.secrets.auth_headers`, its failure a `LaunchError` that is not retried."""
    try:
        return secrets.auth_headers(auth, what)
    except secrets.SecretError as exc:
        raise LaunchError(str(exc), transient=False) from None

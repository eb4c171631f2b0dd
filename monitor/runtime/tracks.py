"""Model versions judged apart: the key of a version's track, and the book of each model's tracks.

A *track* is one model version's stream of events: its own sliding window, evaluations, results
and verdicts, so a canary and the stable version are never mixed in one window. Its rows sit in the
store's existing `model` column under `track_key(model, version)` (`name@version`, or
`namespace/name@version`): neither a model name nor a namespace may hold an '@', so keys never
collide and the store needs no new column. Traffic that names no version stays on the model's own
key, so an unversioned model is exactly what it was.

Bounded (docs/versions.md): at most `versions.max_tracked` versioned tracks per model; when another
version appears, the least recently seen one is retired (its state dropped, its series gone, its
stored rows left to retention). That bounds the `version` label's values.

*Superseded*: among a model's tracks that saw events within `versions.idle_after`, the newest
serving one is the one first seen last; every older track is superseded (a stable version beside
its canary, or a version still trickling after a rollout). Retraining acts on the newest only.

`reference_engine` is the one place that decides which reference judges a version: its own when one
is known (docs/references.md), else the model's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.core.config import Config

if TYPE_CHECKING:
    import threading

    from monitor.runtime.state import ModelState

__all__ = ["SEPARATOR", "Engine", "TrackBook", "TrackInfo", "VersionReference", "reference_engine", "split_track", "track_key"]

log = logging.getLogger("driftwatch.monitor")

SEPARATOR = "@"


def track_key(model: str, version: str | None) -> str:
    """The store key of `model`'s (its `ModelConfig.key`) traffic of `version` (a checked version)."""
    return model if version is None else f"{model}{SEPARATOR}{version}"


def split_track(key: str) -> tuple[str, str | None]:
    """(model key, version or None) of a store key."""
    model, sep, version = key.partition(SEPARATOR)
    return (model, version) if sep else (key, None)


@dataclass
class TrackInfo:
    """What is known of one track: when it was first and last seen (the monitor's clock), its events."""

    key: str
    version: str | None
    first_seen: float
    last_seen: float
    events: int = 0

    def to_dict(self, superseded: bool) -> dict[str, Any]:
        return {"version": self.version, "first_seen": self.first_seen, "last_seen": self.last_seen,
                "events": self.events, "superseded": superseded}


class TrackBook:
    """Each model's tracks: admitted, seen, retired, restored (guard it with the runtime's lock)."""

    def __init__(self, config: Config) -> None:
        self._limits = {m.key: m.versions for m in config.models}
        self._info: dict[str, TrackInfo] = {}

    def admit(self, model: str, version: str, now: float) -> str | None:
        """Make room for `model`'s `version` if it has no track yet; the key of the track retired for
        it (the least recently seen of the model's versions), if one had to go."""
        key = track_key(model, version)
        if key in self._info:
            return None
        versioned = [i for i in self._info.values() if i.version is not None and split_track(i.key)[0] == model]
        retired = None
        if len(versioned) >= self._limits[model].max_tracked:
            oldest = min(versioned, key=lambda i: (i.last_seen, i.first_seen))
            del self._info[oldest.key]
            retired = oldest.key
            log.info("version_track_retired model=%s version=%s for=%s", model, oldest.version, version)
        self._info[key] = TrackInfo(key, version, now, now)
        return retired

    def seen(self, key: str, events: int, now: float) -> None:
        """`events` more events of the track received at `now`."""
        info = self._info.get(key)
        if info is None:
            info = self._info[key] = TrackInfo(key, split_track(key)[1], now, now)
        info.last_seen = max(info.last_seen, now)
        info.events += events

    def restore(self, key: str, first_seen: float, last_seen: float, events: int) -> None:
        """A track as the store remembers it (at start-up)."""
        self._info[key] = TrackInfo(key, split_track(key)[1], first_seen, last_seen, events)

    def tracks(self, model: str) -> list[TrackInfo]:
        """The model's tracks, the unversioned one first once it saw traffic, then by first seen."""
        mine = [i for i in self._info.values() if split_track(i.key)[0] == model]
        return sorted(mine, key=lambda i: (i.version is not None, i.first_seen, i.key))

    def default(self, model: str) -> str:
        """The track a request that names no version is about: the model's own while its traffic names
        no version (or none came yet), else the version first seen last among those with events (the
        newest serving one, or the last that served), so a model whose every event names its version
        (a KServe revision, a sidecar reading `x-model-version`) still answers without `?version=`."""
        mine = self.tracks(model)
        if any(i.version is None and i.events for i in mine):
            return model
        versioned = [i for i in mine if i.version is not None and i.events]
        return max(versioned, key=lambda i: (i.first_seen, i.key)).key if versioned else model

    def has(self, key: str) -> bool:
        return key in self._info

    def superseded(self, key: str, now: float) -> bool:
        """Whether a newer track of the same model is serving (has seen events within `idle_after`)."""
        info = self._info.get(key)
        if info is None:
            return False
        model = split_track(key)[0]
        idle = self._limits[model].idle_after
        serving = [i for i in self.tracks(model) if i.events and i.last_seen >= now - idle]
        if not serving:
            return False
        newest = max(serving, key=lambda i: i.first_seen)
        return newest.key != key and info.first_seen < newest.first_seen


@dataclass(frozen=True)
class Engine:
    """What judges a track: its reference's drift profile, calibrated detector (or None), performance
    profile (or None), and the stored reference's id (None: the model's configured reference)."""

    profile: Any
    detector: Any
    performance_profile: Any
    reference_id: int | None


VersionReference = Callable[[str, str], Engine | None]
"""A version's own stored reference, profiled (`ReferenceSwitch.version_engine`): None when it has none."""


def reference_engine(base: ModelState, version: str | None, lock: threading.Lock,
                     own: VersionReference | None = None) -> Engine:
    """The engine that judges `version` of `base`'s model: the version's own reference when one is known
    (set with `PUT .../reference?version=`, or logged with that MLflow model version: `own`), else the
    model's current one with a fresh detector, so each version accumulates its own CUSUM evidence.
    Call it from the evaluator thread (it loads the drift engine and may profile a reference)."""
    if version is not None and own is not None:
        engine = own(base.config.key, version)
        if engine is not None:
            return engine
    base.unpack(lock)
    detector = base.detector.fresh() if base.detector is not None else None
    return Engine(base.profile, detector, base.performance_profile, base.reference_id)

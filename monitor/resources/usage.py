"""What the resource sources report, and how they fail.

The collector thread builds a new frozen `ResourceSnapshot` per round; the exporter only reads the
latest one, so a scrape never waits on the Kubernetes API or NVML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["CollectionError", "GpuUsage", "PodUsage", "ResourceSnapshot"]


@dataclass(frozen=True)
class PodUsage:
    pod: str
    cpu_cores: Fraction | None
    """None until a rate can be computed (a local process needs two samples)."""
    memory_working_set_bytes: Fraction


@dataclass(frozen=True)
class GpuUsage:
    pod: str
    gpu: str
    """The GPU's index on its node, as DCGM exporter's `gpu` label."""
    utilization_ratio: float | None
    """None (not exported) when NVML cannot read it, as on a MIG-enabled GPU."""
    memory_used_bytes: int | None


@dataclass(frozen=True)
class ResourceSnapshot:
    pods: Mapping[str, tuple[PodUsage, ...]] = field(default_factory=dict)
    """By model key (`ModelConfig.key`)."""
    gpus: Mapping[str, tuple[GpuUsage, ...]] = field(default_factory=dict)
    errors: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Cumulative failed collections by (source, reason)."""


class CollectionError(Exception):
    """A failed collection, with a bounded `reason` usable as a metric label.

    `permanent` failures (no cluster config, no NVML) are counted once and the source is then
    left alone instead of failing again every round.
    """

    def __init__(self, source: str, reason: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason
        self.permanent = permanent

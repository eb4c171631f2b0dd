"""Durations and sizes as people write them in the config (`15m`, `10MiB`), and back.

Prometheus-style duration units, because the same strings end up in generated alert rules.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MAX_TIMESTAMP", "format_duration", "parse_duration", "parse_size"]

MAX_TIMESTAMP = 253402300799.0
"""9999-12-31T23:59:59Z, the last instant a date can show: beyond it a stamp is a unit error (ms, µs)."""

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}

def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"15m"`, `"1h"`, `"7d"` or `"2w"` (Prometheus-style units)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 1h, 7d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}: expected a number of seconds or e.g. 30s, 15m, 1h, 7d")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be finite and >= 0, got {value!r}")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from `1048576`, `"10MiB"`, `"500MB"` or `"2Gi"`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE_RE.match(value)):
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])
    else:
        raise ValueError(f"invalid size {value!r}: expected bytes or e.g. 512KiB, 10MiB, 1GiB")
    if size < 0:
        raise ValueError(f"size must be >= 0, got {value!r}")
    return size


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration string for `seconds` (used in generated rules)."""
    for unit, factor in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{round(seconds * 1000)}ms"

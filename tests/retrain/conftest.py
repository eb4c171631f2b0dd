"""Fixtures shared by the retraining tests: `rig`, one pipeline launcher wired to its test server."""

from pipeline_rigs import rig

__all__ = ["rig"]

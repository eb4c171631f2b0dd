"""The capture sidecar: a reverse proxy in the model's pod that ships request/response pairs.

Deliberately light: no evidently, pandas or drift engine here (fast start, small memory).
"""

from monitor.sidecar.settings import SettingsError, SidecarSettings, build_settings

__all__ = ["SettingsError", "SidecarSettings", "build_settings"]

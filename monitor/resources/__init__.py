"""Resource usage of model pods (CPU, memory, GPU) shown beside drift.

`ResourceCollector` runs the sources in a background thread; the exporter reads its snapshots.
"""

from monitor.resources.collector import ResourceCollector
from monitor.resources.usage import CollectionError, GpuUsage, PodUsage, ResourceSnapshot

__all__ = ["CollectionError", "GpuUsage", "PodUsage", "ResourceCollector", "ResourceSnapshot"]

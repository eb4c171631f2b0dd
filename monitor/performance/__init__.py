"""Model performance: realized metrics from delayed labels, CBPE estimates before they arrive, and
degradation thresholds that hold a stated false-alarm rate (docs/performance.md).

Pure layer: numpy/scipy/pandas and `monitor.core` only, no I/O. The runtime builds one
`PerformanceProfile` per model from its labelled reference and calls `evaluate` per window.
"""


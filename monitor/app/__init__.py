"""The application layer: where the parts are wired together (HTTP API, `driftwatch serve`, the
command line, the demo, the chart's generated files, `driftwatch inject`). Nothing imports it."""

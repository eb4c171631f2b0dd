"""The Prometheus exporter of the monitor (`/metrics`) and the metric family names it serves.

The names are defined here, beside the code that exports them; dashboards and alert rules import
them, so a renamed family breaks their generation instead of leaving an empty panel."""

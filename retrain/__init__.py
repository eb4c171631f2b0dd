"""Retraining: a pure trigger policy (`policy`), its SQLite history (`history`), the Job manifest
(`manifest`), the Kubernetes and local launchers, the controller gluing them, and the Alertmanager
webhook router. See docs/retraining.md."""

"""driftwatch: drift monitoring for ML models on Kubernetes."""

__version__ = "0.1.0"

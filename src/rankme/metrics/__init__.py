"""Pure functions of spectra and states (RankMe's variants, stable rank, NESum, α-ReQ, LiDAR, cluster
learnability) and THE metric registry (:data:`rankme.metrics.registry.METRICS`)."""

from rankme.metrics.registry import METRICS, Metric, Spectra, check_metrics, compute_metrics, metric_names

__all__ = ["METRICS", "Metric", "Spectra", "check_metrics", "compute_metrics", "metric_names"]

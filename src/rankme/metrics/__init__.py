"""Pure functions of spectra and states (RankMe's variants, stable rank, NESum, α-ReQ, LiDAR, cluster
learnability) and THE metric registry (:data:`rankme.metrics.registry.METRICS`)."""

from rankme.metrics.registry import METRICS, Metric, check_metrics, compute_metrics, metric_names
from rankme.metrics.states import KeptRows, MetricStates, Spectra

__all__ = ["METRICS", "KeptRows", "Metric", "MetricStates", "Spectra", "check_metrics", "compute_metrics",
           "metric_names"]

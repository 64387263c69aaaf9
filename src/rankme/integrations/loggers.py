"""Pictures where people look: each tap's singular-value spectrum in TensorBoard and Weights & Biases.

The spectrum is logged as a histogram of log10(σ_k / σ_1) (one value per singular value; a collapsed embedding
piles up far below 0) and, when matplotlib is installed, as a figure of σ_k/σ_1 against k. The Lightning and
Hugging Face callbacks call :func:`log_spectra` for every TensorBoard / W&B logger they find; plain-PyTorch users
call it with their own writer or run after :meth:`rankme.monitor.RankMeMonitor.compute`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rankme.core.optional import MissingExtraError, has_module
from rankme.core.spectrum_types import Spectrum
from rankme.metrics.registry import Spectra
from rankme.reporting.figures import draw_spectra, plt

__all__ = ["histogram_values", "log_spectra"]


def histogram_values(spectrum: Spectrum | Spectra | np.ndarray) -> np.ndarray:
    """log10(σ_k / σ_1) of the singular values the spectrum resolves: what the histogram shows. Values at or below
    the spectrum's rounding floor (``Spectrum.rel_floor``: an exactly zero σ read through a Gram matrix) are left
    out, since they are noise, not a tail.

    Examples:
        >>> histogram_values(np.array([10.0, 1.0, 0.0])).tolist()
        [0.0, -1.0]
    """
    if isinstance(spectrum, Spectra):
        spectrum = spectrum(center=False)
    floor = spectrum.rel_floor if isinstance(spectrum, Spectrum) else 0.0
    sv = np.asarray(spectrum.singular_values if isinstance(spectrum, Spectrum) else spectrum, dtype=np.float64)
    if not sv.size or sv.max() <= 0:
        return sv[:0]
    sv = sv[sv > floor * sv.max()]
    sv = sv[sv > 0]
    out: np.ndarray = np.log10(sv / sv.max())
    return out


def _figure(tap: str, sv: np.ndarray) -> Any:
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(4.5, 3.2))
    draw_spectra(ax, [(tap, sv.tolist())])
    ax.set_title(f"spectrum of {tap}", fontsize=9)
    fig.tight_layout()
    return fig


def log_spectra(target: Any, spectra: Mapping[str, Spectrum | Spectra | np.ndarray], step: int,
                prefix: str = "spectrum") -> bool:
    """Log each tap's spectrum to ``target``: a TensorBoard ``SummaryWriter`` (anything with ``add_histogram``)
    or a W&B run (anything with ``log`` whose module is wandb). Returns False, doing nothing, for anything else.

    Args:
        target: the writer or run (for Lightning: ``logger.experiment``).
        spectra: tap name → its spectrum (``RankMeMonitor.spectra`` after ``compute()``).
        step: the training step.
        prefix: tag prefix: tags are ``<prefix>/<tap>`` (histogram) and ``<prefix>_plot/<tap>`` (figure).
    """
    spec = {tap: (s(center=False) if isinstance(s, Spectra) else s) for tap, s in spectra.items()}
    raw = {tap: (s.singular_values if isinstance(s, Spectrum) else np.asarray(s)) for tap, s in spec.items()}
    figures = has_module("matplotlib")
    if hasattr(target, "add_histogram"):
        for tap, sv in raw.items():
            values = histogram_values(spec[tap])
            if values.size:
                target.add_histogram(f"{prefix}/{tap}", values, step, bins="auto")
            if figures:
                target.add_figure(f"{prefix}_plot/{tap}", _figure(tap, sv), step, close=True)
        target.flush()
        return True
    if type(target).__module__.startswith("wandb") and hasattr(target, "log"):
        import wandb

        payload: dict[str, Any] = {}
        for tap, sv in raw.items():
            values = histogram_values(spec[tap])
            if values.size:
                payload[f"{prefix}/{tap}"] = wandb.Histogram(values.tolist())
            if figures:
                try:
                    fig = _figure(tap, sv)
                    payload[f"{prefix}_plot/{tap}"] = wandb.Image(fig)
                    plt().close(fig)
                except MissingExtraError:  # pragma: no cover - has_module said yes
                    pass
        payload["trainer/global_step"] = step
        target.log(payload)
        return True
    return False

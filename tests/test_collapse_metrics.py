"""Two cheap collapse signals as registry metrics, against their peers' own code written out below.

- ``l2_std``: lightly's ``std_of_l2_normalized`` (github.com/lightly-ai/lightly, ``lightly/utils/debug.py``, at
  commit 0e0f3263f05df27baf3f128f54dab5f44a08f428; the body is copied verbatim below).
- ``components_90``: open-metric-learning's ``PCA._fit`` and ``PCA.calc_principal_axes_number``
  (github.com/OML-Team/open-metric-learning, ``oml/utils/misc_torch.py``, at commit
  01f58054d632d98ddd78b19f3afc9b98ec97c616; the lines that count components are copied below), which mirror
  scikit-learn's ``PCA(n_components=fraction)`` (checked too, when scikit-learn is installed).
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

import rankme
from rankme import (
    EmbeddingError,
    SpectrumAccumulator,
    components_for_variance,
    compute_metrics,
    std_of_l2_normalized,
)
from rankme.metrics.registry import METRICS, metric_names


# ---- lightly/utils/debug.py at 0e0f326 ----------------------------------------------------------------------
@torch.no_grad()
def lightly_std_of_l2_normalized(z: torch.Tensor):
    if len(z.shape) != 2:
        raise ValueError(
            f'Input tensor must have two dimensions but has {len(z.shape)}!'
        )

    _, d = z.shape  # noqa: RUF059  (verbatim)

    z_norm = torch.nn.functional.normalize(z, dim=1)
    return torch.std(z_norm, dim=0).mean()


# ---- oml/utils/misc_torch.py at 01f5805: PCA._fit (the lines that give the ratio) and calc_principal_axes_number
def oml_principal_axes_number(embeddings: torch.Tensor, pcf_variance):
    n_samples = embeddings.shape[0]
    mean = embeddings.mean(dim=0).unsqueeze(0)
    embeddings = embeddings - mean
    full_matrices = embeddings.shape[0] < embeddings.shape[1]
    _, singular_values, _ = torch.linalg.svd(embeddings, full_matrices=full_matrices)
    explained_variance = singular_values ** 2 / (n_samples - 1)
    explained_variance_ratio = explained_variance / explained_variance.sum()
    ratio_cumsum = torch.cumsum(explained_variance_ratio, dim=0)
    n_components = torch.searchsorted(ratio_cumsum, torch.tensor(pcf_variance, dtype=ratio_cumsum.dtype),
                                      side="right") + 1
    return n_components
# ---- end of the peers' code ---------------------------------------------------------------------------------


def _matrices():
    rng = np.random.default_rng(0)
    iso = rng.standard_normal((400, 32))
    power = rng.standard_normal((300, 64)) * np.arange(1, 65) ** -1.0 + 2.0
    low = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 48)) + 0.05 * rng.standard_normal((200, 48))
    wide = rng.standard_normal((20, 80)) * np.linspace(3, 0.1, 80)
    collapsed = np.tile(rng.standard_normal(16), (50, 1)) * rng.uniform(0.5, 2.0, (50, 1))  # one direction
    return {"isotropic": iso, "power-law": power, "low-rank": low, "N<K": wide, "collapsed": collapsed}


@pytest.mark.parametrize("name", list(_matrices()))
def test_l2_std_equals_lightlys_code(name):
    z = _matrices()[name]
    theirs = float(lightly_std_of_l2_normalized(torch.from_numpy(z)))
    assert std_of_l2_normalized(z) == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert compute_metrics(z, ["l2_std"])["l2_std"] == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert compute_metrics(torch.from_numpy(z).float(), ["l2_std"])["l2_std"] == pytest.approx(theirs, rel=1e-6,
                                                                                              abs=1e-7)


def test_l2_std_reads_collapse_and_spread():
    m = _matrices()
    assert std_of_l2_normalized(m["collapsed"]) < 1e-12
    assert std_of_l2_normalized(m["isotropic"]) * np.sqrt(32) == pytest.approx(1.0, abs=0.03)
    assert std_of_l2_normalized(np.vstack([m["isotropic"], np.zeros((1, 32))])) > 0  # a zero row stays zero
    with pytest.raises(EmbeddingError, match="at least 2 rows"):
        std_of_l2_normalized(np.ones((1, 4)))
    with pytest.raises(EmbeddingError, match="non-finite"):
        std_of_l2_normalized(np.array([[1.0, np.nan], [1.0, 2.0]]))


@pytest.mark.parametrize("fraction", [0.5, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("name", ["isotropic", "power-law", "low-rank", "N<K"])
def test_components_for_variance_equals_omls_count(name, fraction):
    z = _matrices()[name]
    theirs = int(oml_principal_axes_number(torch.from_numpy(z), (fraction,))[0])
    lam = np.linalg.svd(z - z.mean(axis=0), compute_uv=False) ** 2
    assert components_for_variance(lam, fraction) == theirs
    acc = SpectrumAccumulator()
    acc.update(z)  # the streamed centred spectrum gives the same count
    assert components_for_variance(acc.spectrum(center=True).eigenvalues, fraction) == theirs
    if fraction == 0.9:
        assert compute_metrics(z, ["components_90"])["components_90"] == theirs


def test_components_for_variance_equals_scikit_learn():
    decomposition = pytest.importorskip("sklearn.decomposition")
    for name, z in _matrices().items():
        if name == "collapsed":
            continue
        want = decomposition.PCA(n_components=0.9, svd_solver="full").fit(z).n_components_
        assert compute_metrics(z, ["components_90"])["components_90"] == want, name


def test_components_for_variance_edges():
    assert components_for_variance([1.0, 0.0, 0.0], 0.9) == 1  # collapsed: one component
    assert components_for_variance([1.0] * 10, 0.9) == 10  # 90 % of 10 equal ones is 9, "more than" asks 10
    assert components_for_variance([2.0, 1.0, 1.0], 0.5) == 2  # exactly 50 % is not more than 50 %
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            components_for_variance([1.0, 1.0], bad)


def test_both_are_registry_diagnostics_that_change_no_default_column():
    for name in ("l2_std", "components_90"):
        m = METRICS[name]
        assert (m.selector, m.default, m.secondary, m.direction) == (False, False, False, "max")
    assert METRICS["l2_std"].needs == "rows" and METRICS["components_90"].needs == "centered"
    assert metric_names(default=True) == ("rankme", "stable_rank", "nesum", "participation_ratio")
    assert "l2_std" not in metric_names(selector=True) and "components_90" not in metric_names(selector=True)
    assert rankme.compute_metrics(np.eye(3), ["rankme"]) == {"rankme": pytest.approx(3.0, rel=1e-5)}


def test_rankme_score_metric_computes_both(tmp_path):
    from rankme.cli import main

    z = _matrices()["power-law"]
    np.save(tmp_path / "z.npy", z)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["score", str(tmp_path / "z.npy"), "--metric", "l2_std", "--metric", "components_90", "--json"])
    assert code in (0, None)
    row = json.loads(out.getvalue())[0]
    assert row["metrics"]["l2_std"] == pytest.approx(float(lightly_std_of_l2_normalized(torch.from_numpy(z))),
                                                     rel=1e-9)
    assert row["metrics"]["components_90"] == int(oml_principal_axes_number(torch.from_numpy(z), (0.9,))[0])

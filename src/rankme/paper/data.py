"""Real, offline datasets with fixed splits: sklearn's digits and MNIST-1D (``mnist1d.make_dataset``).

Each loader returns a :class:`Dataset` of float32 tensors: ``train`` (unlabeled for SSL), ``test`` (held out), and an
out-of-distribution pair ``ood_train`` / ``ood_test`` used only by the label oracle's OOD probe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Dataset", "augment_1d", "load_digits_data", "load_mnist1d_data"]


@dataclass
class Dataset:
    """Tensors of one benchmark: inputs ``x_*`` (N, C, L...) and integer labels ``y_*``; ``name`` and ``ood`` say
    what the data and the OOD target are."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_ood_train: torch.Tensor
    y_ood_train: torch.Tensor
    x_ood_test: torch.Tensor
    y_ood_test: torch.Tensor
    ood: str


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float,
           seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    perm = np.random.default_rng(seed).permutation(len(x))
    cut = round(len(x) * (1 - test_fraction))
    tr, te = perm[:cut], perm[cut:]
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return t(x[tr]).float(), t(y[tr]).long(), t(x[te]).float(), t(y[te]).long()


def load_digits_data(seed: int = 0) -> Dataset:
    """sklearn's 1 797 8×8 digits, 1 300 / 497 split; OOD: the same images shifted by one pixel, inverted in
    intensity and with Gaussian noise (σ = 0.15), split the same way.

    Examples:
        >>> d = load_digits_data()
        >>> tuple(d.x_train.shape), tuple(d.x_test.shape)
        ((1300, 1, 8, 8), (497, 1, 8, 8))
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    rng = np.random.default_rng(seed + 1000)
    ood = 1.0 - np.roll(x, 1, axis=3) + 0.15 * rng.standard_normal(x.shape).astype(np.float32)
    a = _split(x, y, 497 / 1797, seed)
    b = _split(ood, y, 497 / 1797, seed)
    return Dataset("digits", *a, *b, ood="digits shifted 1 px, intensity-inverted, + N(0, 0.15²) noise")


def _mnist1d(num_samples: int, seed: int, harder: bool) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = num_samples, seed, 1.0
    if harder:  # a shifted generation: more noise, more shear, wider scale range
        args.iid_noise_scale, args.corr_noise_scale, args.shear_scale, args.scale_coeff = 0.1, 0.5, 1.2, 0.6
    state, pystate = np.random.get_state(), random.getstate()  # make_dataset reseeds the global RNGs
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
        random.setstate(pystate)
    return d["x"].astype(np.float32)[:, None, :], d["y"].astype(np.int64)


def load_mnist1d_data(num_samples: int = 12_000, seed: int = 0) -> Dataset:
    """MNIST-1D generated offline (length 40, standardised by the generator), 80/20 split; OOD: a harder
    generation (seed + 1, iid noise 0.1, correlated noise 0.5, shear 1.2, scale 0.6) of 4 000 samples.

    Examples:
        >>> d = load_mnist1d_data(num_samples=500)
        >>> tuple(d.x_train.shape), tuple(d.x_test.shape)
        ((400, 1, 40), (100, 1, 40))
    """
    x, y = _mnist1d(num_samples, 42 + seed, harder=False)
    xo, yo = _mnist1d(max(num_samples // 3, 500), 43 + seed, harder=True)
    return Dataset("mnist1d", *_split(x, y, 0.2, seed), *_split(xo, yo, 0.2, seed),
                   ood="MNIST-1D regenerated with seed+1 and harder noise/shear/scale (4k samples)")


def augment_1d(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 6,
               scale: tuple[float, float] = (0.8, 1.2), noise: float = 0.15, dropout: float = 0.1) -> torch.Tensor:
    """MNIST-1D views: circular shift ±``max_shift``, amplitude scale, Gaussian noise, point dropout.

    Examples:
        >>> augment_1d(torch.ones(4, 1, 40), torch.Generator().manual_seed(0)).shape
        torch.Size([4, 1, 40])
    """
    b, _, length = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    idx = (torch.arange(length)[None, :] - shifts[:, None]) % length
    out = x.gather(2, idx[:, None, :].to(x.device))
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(b, 1, 1, generator=generator)
    out = out * s.to(x.device) + noise * torch.randn(out.shape, generator=generator).to(x.device)
    keep = (torch.rand(out.shape, generator=generator) >= dropout).to(x.device)
    return out * keep

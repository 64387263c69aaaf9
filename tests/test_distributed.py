"""A real 2-process torch.distributed (gloo) run reduces the state exactly, and misuse (reducing twice, NaN rows on
one rank, ranks of different widths) gets clear errors naming the problem and the global row."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import make_matrix
from rankme import SpectrumAccumulator

N, K = 1500, 48


def _worker(rank: int, world: int, init_file: str, out_dir: str, mode: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        z = _offset_rows() if mode == "offset" else make_matrix("powerlaw", N, K, seed=7).astype(np.float32)
        if mode == "empty-rank":
            shard = z if rank == 0 else z[:0]
        else:
            shard = z[rank::world]  # interleaved shards, different sizes are fine
        if mode == "lidar":
            from rankme.metrics.lidar import LidarAccumulator

            views = np.asarray(z, dtype=np.float64).reshape(N // 3, 3, K)
            lid = LidarAccumulator(K, 3)
            lid.update(views[rank::world])
            result = {"lidar": lid.all_reduce().lidar(), "n": lid.n}
            with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
                json.dump(result, fh)
            return
        dim = K + 1 if (mode == "mismatch" and rank == 1) else K
        acc = SpectrumAccumulator(dim)
        if dim == K:
            acc.update(torch.from_numpy(np.ascontiguousarray(shard)))
        try:
            acc.all_reduce()
            result = {"n": acc.n, "rankme": acc.rankme(), "centred": acc.rankme(center=True),
                      "sv": acc.singular_values().tolist()}
        except ValueError as e:
            result = {"error": str(e)}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump(result, fh)
    finally:
        dist.destroy_process_group()


def _offset_rows() -> np.ndarray:
    """Rows with a common offset of 1e6 whose interleaved halves differ in mean by 5: each rank keeps its rows
    about another point, and the centred value cancels catastrophically without a shifted state."""
    z = make_matrix("powerlaw", N, K, seed=7) + 1e6
    z[1::2] += 5.0
    return z


def _run(tmp_path, mode: str) -> list[dict]:
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), mode), nprocs=2, join=True)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.parametrize("mode", ["interleaved", pytest.param("empty-rank", marks=pytest.mark.slow)])
def test_two_process_gloo_all_reduce_equals_single_process(tmp_path, mode):
    results = _run(tmp_path, mode)
    single = SpectrumAccumulator(K)
    single.update(make_matrix("powerlaw", N, K, seed=7).astype(np.float32))
    for r in results:
        assert r["n"] == N
        assert abs(r["rankme"] - single.rankme()) <= 1e-9 * single.rankme()
        assert abs(r["centred"] - single.rankme(center=True)) <= 1e-9 * single.rankme(center=True)
        np.testing.assert_allclose(r["sv"], single.singular_values(), rtol=1e-9)
    assert results[0]["rankme"] == results[1]["rankme"]


@pytest.mark.slow  # like every 2-process test here: ~6 s on the loaded 2-core machine (one of each kind stays fast)
def test_two_process_all_reduce_of_offset_rows_keeps_the_centred_value_exact(tmp_path):
    from conftest import reference_rankme

    results = _run(tmp_path, "offset")
    truth, raw = reference_rankme(_offset_rows(), center=True), reference_rankme(_offset_rows())
    for r in results:
        assert r["n"] == N
        assert abs(r["centred"] - truth) <= 1e-6 * truth
        # the raw spectrum of rows offset by 1e6 sits at the Gram's rounding floor: exact to that floor, not 1e-9
        assert abs(r["rankme"] - raw) <= 1e-6 * raw


def test_ranks_with_different_widths_get_a_clear_error(tmp_path):
    results = _run(tmp_path, "mismatch")
    for r in results:
        assert "disagree on the embedding width" in r["error"]


def test_all_reduce_without_process_group_is_a_no_op():
    acc = SpectrumAccumulator(3)
    acc.update(np.eye(3))
    assert acc.all_reduce().n == 3


@pytest.mark.slow  # ~6 s: two spawned processes
def test_two_process_lidar_all_reduce_equals_single_process(tmp_path):
    from rankme.metrics.lidar import lidar

    results = _run(tmp_path, "lidar")
    z = make_matrix("powerlaw", N, K, seed=7).astype(np.float32).astype(np.float64).reshape(N // 3, 3, K)
    single = lidar(z, views=3)
    for r in results:
        assert r["n"] == N // 3
        assert abs(r["lidar"] - single) <= 1e-9 * single


# -- misuse ---------------------------------------------------------------------------------------------------
def _misuse(rank: int, world: int, init_file: str, out_dir: str) -> None:
    from rankme.monitor import RankMeMonitor

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    out: dict[str, str] = {}
    try:
        acc = SpectrumAccumulator(4)
        acc.update(np.eye(4)[rank::2])
        acc.all_reduce()
        try:
            acc.all_reduce()
        except ValueError as e:
            out["twice"] = str(e)
        probe = [torch.ones(4, 3) * (b + 1) for b in range(4)]
        probe[3] = probe[3].clone()
        probe[3][2, 1] = float("nan")  # global probe row 3*4 + 2 = 14, embedded by rank 1
        net = torch.nn.Linear(3, 3)
        try:
            RankMeMonitor(net, "", probe).compute()
        except ValueError as e:
            out["nan"] = str(e)
        try:
            from rankme.integrations.torchmetrics import RankMe

            m = RankMe(dim=4 + rank)
            m.update(torch.randn(8, 4 + rank))
            m.compute()
        except ValueError as e:
            out["tm"] = str(e)
    finally:
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump(out, fh)
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch, the monitor and torchmetrics (~18 CPU s)
def test_ddp_misuse_gets_clear_errors(tmp_path):
    pytest.importorskip("torchmetrics")
    mp.spawn(_misuse, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r in results:
        assert "already called" in r["twice"]
        assert "disagree on the embedding width" in r["tm"]
    assert "first bad row index: 14" in results[1]["nan"]


# -- the few-label probe under DDP ----------------------------------------------------------------------------------
def _fewlabel_setup():
    """A fixed net, a probe set of 7 uneven batches (rank 0 embeds 4, rank 1 embeds 3), its labels (some unlabelled)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 24), torch.nn.Tanh(), torch.nn.Linear(24, 12))
    x = torch.randn(230, 6)
    probe = [x[i : i + 33] for i in range(0, 230, 33)]
    y = (x[:, 0] > 0).long().numpy() + 2 * (x[:, 1] > 0).long().numpy()
    y[::7] = -1
    return net, x, probe, y


def _fewlabel_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    from rankme.integrations.torchmetrics import RankMe
    from rankme.monitor import RankMeMonitor

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        net, x, probe, y = _fewlabel_setup()
        out = RankMeMonitor(net, "2", probe, labels=y, label_budget=12, label_seed=1).compute()
        m = RankMe(dim=12, label_budget=12, label_seed=1)
        with torch.no_grad():
            m.update(net(x[rank::world]), labels=torch.from_numpy(y[rank::world]))
        tm = {k: float(v) for k, v in m.compute().items()}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"monitor": out, "torchmetrics": tm}, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch, scikit-learn and torchmetrics (~20 CPU s)
def test_two_process_fewlabel_probe_gathers_the_labelled_rows(tmp_path):
    pytest.importorskip("torchmetrics")
    from rankme.integrations.torchmetrics import RankMe
    from rankme.monitor import RankMeMonitor

    mp.spawn(_fewlabel_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    net, x, probe, y = _fewlabel_setup()
    single = RankMeMonitor(net, "2", probe, labels=y, label_budget=12, label_seed=1).compute()
    keys = [k for k in single if k.startswith("fewlabel_")]
    assert len(keys) == 6
    for r in results:  # the labelled rows gathered back in probe order: one process's values, exactly
        assert {k: r["monitor"][k] for k in keys} == {k: single[k] for k in keys}
        assert r["monitor"]["rankme/2"] == pytest.approx(single["rankme/2"], rel=1e-9)
    # torchmetrics: the rows concatenated rank by rank, as one process given them in that order
    m = RankMe(dim=12, label_budget=12, label_seed=1)
    with torch.no_grad():
        for rank in range(2):
            m.update(net(x[rank::2]), labels=torch.from_numpy(y[rank::2]))
    one = {k: float(v) for k, v in m.compute().items()}
    for r in results:
        assert {k: r["torchmetrics"][k] for k in one if k != "rankme"} == {k: one[k] for k in one if k != "rankme"}
        assert r["torchmetrics"]["rankme"] == pytest.approx(one["rankme"], rel=1e-9)

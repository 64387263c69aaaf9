"""Layers of a model scored on their token states with the attention mask (`rankme select --layers ... --tokens
all|per-sequence`, `rankme.select(tokens=)`): per-sequence values against a float64 per-sample numpy reference on
hidden states computed independently (transformers, `output_hidden_states=True`, the tokenizer's own mask, right and
left padding), all tokens against the flat matrix of real tokens, padding that holds NaN, the cache (a re-run reads
everything from it, with identical values, and the key tells the granularities apart), the command line, Python,
the pooled default saying its pooling, and the report's figure in Chromium."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import rankme
from browser import assert_not_blank, body_counts, render_dom, screenshot
from conftest import reference_rankme
from rankme import EmbeddingError, InputError, SpectrumAccumulator
from rankme.cli import main
from rankme.io.inputs import InputData, load_inputs
from rankme.io.results_db import ResultStore
from rankme.models.encoders import Encoder
from rankme.reporting import sequence_report  # registers the scan's renderers (as rankme.select does)
from rankme.selection import token_layers
from rankme.selection.pipelines import score_models
from rankme.selection.select import POOLED_NOTE
from rankme.selection.sequence_record import SequenceScan
from rankme.selection.token_layers import score_layer_sequences, score_layer_tokens

BATCH = 4


def _texts(n: int) -> list[str]:
    """Python's help texts: paragraphs of very different lengths (3 to ~200 tokens), so every batch is padded."""
    from pydoc_data.topics import topics

    paras = [" ".join(p.split()) for k in sorted(topics) for p in topics[k].split("\n\n")]
    paras = [p for p in paras if len(p) > 20]
    picked = [paras[i] for i in range(0, len(paras), max(1, len(paras) // (2 * n)))]
    return [p[: 40 + 90 * (i % 5)] for i, p in enumerate(picked[:n])]  # lengths cycle within each batch


@pytest.fixture(scope="module")
def minilm(minilm_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("minilm")
    (root / "docs.txt").write_text("\n".join(_texts(10)) + "\n")
    return minilm_path, root / "docs.txt"


def _hf_encoder(path, side: str):
    """MiniLM as an ``hf:``-style text encoder whose tokenizer pads on ``side``."""
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(path, padding_side=side)
    net = transformers.AutoModel.from_pretrained(path)
    return Encoder(net, name=f"minilm-{side}", modality="text", call=lambda m, b: m(**b),
                   prepare=lambda raw: dict(tok(list(raw), padding=True, truncation=True, max_length=512,
                                                return_tensors="pt")), fingerprint=f"minilm-{side}")


def _reference_states(path, texts, side):
    """Per layer, each sample's real-token rows, from an independent transformers forward with
    ``output_hidden_states=True`` and the tokenizer's attention mask, batched as the scan batches."""
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(path, padding_side=side)
    model = transformers.AutoModel.from_pretrained(path).eval()
    per_layer: dict[int, list[np.ndarray]] = {}
    padded = False
    for s in range(0, len(texts), BATCH):
        enc = tok(texts[s:s + BATCH], padding=True, truncation=True, max_length=512, return_tensors="pt")
        mask = enc["attention_mask"].bool()
        padded |= bool((~mask).any())
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states
        for i, h in enumerate(hidden):
            per_layer.setdefault(i, []).extend(h[b][mask[b]].double().numpy() for b in range(len(mask)))
    assert padded  # the batches hold padding
    return per_layer


def _per_sample_reference(rows: np.ndarray) -> float:
    """RankMe of one sample's own token matrix: float64 SVD, p = σ/‖σ‖₁ + 1e-7."""
    return reference_rankme(rows)


# ---- per sequence, and all tokens, against the independent reference ---------------------------------------

@pytest.mark.parametrize("side", ["right", "left"])
def test_per_sequence_per_layer_equals_float64_reference_on_hidden_states(minilm, side):
    path, docs = minilm
    data = load_inputs(docs)
    texts = data.get(list(range(data.n)))
    layers, notes = score_layer_sequences([_hf_encoder(path, side)], data, layers="all", batch_size=BATCH,
                                          progress=False)
    ref = _reference_states(path, texts, side)
    got = {x.layer: x for x in layers}
    # embeddings = hidden_states[0]; encoder.layer.i = hidden_states[i + 1]; `encoder` is the last block's tensor
    assert list(got) == ["embeddings", *(f"encoder.layer.{i}" for i in range(6))]
    assert got["encoder.layer.5"].merged == ["encoder"]
    assert any("pooler (B×384)" in n for n in notes)  # the pooler gives one vector per sample: not scored, said
    for name, x in got.items():
        rows = ref[0 if name == "embeddings" else int(name.rsplit(".", 1)[1]) + 1]
        assert x.ranks.lengths.tolist() == [len(r) for r in rows]
        want = np.array([_per_sample_reference(r) for r in rows])
        np.testing.assert_allclose(x.ranks.values, want, rtol=1e-9)
        assert x.index.tolist() == list(range(len(texts)))
        assert x.metrics["rankme_mean"] == pytest.approx(want.mean(), rel=1e-12)
        assert x.metrics["rankme_q50"] == pytest.approx(np.median(want), rel=1e-12)


@pytest.mark.parametrize("side", ["right", "left"])
def test_all_tokens_per_layer_equals_the_flat_matrix_of_real_tokens(minilm, side):
    path, docs = minilm
    data = load_inputs(docs)
    cands, notes = score_layer_tokens([_hf_encoder(path, side)], data, layers="all", batch_size=BATCH, progress=False)
    ref = _reference_states(path, data.get(list(range(data.n))), side)
    got = {c.layer: c for c in cands}
    assert set(got) == {"embeddings", *(f"encoder.layer.{i}" for i in range(6))}
    for name, c in got.items():
        flat = np.concatenate(ref[0 if name == "embeddings" else int(name.rsplit(".", 1)[1]) + 1])
        assert (c.n, c.dim) == flat.shape  # N counts the real tokens, no padding
        rows = ref[0 if name == "embeddings" else int(name.rsplit(".", 1)[1]) + 1]
        streamed = SpectrumAccumulator()  # the real-token rows of each batch, in the scan's blocks
        for s in range(0, len(rows), BATCH):
            streamed.update(np.concatenate(rows[s:s + BATCH]).astype(np.float32))
        assert c.metrics["rankme"] == pytest.approx(streamed.rankme(), rel=1e-12)
        # the float64 SVD of the whole flat matrix: Gram sums in other blocks move RankMe in its 8th digit here
        # (the embeddings layer's smallest σ sit near the float32 states' rounding floor, ~3e-7·σ₁)
        assert c.metrics["rankme"] == pytest.approx(reference_rankme(flat), rel=1e-7)
    assert "N counts tokens" in notes[0]


class _TokenWise(torch.nn.Module):
    """A model without positions: every token's state depends on that token alone, so left and right padding give
    the same real-token states; the padding id's embedding is NaN, so a padded position read anywhere would poison
    the statistic."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(30, 6)
        with torch.no_grad():
            self.emb.weight[0] = float("nan")
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(6, 6), torch.nn.Linear(6, 5)])
        self.head = torch.nn.Linear(5, 3)
        self.double()  # float64 states: one sequence alone and in a padded batch agree to rounding (~1e-16)

    def forward(self, input_ids, attention_mask):
        h = self.emb(input_ids)
        for block in self.blocks:
            h = torch.tanh(block(h))
        return self.head(h.mean(1))  # a pooled output: (B, 3)


def _token_wise_encoder(side: str, seqs: list[list[int]]):
    def prepare(raw):
        t = max(len(seqs[i]) for i in raw)
        ids = torch.zeros(len(raw), t, dtype=torch.long)
        mask = torch.zeros(len(raw), t, dtype=torch.long)
        for b, i in enumerate(raw):
            n = len(seqs[i])
            where = slice(0, n) if side == "right" else slice(t - n, t)
            ids[b, where], mask[b, where] = torch.tensor(seqs[i]), 1
        return {"input_ids": ids, "attention_mask": mask}

    return Encoder(_TokenWise(), name=f"tokenwise-{side}", modality="array", call=lambda m, b: m(**b),
                   prepare=prepare, fingerprint=f"tokenwise-{side}")


def test_padding_left_or_right_holding_nan_never_enters_a_statistic():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 30, size=n).tolist() for n in (2, 9, 4, 7, 1, 5, 8, 3)]
    data = InputData("ids", "array", len(seqs), lambda idx: list(idx), "ids-fp")
    out = {}
    for side in ("right", "left"):
        enc = _token_wise_encoder(side, seqs)
        per_seq, _ = score_layer_sequences([enc], data, layers=["blocks.0", "blocks.1"], batch_size=3, progress=False)
        cands, _ = score_layer_tokens([enc], data, layers=["blocks.0", "blocks.1"], batch_size=3, progress=False)
        out[side] = ({x.layer: x.ranks.values for x in per_seq}, {c.layer: c.metrics["rankme"] for c in cands})
        net = enc.net
        with torch.no_grad():
            h = [net.emb(torch.tensor(s)) for s in seqs]
            for j, block in enumerate(net.blocks):
                tapped = [block(x) for x in h]  # the tap is the Linear's output, before the tanh
                h = [torch.tanh(x) for x in tapped]
                rows = [x.double().numpy() for x in tapped]  # each sequence alone: no padding at all
                np.testing.assert_allclose(out[side][0][f"blocks.{j}"], [reference_rankme(r) for r in rows],
                                           rtol=1e-9)
                assert out[side][1][f"blocks.{j}"] == pytest.approx(reference_rankme(np.concatenate(rows)), rel=1e-9)
    for j in (0, 1):
        np.testing.assert_allclose(out["left"][0][f"blocks.{j}"], out["right"][0][f"blocks.{j}"], rtol=1e-12)
        assert out["left"][1][f"blocks.{j}"] == pytest.approx(out["right"][1][f"blocks.{j}"], rel=1e-12)


def test_a_layer_whose_tokens_do_not_fit_the_mask_or_that_has_none_is_said_in_one_line():
    class Drop(torch.nn.Module):
        def forward(self, h):
            return h[:, 1:]  # one token fewer than the mask has

    seqs = [[1, 2, 3], [4, 5]]
    data = InputData("ids", "array", 2, lambda idx: list(idx), "fp")
    enc = _token_wise_encoder("right", seqs)
    enc.net.blocks[0] = torch.nn.Sequential(enc.net.blocks[0], Drop())
    with pytest.raises(EmbeddingError, match=r"blocks\.0.*2×2×6.*attention mask is 2×3.*cannot be told") as e:
        score_layer_sequences([enc], data, layers=["blocks.0"], progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(EmbeddingError, match=r"none of the layers gives token states.*head give one vector"):
        score_layer_tokens([enc], data, layers=["head"], progress=False)


# ---- the cache ---------------------------------------------------------------------------------------------

def test_a_rerun_reads_every_layer_from_the_cache_with_identical_values(minilm, tmp_path, monkeypatch):
    path, docs = minilm
    data = load_inputs(docs)
    enc = _hf_encoder(path, "right")
    store = ResultStore(tmp_path / "cache.sqlite")
    first, _ = score_layer_sequences([enc], data, layers="all", batch_size=BATCH, store=store, progress=False)
    cands, _ = score_layer_tokens([enc], data, layers="all", batch_size=BATCH, store=store, progress=False)
    assert not any(x.cached for x in first) and not any(c.cached for c in cands)

    def no_forward(*a, **k):
        raise AssertionError("a cached layer scan ran the model")

    monkeypatch.setattr(token_layers, "embed_layer_tokens", no_forward)
    again, notes = score_layer_sequences([enc], data, layers="all", batch_size=BATCH, store=store, progress=False)
    cands2, _ = score_layer_tokens([enc], data, layers="all", batch_size=BATCH, store=store, progress=False)
    assert all(x.cached for x in again) and all(c.cached for c in cands2)
    assert [x.layer for x in again] == [x.layer for x in first]
    assert [x.merged for x in again] == [x.merged for x in first]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.ranks.values, b.ranks.values) and np.array_equal(a.ranks.lengths, b.ranks.lengths)
        assert a.dim == b.dim == 384
    assert [c.metrics for c in cands2] == [c.metrics for c in cands]
    assert any("pooler" in n for n in notes)  # the layer without token states is known from the cache too
    # the granularity is in the key: the pooled scan of the same layers is not read from the token entries
    pooled = score_models([enc], data, layers="all", batch_size=BATCH, store=store, progress=False)
    assert not any(c.cached for c in pooled)
    assert {c.layer: c.n for c in pooled}["encoder.layer.2"] == data.n
    store.close()


# ---- Python and the command line ---------------------------------------------------------------------------

def test_python_select_per_sequence_and_all_and_the_pooled_default_says_its_pooling(minilm, tmp_path):
    path, docs = minilm
    scan = rankme.select(model=[f"hf:{path}"], data=docs, layers="all", tokens="per-sequence", out=tmp_path / "o",
                         batch_size=BATCH, progress=False, per_sample=tmp_path / "per.csv")
    assert isinstance(scan, SequenceScan)
    with (tmp_path / "per.csv").open() as fh:
        assert [float(r["rankme"]) for r in csv.DictReader(fh)] == [r["rankme"] for r in scan.per_sample()]
    assert [x.layer for x in scan.layers][-1] == "encoder.layer.5" and len(scan.layers) == 7
    assert (tmp_path / "o" / "report.html").is_file() and (tmp_path / "o" / "per_sequence.png").is_file()
    text = str(scan)
    assert "median" in text and "encoder.layer.3" in text and "no layer is picked" in text
    assert len(scan.per_sample()) == 7 * 10
    again = rankme.select(model=[f"hf:{path}"], data=docs, layers="all", tokens="per-sequence", out=tmp_path / "o",
                          batch_size=BATCH, progress=False)
    assert all(x.cached for x in again.layers) and "7 of 7 layers from the cache" in str(again)
    assert [x.metrics for x in again.layers] == [x.metrics for x in scan.layers]

    sel = rankme.select(model=[f"hf:{path}"], data=docs, layers="all", tokens="all", batch_size=BATCH,
                        progress=False)
    assert {c.layer for c in sel.candidates} == {"embeddings", *(f"encoder.layer.{i}" for i in range(6))}
    assert sel.recommendation is not None and "output" not in {c.layer for c in sel.candidates}
    pooled = rankme.select(model=[f"hf:{path}"], data=docs, layers="all", batch_size=BATCH, progress=False)
    assert POOLED_NOTE in pooled.notes and "averaged over their real tokens" in POOLED_NOTE
    assert POOLED_NOTE not in sel.notes
    by_layer = {c.layer: c.n for c in pooled.candidates}
    assert by_layer["encoder.layer.2"] == 10 < next(c.n for c in sel.candidates if c.layer == "encoder.layer.2")


@pytest.mark.parametrize(("kw", "match"), [
    ({"tokens": "mean"}, "pooled by default"),
    ({"tokens": "per-sequence", "layers": None}, "add layers=all"),
    ({"tokens": "all", "labels": np.zeros(10)}, "labels= check a pick"),
    ({"tokens": "per-sequence", "metrics": ["nesum"]}, "not computed per sequence"),
    ({"tokens": "per-sequence", "param": "lr"}, "picks none"),
    ({"tokens": "words"}, "tokens must be one of"),
    ({"tokens": "all", "per_sample": "x.csv"}, "needs tokens=per-sequence"),
])
def test_python_refuses_what_a_token_scan_cannot_do(tmp_path, kw, match):
    (tmp_path / "d.txt").write_text("a\nb\n")
    args = {"model": ["torch:torch.nn:Identity"], "data": tmp_path / "d.txt", "layers": "all", **kw}
    with pytest.raises(InputError, match=match):
        rankme.select(**args)
    with pytest.raises(InputError, match="model= or factory="):
        rankme.select(tmp_path / "d.txt", tokens="all")


def test_cli_per_sequence_json_csv_and_cache(minilm, tmp_path, capsys):
    path, docs = minilm
    out, per = tmp_path / "out", tmp_path / "per.csv"
    args = ["select", "--model", f"hf:{path}", "--data", str(docs), "--layers", "all", "--tokens", "per-sequence",
            "--batch-size", str(BATCH), "--out", str(out), "--json", "--per-sample", str(per)]
    assert main(args) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["tokens"] == "per-sequence" and len(got["layers"]) == 7
    assert got["figure"] == str(out / "per_sequence.png") and (out / "per_sequence.png").stat().st_size > 0
    assert any("--tokens per-sequence" in n for n in got["notes"])  # notes name the flag
    with per.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 7 * 10 and set(rows[0]) == {"model", "layer", "sequence", "tokens", "rankme"}
    for layer in got["layers"]:
        values = [float(r["rankme"]) for r in rows if r["layer"] == layer["layer"]]
        assert np.mean(values) == pytest.approx(layer["metrics"]["rankme_mean"], rel=1e-12)
    assert main([*args[:-3], "--no-progress"]) == 0  # the text output, from the cache
    text = capsys.readouterr().out
    assert "7 of 7 layers from the cache" in text and "figure: " in text
    assert "q95" in text.splitlines()[0]


def test_cli_all_tokens_and_usage_errors(minilm, tmp_path, capsys):
    path, docs = minilm
    base = ["select", "--model", f"hf:{path}", "--data", str(docs), "--batch-size", str(BATCH), "--no-cache",
            "--no-report", "--json"]
    assert main([*base, "--layers", "encoder.layer.1,pooler", "--tokens", "all"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [c["layer"] for c in got["candidates"]] == ["encoder.layer.1"]
    assert got["candidates"][0]["n"] > 10 * 3  # tokens, not samples
    assert any("pooler (B×384)" in n and "--tokens all" in n for n in got["notes"])
    for extra, said in ((["--tokens", "per-sequence"], "add --layers all"),
                        (["--layers", "all", "--per-sample", "x.csv"], "needs --tokens per-sequence"),
                        (["--layers", "all", "--tokens", "mean"], "--tokens mean is how")):
        assert main([*base, *extra]) == 2
        captured = capsys.readouterr()
        assert said in captured.err and len(captured.err.strip().splitlines()) == 1


# ---- the report --------------------------------------------------------------------------------------------

def test_per_sequence_report_and_its_figure_render_in_chromium(tmp_path):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 30, size=n).tolist() for n in rng.integers(1, 12, size=40)]
    data = InputData("ids", "array", len(seqs), lambda idx: list(idx), "ids-fp")
    layers, notes = score_layer_sequences([_token_wise_encoder("right", seqs)], data,
                                          layers=["emb", "blocks.0", "blocks.1"], progress=False)
    scan = SequenceScan(layers, "ids", command="rankme select ...", notes=notes)
    page = sequence_report.write_sequence_report(scan, tmp_path / "report.html", figure_path=tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert scan.to_html(tmp_path / "again.html").read_text().count("<img") == 1
    dom = render_dom(page)
    assert body_counts(dom) == {"images-total": 1, "images-loaded": 1, "tables": 1}, dom[:2000]
    assert "blocks.1" in dom and "q95" in dom and "no layer is picked" in dom
    assert_not_blank(screenshot(page, tmp_path / "shot.png"))


def test_all_tokens_of_a_layer_without_an_attention_mask_are_every_position():
    """Inputs without an attention mask (arrays, image patches): every position is a real token. The scan's "all
    tokens" handed the 3-D states to the accumulator without the token rows, and refused them as not 2-D."""
    from rankme.models.extract import embed_layer_tokens

    x = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float32)
    enc = Encoder(torch.nn.Sequential(torch.nn.Identity()), name="id", modality="array")
    data = InputData("x", "array", 5, lambda idx: x[idx], "fp")
    got = embed_layer_tokens(enc, data, ["0"], np.arange(5), "all", batch_size=2, progress=False)
    assert got.scores["0"].rankme() == pytest.approx(reference_rankme(x.reshape(-1, 4).astype(np.float64)),
                                                     rel=1e-9)

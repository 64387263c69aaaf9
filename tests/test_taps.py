"""Tap gallery: every tap's value equals the RankMe (float64 SVD) of the tensor an explicit forward produced at
that module, on real module shapes with in-place ops, reused modules, structured outputs, frozen/eval parts and
channels-last maps; for the monitor and for the layer scan of ``rankme select --layers``. Also: tapping never
changes training, and the torchmetrics metric's range message."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from conftest import reference_rankme
from rankme import EmbeddingError
from rankme.io.inputs import InputData
from rankme.models.encoders import Encoder
from rankme.models.extract import embed_layers
from rankme.monitor import RankMeMonitor

REL = 1e-9


def _truth(z: torch.Tensor) -> float:
    return reference_rankme(z.detach().double().numpy())


def _values(model, taps, x, **kw) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the probe set is smaller than some K here
        out = RankMeMonitor(model, taps, [x[:40], x[40:]], **kw).compute()
    return {k.split("/", 1)[1]: v for k, v in out.items()}


def _scan(model, taps, x) -> dict[str, float]:
    """The layer scan of ``rankme select --layers``: the encoder wrapper and :func:`embed_layers`."""
    enc = Encoder(model, name="m", modality="array")
    xs = x.numpy()
    data = InputData("x", "array", len(xs), lambda idx: xs[idx], "fp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        accs, _ = embed_layers(enc, data, taps, np.arange(len(xs)), batch_size=32, progress=False)
    return {t: a.rankme() for t, a in accs.items()}


# -- model shapes ---------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: in-place ReLU and ``out += identity``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def _resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(inplace=True),
                        BasicBlock(12), BasicBlock(12))
    net.train()
    with torch.no_grad():  # running stats that differ from batch stats, so eval and train BN differ
        for _ in range(3):
            net(torch.randn(16, 3, 6, 6) * 2 + 1)
    return net


class PreNormBlock(nn.Module):
    """A pre-norm transformer block; the residual adds are in place on the attention / MLP outputs."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), nn.MultiheadAttention(d, 2, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        a = self.attn(h, h, h, need_weights=False)[0]
        a += x
        m = self.mlp(self.ln2(a))
        m += a
        return m


def _transformer(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(24, 16), PreNormBlock(16), PreNormBlock(16))
    for m in net.modules():  # trained-looking LayerNorms (β = 0 would leave their output exactly rank K - 1)
        if isinstance(m, nn.LayerNorm):
            nn.init.normal_(m.weight, 1.0, 0.2), nn.init.normal_(m.bias, 0.0, 0.5)
    return net


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.shared = nn.Linear(6, 12), nn.Linear(12, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.shared(self.inp(x)))
        return self.shared(h) * 3.0


@dataclasses.dataclass
class Out:
    ids: torch.Tensor
    feats: torch.Tensor


class Structured(nn.Module):
    """Returns ``kind`` of output: a tuple, a dict, a dataclass (each with an integer tensor first), or text."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind, self.lin = kind, nn.Linear(10, 6)

    def forward(self, x: torch.Tensor):
        f = self.lin(x)
        ids = torch.arange(len(x))
        out = {"tuple": (ids, f), "dict": {"ids": ids, "feats": f}, "dataclass": Out(ids, f), "text": ("a", "b")}
        return out[self.kind]


class Wrap(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.body = Structured(kind)

    def forward(self, x: torch.Tensor):
        out = self.body(x)
        f = out.feats if isinstance(out, Out) else out["feats"] if isinstance(out, dict) else out[1]
        return f.relu_()  # in place on the tapped tensor


# -- the gallery ----------------------------------------------------------------------------------------------
def test_inplace_relu_after_the_tapped_linear_issue_example():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(inplace=True))
    x = torch.randn(80, 8)
    with torch.no_grad():
        pre = net[0](x).clone()
    truth, wrong = _truth(pre), _truth(pre.relu())
    assert abs(truth - wrong) > 1.0  # the post-ReLU matrix is a different answer
    # rank 9 of 16 columns: the Gram route reads the 7 null singular values as ~1e-8·σ_max (documented bound)
    assert _values(net, "0", x)["0"] == pytest.approx(truth, rel=1e-7)
    assert _scan(net, ["0"], x)["0"] == pytest.approx(truth, rel=1e-7)


def _resnet_truth(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each tapped tensor by hand, without any in-place op, pooled by the documented rule (spatial mean)."""
    b = net[4]
    with torch.no_grad():
        h = torch.relu(net[1](net[0](x)))
        h = net[3](h)
        bn1 = b.bn1(b.conv1(h))
        bn2 = b.bn2(b.conv2(torch.relu(bn1)))
        out = torch.relu(bn2 + h)
    return {"4.bn1": bn1, "4.bn2": bn2, "4": out}


@pytest.mark.parametrize("channels_last", [False, True])
def test_resnet_basic_block_taps_train_model_eval_scoring(channels_last):
    net = _resnet()
    x = torch.randn(80, 3, 6, 6)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    stats = copy.deepcopy(net.state_dict())
    got = _values(net, ["4.bn1", "4.bn2", "4"], x)
    flat = _values(net, ["4.bn2"], x, pool="flatten")["4.bn2"]
    assert net.training and all(torch.equal(v, stats[k]) for k, v in net.state_dict().items())  # BN stats kept
    net.eval()
    truth = _resnet_truth(net, x)
    if channels_last:
        assert truth["4.bn2"].is_contiguous(memory_format=torch.channels_last)
    for tap, t in truth.items():
        assert got[tap] == pytest.approx(_truth(t.mean(dim=(2, 3))), rel=REL), tap
    assert flat == pytest.approx(_truth(truth["4.bn2"].reshape(80, -1)), rel=REL)
    with torch.no_grad():  # without the copy, `out += identity` and the ReLU would change bn2's value
        assert abs(got["4.bn2"] - _truth((truth["4.bn2"] + net[3](torch.relu(net[1](net[0](x))))).relu()
                                         .mean(dim=(2, 3)))) > 0.05
    scan = _scan(net, ["4.bn1", "4.bn2"], x)
    for tap in ("4.bn1", "4.bn2"):
        assert scan[tap] == pytest.approx(_truth(truth[tap].mean(dim=(2, 3))), rel=REL), tap


def test_batchnorm_in_train_mode_tapped_during_a_training_forward():
    net = _resnet()
    x = torch.randn(48, 3, 6, 6)
    ref = copy.deepcopy(net)
    from rankme.monitor.taps import TapCapture

    cap = TapCapture(net, {"bn2": "3.bn2"}, "mean")
    cap.run(lambda: net(x))
    cap.remove()
    with torch.no_grad():  # train-mode BatchNorm: batch statistics, as the tapped forward used
        h = ref[3].conv2(torch.relu(ref[3].bn1(ref[3].conv1(torch.relu(ref[1](ref[0](x)))))))
        bn2 = ref[3].bn2(h)
    assert torch.equal(cap.out["bn2"], bn2.mean(dim=(2, 3)))
    assert not net[3].bn2._forward_hooks


def test_prenorm_transformer_block_taps():
    net = _transformer()
    x = torch.randn(80, 7, 24)
    taps = ["1.attn", "1.mlp", "1.mlp.2", "1.ln2", "1", "2"]
    got = _values(net, taps, x)
    scan = _scan(net, taps, x)
    net.eval()
    b = net[1]
    with torch.no_grad():
        e = net[0](x)
        h = b.ln1(e)
        attn = b.attn(h, h, h, need_weights=False)[0].clone()
        a = attn + e
        ln2 = b.ln2(a)
        mlp = b.mlp(ln2)
        out1 = mlp + a
        out2 = net[2](out1.clone())
    truth = {"1.attn": attn, "1.mlp": mlp, "1.mlp.2": mlp, "1.ln2": ln2, "1": out1, "2": out2}
    for tap in taps:
        want = _truth(truth[tap].mean(1))
        assert got[tap] == pytest.approx(want, rel=REL), tap
        assert scan[tap] == pytest.approx(want, rel=REL), tap
    assert abs(got["1.attn"] - _truth(a.mean(1))) > 0.05  # the in-place residual add would have changed it


def test_module_run_twice_in_one_forward_scores_its_last_call_and_says_so():
    torch.manual_seed(0)
    net = Reused()
    x = torch.randn(60, 6)
    with torch.no_grad():
        last = net.shared(torch.tanh(net.shared(net.inp(x))))
    mon = RankMeMonitor(net, "shared", [x])
    with pytest.warns(UserWarning, match=r"^tap 'shared' \(submodule 'shared', a Linear\) ran 2 times in one "
                                         r"forward pass; its last call is scored") as rec:
        value = mon.compute()["rankme/shared"]
    assert sum("ran 2 times" in str(w.message) for w in rec) == 1
    assert value == pytest.approx(_truth(last), rel=REL)
    enc = Encoder(net, name="m", modality="array")
    data = InputData("x", "array", 60, lambda idx: x.numpy()[idx], "fp")
    with pytest.warns(UserWarning, match="ran 2 times"):
        accs, _ = embed_layers(enc, data, ["shared"], np.arange(60), batch_size=60, progress=False)
    assert accs["shared"].rankme() == pytest.approx(_truth(last), rel=REL)


@pytest.mark.parametrize("kind", ["tuple", "dict", "dataclass"])
def test_tuple_dict_and_dataclass_outputs_use_their_first_float_tensor(kind):
    torch.manual_seed(0)
    net = Wrap(kind)
    x = torch.randn(60, 10)
    with torch.no_grad():
        f = net.body.lin(x).clone()
    assert abs(_truth(f) - _truth(f.relu())) > 0.05
    assert _values(net, "body", x)["body"] == pytest.approx(_truth(f), rel=REL)
    assert _scan(net, ["body"], x)["body"] == pytest.approx(_truth(f), rel=REL)


def test_output_without_a_tensor_or_a_module_never_called_is_a_one_line_error():
    net = nn.Sequential(Structured("text"))
    with pytest.raises(EmbeddingError, match=r"^tap '0' \(submodule '0', a Structured\): cannot find a tensor in "
                                             r"a module output of type tuple; pass a callable tap \(model, batch\)"):
        RankMeMonitor(net, "0", [torch.randn(4, 10)]).compute()
    unused = nn.ModuleDict({"used": nn.Linear(6, 6), "unused": nn.Linear(6, 6)})
    unused.forward = lambda x: unused["used"](x)  # type: ignore[method-assign]
    with pytest.raises(EmbeddingError, match=r"^tap 'unused' \(submodule 'unused', a Linear\) did not run in the "
                                             "forward pass; tap a module the forward calls"):
        RankMeMonitor(unused, "unused", [torch.randn(4, 6)]).compute()


def test_frozen_and_eval_submodules_inside_a_training_model():
    net = _resnet()
    for p in net[:2].parameters():
        p.requires_grad_(False)
    net[1].eval()  # a frozen stem BatchNorm the user keeps in eval mode
    head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12 * 36, 20), nn.ReLU(inplace=True))
    model = nn.Sequential(net, head).train()
    model[0].train()
    net[1].eval()
    x = torch.randn(80, 3, 6, 6)
    modes = [m.training for m in model.modules()]
    grads = [p.requires_grad for p in model.parameters()]
    got = _values(model, ["1.2", "0.4.bn2"], x)
    assert [m.training for m in model.modules()] == modes and [p.requires_grad for p in model.parameters()] == grads
    model.eval()
    with torch.no_grad():
        lin = head[2](head[0](model[0](x)))
        bn2 = _resnet_truth(net, x)["4.bn2"]
    assert got["1.2"] == pytest.approx(_truth(lin), rel=REL)
    assert got["0.4.bn2"] == pytest.approx(_truth(bn2.mean(dim=(2, 3))), rel=REL)


# -- training is unchanged -------------------------------------------------------------------------------------
def _step(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(1)
    out = model(x)
    out.square().mean().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("build,taps,shape", [(_resnet, {"a": "4.bn2", "b": "3.bn1", "c": "4"}, (16, 3, 6, 6)),
                                              (_transformer, {"a": "1.attn", "b": "2.mlp"}, (16, 7, 24))])
def test_taps_leave_training_output_and_gradients_bit_identical(build, taps, shape):
    x = torch.randn(*shape)
    plain, tapped = build(), build()
    want = _step(plain, x)
    from rankme.monitor.taps import TapCapture

    cap = TapCapture(tapped, taps, "mean")  # hooks active during a training forward with autograd
    steps = []
    assert set(cap.run(lambda: steps.append(_step(tapped, x)))) == set(taps)
    cap.remove()
    RankMeMonitor(tapped, list(taps.values()), [torch.randn(*shape)]).compute()  # the monitor between two steps
    steps.append(_step(tapped, x))
    for a, b in ((want, steps[0]), (_step(plain, x), steps[1])):
        assert torch.equal(a[0], b[0]) and all(torch.equal(g, h) for g, h in zip(a[1], b[1], strict=True))
    assert all(torch.equal(v, w) for v, w in zip(plain.state_dict().values(), tapped.state_dict().values(),
                                                 strict=True))


# -- torchmetrics: the float64 state's range ---------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e160])
def test_torchmetrics_finite_values_outside_the_state_range_are_named(scale):
    from rankme.integrations.torchmetrics import RankMe

    m = RankMe(dim=16)
    m.update(torch.randn(200, 16, dtype=torch.float64) * scale)
    with pytest.raises(EmbeddingError, match=r"^the embeddings' largest \|value\| is \S+, outside the range of "
                                             r"this metric's float64 state"):
        m.compute()


@pytest.mark.parametrize("scale", [1e-140, 1e140])
def test_torchmetrics_large_and_small_values_inside_the_range_are_exact(scale):
    from rankme.integrations.torchmetrics import RankMe

    z = torch.randn(200, 16, dtype=torch.float64) * torch.arange(1, 17) ** -1.0
    for center in (False, True):
        m = RankMe(dim=16, center=center)
        m.update(z[:90] * scale)
        m.update(z[90:] * scale)
        zc = z - z.mean(0) if center else z
        assert float(m.compute()) == pytest.approx(_truth(zc), rel=REL)
    bad = RankMe(dim=16)
    bad.update(z.clone().index_fill_(0, torch.tensor([3]), float("nan")))
    with pytest.raises(EmbeddingError, match="non-finite values"):
        bad.compute()

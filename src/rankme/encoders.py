"""Load models to score without labels: named pretrained encoders, and checkpoints into a model factory.

Specs (``rankme select --model SPEC``):

- ``hf:<hub-id-or-local-folder>`` — ``transformers.AutoModel`` (text if a tokenizer loads, else images if an image
  processor loads, else raw arrays). Output: last hidden state, mean-pooled over unmasked tokens.
- ``sentence-transformers:<hub-id-or-local-folder>`` (or ``st:``) — the ``sentence_embedding`` the library produces.
- ``timm:<name>`` — ``timm.create_model(name, pretrained=True)``; output: its pooled pre-logits features.
- ``torch:<module:function>`` — your own factory, called with no argument, returning an ``nn.Module`` (its
  input is a float tensor batch of an array file or of images).

Nothing is downloaded unless the library's own cache/hub access allows it; offline, a hub id that is not cached
fails with an error that says so. Checkpoints load with ``torch.load(weights_only=True)`` or safetensors; code in
a pickle or a hub repository runs only with ``trust_code=True`` (``--trust-code``), which is dangerous with files
from the internet.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import pickle
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme._validate import EmbeddingError
from rankme.integrations import require

__all__ = ["Encoder", "block_layers", "file_fingerprint", "load_checkpoint", "load_encoder", "load_factory"]

OUTPUT = "output"
"""Name of the tap on the encoder's final embedding."""


def _torch() -> Any:
    return require("torch", "torch")


def file_fingerprint(path: str | Path, full_hash_limit: int = 1 << 30) -> str:
    """A content hash of a file (files over ``full_hash_limit`` bytes: path, size and mtime), for cache keys.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_text("hi")
    >>> file_fingerprint(p)[:12]
    '8f434346648f'
    """
    p = Path(path)
    st = p.stat()
    if st.st_size > full_hash_limit:
        return hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _module_fingerprint(model: Any) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype.is_floating_point or t.dtype.is_signed
                 else str(t.tolist()).encode())
    return h.hexdigest()


@functools.cache
def _encoder_class() -> Any:
    nn = _torch().nn

    class Encoder(nn.Module):  # type: ignore[name-defined]
        """A model with how to feed it and which output is its embedding; ``net`` is the wrapped model."""

        def __init__(self, net: Any, *, name: str, modality: str, call: Callable[[Any, Any], Any],
                     pick: Callable[[Any, Any], Any], prepare: Callable[[Any], Any], fingerprint: str) -> None:
            super().__init__()
            self.net = net
            self.name, self.modality, self.fingerprint = name, modality, fingerprint
            self._call, self._pick, self.prepare = call, pick, prepare

        def forward(self, batch: Any) -> Any:
            return self._pick(self._call(self.net, batch), batch)

    return Encoder


def Encoder(net: Any, *, name: str, modality: str, call: Callable[[Any, Any], Any] | None = None,
            pick: Callable[[Any, Any], Any] | None = None, prepare: Callable[[Any], Any] | None = None,
            fingerprint: str | None = None) -> Any:
    """Wrap ``net`` (an ``nn.Module``) as an encoder: ``call(net, batch)`` runs it (default ``net(batch)``),
    ``pick(output, batch)`` returns the (B, K) embedding (default: :func:`rankme.monitor.pool_output`),
    ``prepare(raw_samples)`` turns a list/array of raw samples into a batch (default: a float tensor).

    >>> import torch
    >>> enc = Encoder(torch.nn.Linear(3, 2), name="lin", modality="array")
    >>> enc(enc.prepare([[1.0, 2.0, 3.0]])).shape
    torch.Size([1, 2])
    """
    from rankme.monitor import pool_output

    torch = _torch()

    def default_prepare(raw: Any) -> Any:
        return torch.as_tensor(np.asarray(raw) if isinstance(raw, list) else raw, dtype=torch.float32)

    enc = _encoder_class()(
        net, name=name, modality=modality, call=call or (lambda m, b: m(b)),
        pick=pick or (lambda out, b: pool_output(out, "mean", b.get("attention_mask") if isinstance(b, dict) else None)),
        prepare=prepare or default_prepare, fingerprint=fingerprint or _module_fingerprint(net))
    return enc.eval()  # scored in eval mode, and left there


def block_layers(model: Any) -> list[str]:
    """The layers ``--layers all`` scans: the top-level children of ``model`` plus every block of its longest
    ``ModuleList``/``Sequential`` (a transformer's layers, a CNN's stages), in forward order.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> block_layers(net)
    ['0', '1', '2']
    """
    torch = _torch()
    containers = [(n, m) for n, m in model.named_modules()
                  if isinstance(m, (torch.nn.ModuleList, torch.nn.Sequential)) and len(m) > 0]
    names = [n for n, _ in model.named_children()]
    if containers:
        cname, longest = max(containers, key=lambda nm: len(nm[1]))
        names += [f"{cname}.{i}" if cname else str(i) for i in range(len(longest))]
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(dict.fromkeys(names), key=lambda n: order.get(n, 0))


def load_factory(spec: str) -> Callable[[], Any]:
    """Import ``module:function`` (the current folder is importable) and return the function.

    >>> load_factory("collections:OrderedDict")().__class__.__name__
    'OrderedDict'
    """
    mod_name, sep, fn_name = spec.partition(":")
    if not sep or not mod_name or not fn_name:
        raise ValueError(f"a model factory is 'module:function', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except ImportError as e:
        raise ValueError(f"cannot import module {mod_name!r} of factory {spec!r}: {e}") from e
    except AttributeError as e:
        raise ValueError(f"module {mod_name!r} has no {fn_name!r} (factory {spec!r})") from e
    if not callable(fn):
        raise ValueError(f"factory {spec!r} is not callable")
    return fn


def _state_dict_from(obj: Any, path: str) -> dict[str, Any]:
    torch = _torch()
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EmbeddingError(f"{path}: holds no state dict of tensors (looked at the top level and under "
                             "'state_dict', 'model_state_dict', 'model')")
    return {str(k): v for k, v in obj.items()}


def load_checkpoint(model: Any, path: str | Path, *, trust_code: bool = False) -> Any:
    """Load weights from ``path`` (``.safetensors``, or a ``torch.save`` file read with ``weights_only=True``)
    into ``model``; keys may sit under ``state_dict``/``model`` and carry one common prefix (e.g. Lightning's
    ``model.``). Returns the model.

    >>> import torch, tempfile
    >>> p = tempfile.mkdtemp() + "/w.pt"; torch.save({"state_dict": {"model.weight": torch.ones(2, 3),
    ...     "model.bias": torch.zeros(2)}}, p)
    >>> float(load_checkpoint(torch.nn.Linear(3, 2), p).weight.detach().sum())
    6.0
    """
    torch = _torch()
    path = str(path)
    if not Path(path).is_file():
        raise EmbeddingError(f"{path}: checkpoint not found")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(path)
        except Exception as e:
            raise EmbeddingError(f"{path}: not a readable .safetensors file ({e})") from e
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=not trust_code)
        except pickle.UnpicklingError as e:
            raise EmbeddingError(
                f"{path}: refusing to load — unpickling it would run code or build arbitrary objects. rankme loads "
                "checkpoints with torch.load(weights_only=True). Re-save only the state dict (torch.save("
                "model.state_dict(), path)) or convert to .safetensors; or, only for a file you trust, pass "
                "--trust-code (dangerous: a malicious file can run any command)") from e
        except (RuntimeError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise EmbeddingError(f"{path}: not a readable PyTorch checkpoint: truncated or corrupt ({e})") from e
        state = _state_dict_from(obj, path)
    wanted = set(model.state_dict())
    if not wanted & set(state):  # strip one common prefix such as "model." or "module."
        prefix = next((key[: i + 1] for key in state for i, ch in enumerate(key)
                       if ch == "." and key[i + 1:] in wanted), None)
        if prefix is not None:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing, unexpected = wanted - set(state), set(state) - wanted
    if missing:
        raise EmbeddingError(f"{path}: does not fit the factory's model: {len(missing)} missing key(s) "
                             f"{sorted(missing)[:5]}, {len(unexpected)} unexpected {sorted(unexpected)[:5]}")
    try:
        model.load_state_dict({k: state[k] for k in wanted})
    except RuntimeError as e:
        raise EmbeddingError(f"{path}: does not fit the factory's model ({str(e).splitlines()[0]})") from e
    return model


def _offline_error(spec: str, e: BaseException) -> EmbeddingError:
    return EmbeddingError(
        f"{spec}: could not load it ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). A hub id needs "
        "network access or a copy in the local cache (offline: HF_HUB_OFFLINE=1); a local folder must hold the "
        "model's config and weights")


def _load_hf(ident: str, spec: str, trust_code: bool) -> Any:
    transformers = require("transformers", "transformers")
    try:
        net = transformers.AutoModel.from_pretrained(ident, trust_remote_code=trust_code)
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise EmbeddingError(f"{spec}: the model's code lives in its repository and would run on load; "
                                 "pass --trust-code only if you trust it") from e
        raise _offline_error(spec, e) from e
    except OSError as e:
        raise _offline_error(spec, e) from e
    rev = getattr(net.config, "_commit_hash", None)
    fp = hashlib.sha256(f"{spec}|{rev}".encode()).hexdigest() if rev else _module_fingerprint(net)
    torch = _torch()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(ident, trust_remote_code=trust_code)
    except (OSError, ValueError, KeyError, TypeError):
        tok = None
    if tok is not None:
        limit = min(int(tok.model_max_length), int(getattr(net.config, "max_position_embeddings", 512)))

        def prepare_text(raw: Any) -> Any:
            return dict(tok(list(raw), padding=True, truncation=True, max_length=limit, return_tensors="pt"))

        return Encoder(net, name=spec, modality="text", call=lambda m, b: m(**b), prepare=prepare_text,
                       fingerprint=fp)
    try:
        proc = transformers.AutoImageProcessor.from_pretrained(ident, trust_remote_code=trust_code)
    except (OSError, ValueError, KeyError, TypeError):
        proc = None
    if proc is not None:
        def prepare_images(raw: Any) -> Any:
            return {"pixel_values": proc(images=list(raw), return_tensors="pt")["pixel_values"]}

        return Encoder(net, name=spec, modality="image", call=lambda m, b: m(**b), prepare=prepare_images,
                       fingerprint=fp)
    return Encoder(net, name=spec, modality="array",
                   call=lambda m, b: m(inputs_embeds=b) if b.dim() == 3 else m(b),
                   prepare=lambda raw: torch.as_tensor(raw, dtype=torch.float32), fingerprint=fp)


def _load_sentence_transformers(ident: str, spec: str, trust_code: bool) -> Any:
    st_mod = require("sentence_transformers", "sentence-transformers")
    try:
        st = st_mod.SentenceTransformer(ident, device="cpu", trust_remote_code=trust_code)
    except (OSError, ValueError) as e:
        raise _offline_error(spec, e) from e
    tokenize = getattr(st, "preprocess", None) or st.tokenize

    def prepare(raw: Any) -> Any:
        feats = tokenize(list(raw))
        return {k: v for k, v in feats.items() if hasattr(v, "dim")}

    return Encoder(st, name=spec, modality="text", call=lambda m, b: m(dict(b)),
                   pick=lambda out, b: out["sentence_embedding"], prepare=prepare)


def _load_timm(name: str, spec: str) -> Any:
    timm = require("timm", "timm")
    from rankme.inputs import image_transform

    try:
        net = timm.create_model(name, pretrained=True)
    except Exception as e:  # hub/network errors come in many types
        raise _offline_error(spec, e) from e
    cfg = timm.data.resolve_model_data_config(net)
    size = tuple(cfg.get("input_size", (3, 224, 224)))[1:]
    prep = image_transform(size, cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225)))
    return Encoder(net, name=spec, modality="image",
                   call=lambda m, b: m.forward_head(m.forward_features(b), pre_logits=True), prepare=prep)


def load_encoder(spec: str, *, trust_code: bool = False, image_size: int = 224) -> Any:
    """Load an encoder from a spec (``hf:``, ``sentence-transformers:``/``st:``, ``timm:``, ``torch:``).

    >>> load_encoder("torch:torch.nn:Identity").modality
    'array'
    >>> load_encoder("onnx:model")
    Traceback (most recent call last):
    ...
    ValueError: unknown model spec 'onnx:model'; use hf:<id-or-folder>, sentence-transformers:<id-or-folder>, timm:<name> or torch:<module:function>
    """
    scheme, sep, ident = spec.partition(":")
    if not sep or not ident:
        scheme, ident = "", spec
    if scheme == "hf":
        return _load_hf(ident, spec, trust_code)
    if scheme in ("sentence-transformers", "st"):
        return _load_sentence_transformers(ident, spec, trust_code)
    if scheme == "timm":
        return _load_timm(ident, spec)
    if scheme == "torch":
        net = load_factory(ident)()
        if not isinstance(net, _torch().nn.Module):
            raise ValueError(f"{spec}: the factory returned a {type(net).__name__}, not a torch.nn.Module")
        return Encoder(net, name=spec, modality="array")
    raise ValueError(f"unknown model spec {spec!r}; use hf:<id-or-folder>, sentence-transformers:<id-or-folder>, "
                     "timm:<name> or torch:<module:function>")


def factory_encoders(factory: str, checkpoints: Sequence[str | Path], *, trust_code: bool = False) -> list[Any]:
    """One encoder per checkpoint: ``factory()`` (``module:function``) with the checkpoint's weights loaded."""
    fn = load_factory(factory)
    out = []
    for ckpt in checkpoints:
        net = load_checkpoint(fn(), ckpt, trust_code=trust_code)
        fp = hashlib.sha256(f"{factory}|{file_fingerprint(ckpt)}".encode()).hexdigest()
        out.append(Encoder(net, name=str(ckpt), modality="array", fingerprint=fp))
    return out

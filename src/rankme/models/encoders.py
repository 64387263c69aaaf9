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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError
from rankme.core.optional import require
from rankme.io.files import file_fingerprint
from rankme.models.checkpoints import load_checkpoint, load_factory
from rankme.models.preprocess import image_transform
from rankme.monitor.taps import pool_output

__all__ = ["OUTPUT", "Encoder", "factory_encoders", "load_encoder"]

OUTPUT = "output"
"""Name of the tap on the encoder's final embedding."""


def _torch() -> Any:
    return require("torch", "torch", "scoring models")


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

    Examples:
        >>> import torch
        >>> enc = Encoder(torch.nn.Linear(3, 2), name="lin", modality="array")
        >>> enc(enc.prepare([[1.0, 2.0, 3.0]])).shape
        torch.Size([1, 2])
    """
    torch = _torch()

    def default_prepare(raw: Any) -> Any:
        return torch.as_tensor(np.asarray(raw) if isinstance(raw, list) else raw, dtype=torch.float32)

    enc = _encoder_class()(
        net, name=name, modality=modality, call=call or (lambda m, b: m(b)),
        pick=pick or (lambda out, b: pool_output(out, "mean", b.get("attention_mask") if isinstance(b, dict) else None)),
        prepare=prepare or default_prepare, fingerprint=fingerprint or _module_fingerprint(net))
    return enc.eval()  # scored in eval mode, and left there


def _offline_error(spec: str, e: BaseException) -> EmbeddingError:
    return EmbeddingError(
        f"{spec}: could not load it ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). A hub id needs "
        "network access or a copy in the local cache (offline: HF_HUB_OFFLINE=1); a local folder must hold the "
        "model's config and weights")


def _needs_remote_code(transformers: Any, ident: str) -> bool:
    """Whether the model's config maps its classes to code in its repository (``auto_map``), which loading it
    without ``trust_code`` refuses: read from its ``config.json`` (no code runs), not from the refusal's text."""
    try:
        config, _ = transformers.PretrainedConfig.get_config_dict(ident)
    except (OSError, ValueError):
        return False
    return bool(config.get("auto_map"))


def _load_hf(ident: str, spec: str, trust_code: bool) -> Any:
    transformers = require("transformers", "transformers")
    try:
        net = transformers.AutoModel.from_pretrained(ident, trust_remote_code=trust_code)
    except ValueError as e:
        if not trust_code and _needs_remote_code(transformers, ident):
            raise EmbeddingError(f"{spec}: the model's code lives in its repository and would run on load; "
                                 "pass trust_code=True only if you trust it", names=("trust_code",)) from e
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

    Examples:
        >>> load_encoder("torch:torch.nn:Identity").modality
        'array'
        >>> load_encoder("onnx:model")
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: unknown model spec 'onnx:model'; use hf:<id-or-folder>, sentence-transformers:<id-or-folder>, timm:<name> or torch:<module:function>
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
        net = load_factory(ident, param="model")()
        if not isinstance(net, _torch().nn.Module):
            raise InputError(f"{spec}: the factory returned a {type(net).__name__}, not a torch.nn.Module",
                             param="model")
        return Encoder(net, name=spec, modality="array")
    raise InputError(f"unknown model spec {spec!r}; use hf:<id-or-folder>, sentence-transformers:<id-or-folder>, "
                     "timm:<name> or torch:<module:function>", param="model")


def factory_encoders(factory: str | Callable[[], Any], checkpoints: Sequence[str | Path], *,
                     trust_code: bool = False) -> list[Any]:
    """One encoder per checkpoint: ``factory()`` (a ``"module:function"`` string or a callable) with the checkpoint's
    weights loaded."""
    fn = load_factory(factory) if isinstance(factory, str) else factory
    if not callable(fn):
        raise InputError(f"factory must be 'module:function' or a callable, got {type(factory).__name__}",
                         param="factory")
    ident = factory if isinstance(factory, str) else f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', fn)}"
    out = []
    for ckpt in checkpoints:
        net = load_checkpoint(fn(), ckpt, trust_code=trust_code)
        fp = hashlib.sha256(f"{ident}|{file_fingerprint(ckpt)}".encode()).hexdigest()
        out.append(Encoder(net, name=str(ckpt), modality="array", fingerprint=fp))
    return out

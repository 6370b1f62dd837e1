"""A user's trained model from a ``.pt`` file, loaded without ever unpickling code.

:func:`load_user_model` reads the file with ``torch.load(path, weights_only=True)``: PyTorch's restricted unpickler,
which builds tensors and plain containers only. Two contents are accepted:

* **a whole module** saved with ``torch.save(model)``, when it is an ``nn.Sequential`` made only of the torch layers
  in :data:`USER_MODULES` (``Linear``, ``Conv2d``, ``ReLU``, ``LeakyReLU``, ``Tanh``, ``Sigmoid``, ``GELU``,
  ``Identity``, ``Flatten``, ``Unflatten``, ``MaxPool2d``, ``Dropout``, ``BatchNorm1d``): these classes (and nothing
  else) are allow-listed for the restricted unpickler; a file naming any other class is refused before loading, with
  the classes it names. The model files store such a net in its inference form (dropout as identity, a
  ``BatchNorm1d`` right after a ``Linear`` folded into it: :func:`rmtcompress.pruning.inference_form`);
* **a state dict** (``torch.save(model.state_dict())``, or a checkpoint dict holding it under ``"state_dict"``,
  ``"model_state_dict"`` or ``"model"``) of an ``nn.Sequential`` **MLP**, rebuilt from its keys and shapes by this
  rule: every key is ``"<i>.weight"``, ``"<i>.bias"`` or ``"<i>.weight_mask"`` (a pruning mask of
  :func:`rmtcompress.pruning.prune`, applied to the weight) with integer module indices ``i``; every weight is 2-D
  ``(out, in)``; consecutive layers chain (``out`` of one = ``in`` of the next). Layer ``i`` becomes
  ``nn.Linear(in, out)`` at index ``i``; the index right after each layer but the last gets the activation
  (``nn.ReLU`` by default) and any further index between two layers an ``nn.Identity`` (e.g. where a ``Dropout``
  was), so the rebuilt model's ``state_dict`` has the file's keys (masks applied and dropped). A convolutional state dict is refused:
  its strides, padding, pooling and flattening are not in the file (save the whole module instead).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FormatError, InvalidParameterError, MissingFileError

__all__ = ["USER_MODULES", "load_user_model"]

USER_MODULES: tuple[type[nn.Module], ...] = (
    nn.Sequential,
    nn.Linear,
    nn.Conv2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.MaxPool2d,
    nn.Dropout,
    nn.BatchNorm1d,
)
"""torch.nn classes a whole-module ``.pt`` file may contain (allow-listed for the restricted unpickler)."""

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
_KEY = re.compile(r"^(\d+)\.(weight|bias|weight_mask)$")
_WRAPPERS = ("state_dict", "model_state_dict", "model")
_ALLOWED_NAMES = {f"{cls.__module__}.{cls.__qualname__}" for cls in USER_MODULES}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def load_user_model(path: str | os.PathLike[str], *, activation: str = "relu") -> nn.Sequential:
    """Load a trained ``nn.Sequential`` from a ``.pt`` file (whole module or MLP state dict), never unpickling code.

    Args:
        path: The ``.pt`` / ``.pth`` file.
        activation: Activation inserted between the layers of a rebuilt state-dict MLP: ``"relu"`` (default),
            ``"tanh"``, ``"sigmoid"`` or ``"gelu"`` (a state dict does not record it).

    Returns:
        The model in evaluation mode (masked weights of a pruned state dict are exact zeros).

    Raises:
        MissingFileError: If ``path`` does not exist.
        FormatError: Not a torch file; a file that pickles anything but tensors, containers and the allow-listed
            torch layers (the message names the classes); a whole module that is not an ``nn.Sequential``.
        InvalidParameterError: A state dict that does not determine an MLP (the message says which key or shape and
            what is needed), or an unknown ``activation``.
    """
    if activation not in _ACTIVATIONS:
        raise InvalidParameterError(
            f"activation must be one of {', '.join(_ACTIVATIONS)}; got {activation!r}"
        )
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no such model file: {p}")
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(p)
    except Exception as exc:  # not a zip checkpoint, truncated, …
        raise FormatError(f"{p} is not a readable torch .pt file: {type(exc).__name__}: {exc}") from exc
    refused = sorted(set(unsafe) - _ALLOWED_NAMES)
    if refused:
        raise FormatError(
            f"{p} pickles {', '.join(refused)}: only state dicts (tensors) or an nn.Sequential of the torch layers "
            f"{', '.join(c.__name__ for c in USER_MODULES[1:])} are loaded (arbitrary code is never unpickled); "
            "save model.state_dict() instead"
        )
    try:
        with torch.serialization.safe_globals(list(USER_MODULES)):
            obj = torch.load(p, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        raise FormatError(f"{p} cannot be loaded with torch.load(weights_only=True): {exc}") from exc
    if isinstance(obj, nn.Module):
        if not isinstance(obj, nn.Sequential):
            raise FormatError(f"{p} holds a {type(obj).__name__}, not an nn.Sequential")
        return obj.eval()
    if isinstance(obj, Mapping):
        return _from_state_dict(_unwrap(obj, p), _ACTIVATIONS[activation], p).eval()
    raise FormatError(f"{p} holds a {type(obj).__name__}: expected a state dict or an nn.Sequential")


def _unwrap(obj: Mapping[Any, Any], p: Path) -> Mapping[str, torch.Tensor]:
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for key in _WRAPPERS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return inner
    raise InvalidParameterError(
        f"{p} holds a dict that is not a state dict (keys {sorted(map(str, obj))[:8]}); expected tensors keyed "
        f"'<i>.weight' / '<i>.bias', possibly under one of {', '.join(map(repr, _WRAPPERS))}"
    )


def _from_state_dict(sd: Mapping[str, torch.Tensor], act: type[nn.Module], p: Path) -> nn.Sequential:
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        m = _KEY.match(str(key))
        if m is None:
            raise InvalidParameterError(
                f"{p}: state-dict key {key!r} is not '<i>.weight', '<i>.bias' or '<i>.weight_mask': only "
                "nn.Sequential MLPs of nn.Linear layers are rebuilt from a state dict (save the whole module with "
                "torch.save(model) for other architectures)"
            )
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
    order = sorted(layers)
    prev_out: int | None = None
    for i in order:
        parts = layers[i]
        w = parts.get("weight")
        if w is None:
            raise InvalidParameterError(f"{p}: module {i} has {sorted(parts)} but no '{i}.weight'")
        if w.dim() == 4:
            raise InvalidParameterError(
                f"{p}: '{i}.weight' is a convolution kernel {tuple(w.shape)}: a CNN's strides, padding, pooling and "
                "flattening are not in a state dict; save the whole module with torch.save(model)"
            )
        if w.dim() != 2 or not w.dtype.is_floating_point:
            raise InvalidParameterError(
                f"{p}: '{i}.weight' must be a 2-D float (out, in) matrix; got {tuple(w.shape)}"
            )
        b = parts.get("bias")
        if b is not None and tuple(b.shape) != (w.shape[0],):
            raise InvalidParameterError(
                f"{p}: '{i}.bias' has shape {tuple(b.shape)}, expected ({w.shape[0]},)"
            )
        mask = parts.get("weight_mask")
        if mask is not None and tuple(mask.shape) != tuple(w.shape):
            raise InvalidParameterError(
                f"{p}: '{i}.weight_mask' has shape {tuple(mask.shape)}, expected {tuple(w.shape)}"
            )
        if prev_out is not None and w.shape[1] != prev_out:
            raise InvalidParameterError(
                f"{p}: '{i}.weight' takes {w.shape[1]} inputs but the previous layer gives {prev_out}: the layers do "
                "not chain as an nn.Sequential MLP"
            )
        prev_out = int(w.shape[0])
    net = nn.Sequential()
    for pos, i in enumerate(order):
        w = layers[i]["weight"].detach().to(torch.float32)
        mask = layers[i].get("weight_mask")
        if mask is not None:
            w = w * mask.to(torch.float32)
        b = layers[i].get("bias")
        lin = nn.Linear(int(w.shape[1]), int(w.shape[0]), bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if b is not None:
                assert lin.bias is not None
                lin.bias.copy_(b.detach().to(torch.float32))
        net.add_module(str(i), lin)
        if pos + 1 < len(order):
            for j in range(i + 1, order[pos + 1]):
                net.add_module(str(j), act() if j == i + 1 else nn.Identity())
            if order[pos + 1] == i + 1:
                raise InvalidParameterError(
                    f"{p}: layers {i} and {i + 1} are adjacent: an MLP state dict needs an activation index between "
                    "two linear layers"
                )
    return net

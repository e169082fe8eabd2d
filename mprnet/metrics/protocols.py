"""The paper's scoring protocols as plain functions on image arrays (BasicSR style).

``y_channel``  Deraining (Test100, Rain100H, Rain100L, Test2800, Test1200), ``evaluate_PSNR_SSIM.m``:
               Y of MATLAB ``rgb2ycbcr`` (uint8, rounded as MATLAB returns it), PSNR
               20·log10(255/RMSE), Wang's ``ssim_index`` ('valid' 11×11 Gaussian σ 1.5, L 255).
``rgb``        GoPro, HIDE, ``evaluate_GOPRO_HIDE.m``: MATLAB ``psnr`` and ``ssim`` on the uint8
               H×W×3 arrays (MSE over all channels; SSIM of the 3-D volume, replicate padding,
               same-size map).
``sidd``       SIDD validation, ``evaluate_SIDD.m``: the same two MATLAB functions on float [0,1]
               data (peak 1, C1 = 0.01², C2 = 0.03²), predictions unquantised.
``realblur``   RealBlur-J/-R, ``evaluate_RealBlur.py``: see :mod:`mprnet.metrics.realblur`.
``dnd``        DND: no public ground truth; the restored float crops are bundled (:mod:`.dnd`).

:data:`PROTOCOL_REGISTRY` holds one :class:`Protocol` record per name: its functions and what
scoring (:mod:`.scoring`), the study (what ``mprnet restore`` keeps, which inputs it reads, what is
scored or bundled) and the alternative rulers (:mod:`.rulers`) need to know of it.

The batch functions take N×H×W×3 arrays of one size and return (psnr, ssim) NumPy vectors;
the single-image functions are thin wrappers. Computation is float64 throughout, on ``device``
(default: CUDA when available, else CPU). On a CPU the work runs through fused Numba kernels, one
image per thread (:mod:`.kernels_cpu`); on any other torch device through batched torch (:mod:`.kernels`);
``backend="torch"`` runs the torch code on the CPU too (the tests compare both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .realblur import psnr_ssim_realblur


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


BACKENDS = ("numba", "torch")


def _backend(device: str | None, backend: str | None) -> tuple[str, str]:
    """(backend, device): by default Numba threads on a CPU, batched torch on a GPU (see kernels_cpu)."""
    device = device or default_device()
    if backend is None:
        backend = "numba" if device == "cpu" else "torch"
    if backend not in BACKENDS or (backend == "numba" and device != "cpu"):
        raise ConfigError(f"backend {backend!r} cannot run on device {device!r}")
    if device != "cpu":
        import torch

        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as exc:
            raise ConfigError(f"device {device!r} is not available ({str(exc).splitlines()[0]})") from None
    return backend, device


def _as_tensor(array: np.ndarray, device: str):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _check_batch(pred: np.ndarray, target: np.ndarray, dtype, ndim: int) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    for name, a in (("prediction", pred), ("target", target)):
        if a.ndim != ndim or (dtype is not None and a.dtype != dtype):
            kind = np.dtype(dtype).name if dtype is not None else "float"
            raise ValueError(f"{name}: expected a {ndim}-D {kind} array, got {a.dtype} {a.shape}")


def _split(results: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r[0] for r in results], np.float64), np.array([r[1] for r in results], np.float64)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y channel of MATLAB ``rgb2ycbcr`` for uint8 …×H×W×3 input, returned as uint8 like MATLAB."""
    from .kernels_cpu import rgb_to_y as to_y

    if image.dtype != np.uint8 or image.shape[-1] != 3:
        raise ValueError(f"rgb_to_y expects uint8 …×3, got {image.dtype} {image.shape}")
    return to_y(image)


def y_channel_batch(
    pred: np.ndarray, target: np.ndarray, *, device: str | None = None, luma: bool = False, workers: int = 2,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """PSNR and SSIM of the deraining script on uint8 batches N×H×W×3.

    ``luma=True`` takes N×H×W uint8 planes instead, used as Y as they are: the MATLAB script
    only calls ``rgb2ycbcr`` when ``size(img, 3) == 3``, so grayscale files are scored raw.
    """
    _check_batch(pred, target, np.uint8, 3 if luma else 4)
    if min(pred.shape[1:3]) < 11:
        raise ValueError(f"Wang's ssim_index needs images of at least 11×11 pixels, got {pred.shape[1:3]}")
    backend, device = _backend(device, backend)
    if backend == "numba":
        from . import kernels_cpu

        return _split(kernels_cpu.map_images(
            lambda i: kernels_cpu.y_psnr_ssim_one(pred[i], target[i], luma), len(pred), workers))

    import torch

    from . import kernels

    p, t = _as_tensor(pred, device), _as_tensor(target, device)
    if not luma:
        p = torch.stack([kernels.rgb_to_y_matlab(p[i]) for i in range(p.shape[0])])
        t = torch.stack([kernels.rgb_to_y_matlab(t[i]) for i in range(t.shape[0])])
    psnr = kernels.psnr_from_sse(kernels.sse_uint8(p, t), p[0].numel(), 255.0)
    ssim = kernels.ssim_valid(p.to(torch.float64), t.to(torch.float64), 255.0)
    return psnr.cpu().numpy(), ssim.cpu().numpy()


def rgb_batch(
    pred: np.ndarray, target: np.ndarray, *, device: str | None = None, workers: int = 2,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``psnr`` and ``ssim`` on uint8 batches N×H×W×C (C = 3; C = 1 for grayscale pairs)."""
    _check_batch(pred, target, np.uint8, 4)
    return _volume_batch(pred, target, 255.0, device, workers, backend)


def sidd_batch(
    pred: np.ndarray, target: np.ndarray, *, device: str | None = None, workers: int = 2,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``psnr`` (peak 1) and 3-D ``ssim`` (L = 1) on float batches N×H×W×C in [0, 1].

    Pass the float32 values MATLAB would see: the unquantised network output and
    ``im2single(gt)`` (see :func:`uint8_to_single`); arithmetic is float64, so results are the
    exact values of MATLAB's formulas (MATLAB itself computes in single, ~1e-6 away).
    """
    _check_batch(pred, target, None, 4)
    return _volume_batch(pred, target, 1.0, device, workers, backend)


def _volume_batch(pred, target, peak: float, device: str | None, workers: int, backend: str | None) -> tuple[np.ndarray, np.ndarray]:
    backend, device = _backend(device, backend)
    if backend == "numba":
        from . import kernels_cpu

        return _split(kernels_cpu.map_images(
            lambda i: kernels_cpu.volume_psnr_ssim_one(pred[i], target[i], peak), len(pred), workers))

    import torch

    from . import kernels

    p, t = _as_tensor(pred, device), _as_tensor(target, device)
    if p.dtype == torch.uint8:
        sse = kernels.sse_uint8(p, t)
    else:
        sse = (p.to(torch.float64) - t.to(torch.float64)).square().flatten(1).sum(1)
    psnr = kernels.psnr_from_sse(sse, p[0].numel(), peak)
    ssim = kernels.ssim_volume(p.permute(0, 3, 1, 2).to(torch.float64), t.permute(0, 3, 1, 2).to(torch.float64), peak)
    return psnr.cpu().numpy(), ssim.cpu().numpy()


def uint8_to_single(image: np.ndarray) -> np.ndarray:
    """MATLAB ``im2single`` of uint8 data: single(x)/255 rounded to float32."""
    return image.astype(np.float32) / np.float32(255.0)


def _one(batch_fn, pred: np.ndarray, target: np.ndarray, **kwargs) -> tuple[float, float]:
    psnr, ssim = batch_fn(pred[None], target[None], **kwargs)
    return float(psnr[0]), float(ssim[0])


def psnr_ssim_y(pred: np.ndarray, target: np.ndarray, *, device: str | None = None,
                backend: str | None = None) -> tuple[float, float]:
    """``y_channel`` protocol on one pair of uint8 H×W×3 images."""
    return _one(y_channel_batch, pred, target, device=device, backend=backend)


def psnr_ssim_rgb(pred: np.ndarray, target: np.ndarray, *, device: str | None = None,
                  backend: str | None = None) -> tuple[float, float]:
    """``rgb`` protocol on one pair of uint8 H×W×3 images."""
    return _one(rgb_batch, pred, target, device=device, backend=backend)


def psnr_ssim_sidd(pred: np.ndarray, target: np.ndarray, *, device: str | None = None,
                   backend: str | None = None) -> tuple[float, float]:
    """``sidd`` protocol on one pair: float prediction in [0,1] (or uint8) and uint8 (or float) target."""
    pred = uint8_to_single(pred) if pred.dtype == np.uint8 else pred
    target = uint8_to_single(target) if target.dtype == np.uint8 else target
    return _one(sidd_batch, pred, target, device=device, backend=backend)


def _psnr_ssim_realblur(pred: np.ndarray, target: np.ndarray, *, device: str | None = None,
                        backend: str | None = None) -> tuple[float, float]:
    """``realblur`` protocol on one pair of uint8 H×W×3 images (always on the CPU: OpenCV's ECC)."""
    return psnr_ssim_realblur(pred, target)


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Protocol:
    """One of the paper's rulers, and what the study's steps need to know of it.

    ``title`` names it in messages. ``score_pair(pred, target, *, device, backend) -> (psnr, ssim)``
    scores one pair;
    ``score_batch(pred, target, *, device) -> (psnr[N], ssim[N])`` N pairs of one size at once
    (None: scored pair by pair, ``realblur``'s alignment). ``datasets``: the paper's test sets
    scored so. ``float_predictions``: scored on unquantised float predictions (read from
    ``<pred>/float/<stem>.npy``, targets as ``im2single``). ``min_side``: the smallest image side
    it scores (its SSIM window), in pixels. ``grey``: how a pair of one-channel images is scored:
    ``luma`` (the grey values are Y), ``2d`` (MATLAB's 2-D PSNR/SSIM) or ``refuse``.
    ``ground_truth``: False for a test set without public targets (``dnd``: its restored images are
    bundled for the online benchmark). ``restore_float``: the restored images must keep their
    unquantised float values (``mprnet restore --save-float``); ``float_inputs``: the inputs are the
    exact float crops ``input_float/*.npy`` rather than their 8-bit images.
    """

    name: str
    title: str
    datasets: tuple[str, ...]
    score_pair: Callable | None
    score_batch: Callable | None
    float_predictions: bool = False
    min_side: int = 1
    grey: str = "2d"
    ground_truth: bool = True
    restore_float: bool = False
    float_inputs: bool = False


PROTOCOL_REGISTRY: dict[str, Protocol] = {p.name: p for p in (
    Protocol("y_channel", "Y-channel", ("Test100", "Rain100H", "Rain100L", "Test2800", "Test1200"), psnr_ssim_y,
             y_channel_batch, min_side=11, grey="luma"),
    Protocol("rgb", "RGB", ("GoPro", "HIDE"), psnr_ssim_rgb, rgb_batch),
    Protocol("realblur", "RealBlur", ("RealBlur-J", "RealBlur-R"), _psnr_ssim_realblur, None, min_side=11,
             grey="refuse"),
    Protocol("sidd", "SIDD", ("SIDD",), psnr_ssim_sidd, sidd_batch, float_predictions=True, restore_float=True),
    Protocol("dnd", "DND", ("DND",), None, None, ground_truth=False, restore_float=True, float_inputs=True),
)}

#: The protocols that score against ground truth (``mprnet score --protocol``).
PROTOCOLS = tuple(name for name, p in PROTOCOL_REGISTRY.items() if p.ground_truth)
#: Datasets the paper scores with each protocol (paper Tables 1–4, official evaluation scripts).
PROTOCOL_DATASETS = {name: PROTOCOL_REGISTRY[name].datasets for name in PROTOCOLS}


def get_protocol(name: str, *, scored: bool = False) -> Protocol:
    """The registry's record of ``name``; ``scored``: only protocols with ground truth.
    Raises ValueError naming the choices for any other name."""
    record = PROTOCOL_REGISTRY.get(name)
    if record is None or (scored and not record.ground_truth):
        choices = PROTOCOLS if scored else tuple(PROTOCOL_REGISTRY)
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(choices)}")
    return record


def psnr_ssim(protocol: str, pred: np.ndarray, target: np.ndarray, *, device: str | None = None,
              backend: str | None = None) -> tuple[float, float]:
    """Score one pair of arrays with the named protocol (ValueError for an unknown one)."""
    return get_protocol(protocol, scored=True).score_pair(pred, target, device=device, backend=backend)

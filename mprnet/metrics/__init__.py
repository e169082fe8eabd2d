"""PSNR/SSIM exactly as the MPRNet paper computed them, fast.

Protocols (the paper's evaluation scripts per dataset; definitions in :mod:`.protocols`): ``y_channel``
(deraining), ``rgb`` (GoPro, HIDE), ``realblur`` (RealBlur-J/R), ``sidd`` (SIDD), and ``dnd`` (DND, no
ground truth: bundled); :data:`PROTOCOL_REGISTRY` has one record per protocol, which scoring, the
study and the rulers consult instead of testing names.

* :func:`score_folders` scores two folders (pairs by stem; input policy in :mod:`.scoring`),
  :func:`psnr_ssim` one pair of arrays, the ``*_batch`` functions N same-size pairs (the
  study's per-dataset means and the deraining "Average" are :mod:`mprnet.study.aggregate`'s).
* Backends, both float64 and held to 1e-6 of the reference by the tests: fused Numba kernels
  with one image per thread on a CPU (:mod:`.kernels_cpu`), batched torch on a GPU (:mod:`.kernels`).
* :mod:`.reference` is a slow literal float64 transcription of the MATLAB code, the tests'
  oracle; :mod:`.realblur` is the RealBlur authors' aligned, masked scoring;
  :mod:`.dnd` writes the DND online-benchmark bundle.
* :mod:`.rulers`: the rulers people use instead of the paper's (scikit-image, torchmetrics, BasicSR,
  IQA-PyTorch, the paper's scripts with one step changed, PSNR of the mean MSE) and
  ``ruler_sensitivity``, how far each one moves the scores of a test set.
"""

from .protocols import (
    PROTOCOL_DATASETS,
    PROTOCOL_REGISTRY,
    PROTOCOLS,
    Protocol,
    get_protocol,
    psnr_ssim,
    psnr_ssim_rgb,
    psnr_ssim_sidd,
    psnr_ssim_y,
    rgb_batch,
    rgb_to_y,
    sidd_batch,
    uint8_to_single,
    y_channel_batch,
)
from .scoring import find_pairs, score_folders, summarize, write_scores_csv

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_DATASETS",
    "PROTOCOL_REGISTRY",
    "Protocol",
    "find_pairs",
    "get_protocol",
    "psnr_ssim",
    "psnr_ssim_rgb",
    "psnr_ssim_sidd",
    "psnr_ssim_y",
    "rgb_batch",
    "rgb_to_y",
    "score_folders",
    "sidd_batch",
    "summarize",
    "uint8_to_single",
    "write_scores_csv",
    "y_channel_batch",
]

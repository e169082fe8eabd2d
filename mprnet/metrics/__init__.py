"""PSNR/SSIM exactly as the MPRNet paper computed them, fast.

Protocols (``official_architecture.md`` §8): ``y_channel`` (deraining), ``rgb`` (GoPro,
HIDE), ``realblur`` (RealBlur-J/R), ``sidd`` (SIDD). :func:`score_folders` scores two folders;
:func:`psnr_ssim` one pair of arrays; :func:`aggregate` builds the paper's per-dataset table.
:mod:`mprnet.metrics.reference` is a slow literal transcription of the MATLAB code used as
the tests' oracle; :mod:`mprnet.metrics.dnd` writes the DND submission bundle.
"""

from .protocols import (
    PROTOCOL_DATASETS,
    PROTOCOLS,
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
from .scoring import DERAINING_AVERAGE, aggregate, find_pairs, score_folders, summarize, write_scores_csv

__all__ = [
    "DERAINING_AVERAGE",
    "PROTOCOLS",
    "PROTOCOL_DATASETS",
    "aggregate",
    "find_pairs",
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

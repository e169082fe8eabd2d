"""Scoring speed: our batched protocols against scikit-image on the same in-memory pairs.

200 pairs of 481×321 uint8 images (the size of the Rain100/Test1200 images), fixed seed.
``y_channel``: our MATLAB-exact Y PSNR + Wang SSIM vs scikit-image ``peak_signal_noise_ratio`` +
``structural_similarity`` (Gaussian weights, σ 1.5, population covariance, data range 255)
on the same Y planes. ``rgb``: our MATLAB psnr + 3-D ssim vs scikit-image on the RGB arrays
(``channel_axis=-1``). Both are timed in the same run, alternating every ``--batch`` pairs;
the ratio is the figure to read. On a shared machine the wall-clock ratio understates ours (we use both cores,
scikit-image one, and other processes take cores from us first), so the CPU-time ratio is
printed too. Target: ≥ 5× scikit-image in wall-clock time on an otherwise idle 2-core CPU.

    python benchmarks/metrics.py [--pairs 200] [--threads 2] [--device cpu] [--default-malloc]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory instead of returning it to the OS (Linux only).

    scikit-image allocates a dozen multi-megabyte temporaries per image. Depending on glibc's
    adaptive mmap threshold, each can come back as fresh pages that fault on first touch, and
    then its Y-channel SSIM runs at 17 ms per image instead of 7.7 ms. Pinning the thresholds
    gives scikit-image its best case, so the ratio we print is not flattered by that.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 31))


def make_pairs(n: int, height: int = 321, width: int = 481, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Textured targets (smoothed noise plus edges) and noisy 'restorations' of them."""
    from scipy.ndimage import gaussian_filter, zoom

    rng = np.random.default_rng(seed)
    targets = np.empty((n, height, width, 3), np.uint8)
    preds = np.empty_like(targets)
    for i in range(n):
        coarse = rng.random((height // 8 + 1, width // 8 + 1, 3))
        scene = zoom(coarse, (8, 8, 1), order=1)[:height, :width] + 0.15 * gaussian_filter(
            rng.random((height, width, 3)), (1, 1, 0))
        scene = (scene - scene.min()) / (scene.max() - scene.min())
        targets[i] = np.rint(scene * 255)
        preds[i] = np.clip(targets[i] + rng.normal(0, 8, (height, width, 3)), 0, 255)
    return preds, targets


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> np.ndarray:
    """[wall seconds, CPU seconds of all this process's threads] since ``start``."""
    wall, cpu = _clock()
    return np.array([wall - start[0], cpu - start[1]])


def score_ours(protocol: str, preds: np.ndarray, targets: np.ndarray, device: str) -> np.ndarray:
    from mprnet.metrics import rgb_batch, y_channel_batch

    fn = y_channel_batch if protocol == "y_channel" else rgb_batch
    return fn(preds, targets, device=device)[1]


def score_skimage(protocol: str, preds: np.ndarray, targets: np.ndarray) -> np.ndarray:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    channel_axis = -1 if protocol == "rgb" else None
    ssim = []
    for p, t in zip(preds, targets):
        peak_signal_noise_ratio(t, p, data_range=255)
        ssim.append(structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=255, channel_axis=channel_axis))
    return np.array(ssim)


def compare(protocol: str, preds: np.ndarray, targets: np.ndarray, device: str, batch: int):
    """Time both on the same pairs, alternating chunk by chunk so that load changes hit both."""
    from mprnet.metrics import rgb_to_y

    # scikit-image gets the Y planes for free (our time includes the conversion).
    ski_preds, ski_targets = (rgb_to_y(preds), rgb_to_y(targets)) if protocol == "y_channel" else (preds, targets)
    ours_t, ski_t = [], []
    ours_ssim, ski_ssim = [], []
    for i in range(0, len(preds), batch):
        start = _clock()
        ours_ssim.append(score_ours(protocol, preds[i:i + batch], targets[i:i + batch], device))
        ours_t.append(_since(start))
        start = _clock()
        ski_ssim.append(score_skimage(protocol, ski_preds[i:i + batch], ski_targets[i:i + batch]))
        ski_t.append(_since(start))
    return np.array(ours_t), np.array(ski_t), np.concatenate(ours_ssim), np.concatenate(ski_ssim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32,
                        help="pairs per call of our batch functions (32: the chunk size of score_folders)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone (scikit-image then often runs ~2× slower)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    pinned = False if args.default_malloc else keep_freed_memory()
    preds, targets = make_pairs(args.pairs)
    print(f"{args.pairs} pairs of {preds.shape[2]}×{preds.shape[1]}, torch {torch.__version__} on {args.device}, "
          f"{torch.get_num_threads()} threads, glibc malloc thresholds pinned: {pinned}")
    # Warm-up: imports and first-call set-up (scikit-image's lazy imports take ~1 s) stay out.
    for protocol in ("y_channel", "rgb"):
        score_ours(protocol, preds[:2], targets[:2], args.device)
        score_skimage(protocol, targets[:2, ..., 0] if protocol == "y_channel" else targets[:2], preds[:2, ..., 0]
                      if protocol == "y_channel" else preds[:2])
    for protocol in ("y_channel", "rgb"):
        ours_t, ski_t, ours_ssim, ski_ssim = compare(protocol, preds, targets, args.device, args.batch)
        (ours_s, ours_cpu), (ski_s, ski_cpu) = ours_t.sum(0), ski_t.sum(0)
        ours_rate, ski_rate = args.pairs / ours_s, args.pairs / ski_s
        chunk_ratio = np.median(ski_t[:, 0] / ours_t[:, 0])
        print(f"{protocol:9s}  ours {ours_rate:7.1f} img/s   scikit-image {ski_rate:6.1f} img/s   "
              f"speed-up {ours_rate / ski_rate:4.1f}× (median over chunks {chunk_ratio:4.1f}×)")
        print(f"{'':9s}  per CPU-second: ours {args.pairs / ours_cpu:7.1f} img   scikit-image "
              f"{args.pairs / ski_cpu:6.1f} img   ratio {ski_cpu / ours_cpu:4.1f}×")
        if protocol == "y_channel":
            print(f"{'':9s}  same definition: max |ΔSSIM| vs scikit-image {np.abs(ours_ssim - ski_ssim).max():.1e}")
        else:
            print(f"{'':9s}  different definitions: MATLAB 3-D volume SSIM vs scikit-image per-channel SSIM")


if __name__ == "__main__":
    main()

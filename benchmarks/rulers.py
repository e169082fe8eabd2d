"""Ruler-scoring speed: what one `ruler_scores` job spends per image (the workflow profile's figure).

One synthetic pair of ``--size`` (default 1280×720, GoPro's size; fixed seed), scored per protocol
under the paper's ruler and every image ruler that is an alternative to it
(``mprnet.metrics.rulers.rulers_for``), as ``mprnet rulers`` scores each image. One warm-up pass
(Numba compiles the paper's rulers on first use), then the mean of ``--repeats`` passes; each
ruler's own time is printed too. Run it with ``OMP_NUM_THREADS=1`` (the job's one thread) and
once more with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` (the IQA-PyTorch rulers use
torch); write the CPU (``lscpu``) next to the figures.

    OMP_NUM_THREADS=1 python benchmarks/rulers.py [--size 1280 720] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    from mprnet.metrics import psnr_ssim, rulers
    from mprnet.metrics.protocols import PROTOCOL_REGISTRY
    from mprnet.report.provenance import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--protocols", nargs="+", default=["y_channel", "rgb"], choices=list(PROTOCOL_REGISTRY))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shape = (args.size[1], args.size[0], 3)
    target = (rng.random(shape) * 255).astype(np.uint8)
    pred = np.clip(target + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)
    print(f"{cpu_name()}; one {args.size[0]}x{args.size[1]} pair, mean of {args.repeats} passes after a warm-up")
    for protocol in args.protocols:
        scorers = [("paper", lambda p, t, proto=protocol: psnr_ssim(proto, p, t))]
        scorers += [(n, rulers.RULERS[n].score) for n in rulers.rulers_for(protocol) if rulers.RULERS[n].kind == "image"]
        for _, score in scorers:
            score(pred, target)
        seconds = {}
        for name, score in scorers:
            start = time.perf_counter()
            for _ in range(args.repeats):
                score(pred, target)
            seconds[name] = (time.perf_counter() - start) / args.repeats
        parts = ", ".join(f"{name} {s:.2f}" for name, s in seconds.items())
        print(f"{protocol}: {sum(seconds.values()):.2f} s per image ({parts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

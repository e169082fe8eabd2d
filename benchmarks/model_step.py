"""Time and memory of one MPRNet step on CPU, next to the official implementation's figures.

For each preset and mode, in its own Python process (so peak RSS is per case):
  fwd+bwd: model.train(), 1x3x128x128, grads set to None, loss = sum of the output means, backward;
  fwd:     model.eval() under torch.no_grad(), 1x3x256x256.
Median of --iters iterations after --warmup warm-ups, torch with --threads threads (default 2),
peak RSS = getrusage(RUSAGE_SELF).ru_maxrss of that process. This is the protocol of the official
baseline in the reference README (official swz30/MPRNet on a 2-vCPU AMD EPYC VM, torch 2.13.0);
the ratio column divides by the faster of its runs. Those figures come from another machine; for a
ratio that does not depend on it, ``--official`` times the official model file (``MPRNet.py`` of a
swz30/MPRNet checkout; it is not part of this repository) in the same run, case by case, under the
same protocol, and prints the same-machine ratio too. Before timing, the golden fixture is rerun
to show the outputs are unchanged (max abs error vs the official outputs).

    python benchmarks/model_step.py                       # all presets, both modes
    python benchmarks/model_step.py --tasks deraining --iters 3
    python benchmarks/model_step.py --official ~/src/MPRNet/Deblurring/MPRNet.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "fixtures" / "golden_deblurring_tiny.npz"
MODES = {"fwdbwd": (128, "fwd+bwd"), "fwd": (256, "fwd no_grad")}
# official medians in seconds (one or two runs) and peak RSS in MiB, per (task, mode)
OFFICIAL = {
    ("deblurring", "fwdbwd"): ((2.928, 2.718), 2229), ("deblurring", "fwd"): ((4.933, 4.618), 1069),
    ("deraining", "fwdbwd"): ((1.096,), 993), ("deraining", "fwd"): ((1.413,), 582),
    ("denoising", "fwdbwd"): ((2.548,), 1936), ("denoising", "fwd"): ((3.670,), 1019),
}


def official_model(source: str, task: str):
    """The official ``MPRNet`` class from the file ``source``, built with the preset's widths."""
    import importlib.util

    from mprnet.model import PRESETS

    spec = importlib.util.spec_from_file_location("official_mprnet", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MPRNet(**PRESETS[task])


def run_case(task: str, mode: str, iters: int, warmup: int, threads: int, channels_last: bool,
             official_source: str | None = None) -> dict:
    import resource

    import torch

    from mprnet.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = official_model(official_source, task) if official_source else build_model(task)
    size = MODES[mode][0]
    x = torch.rand(1, 3, size, size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        if mode == "fwd":
            with torch.no_grad():
                model(x)
            return
        for p in model.parameters():
            p.grad = None
        sum(o.mean() for o in model(x)).backward()

    model.train(mode == "fwdbwd")
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"median_s": statistics.median(times), "times_s": times, "peak_rss_mib": rss_mib}


def golden_error() -> float:
    import numpy as np
    import torch

    from mprnet.model import MPRNet

    npz = np.load(GOLDEN)
    model = MPRNet(**{k[7:]: npz[k].item() for k in npz.files if k.startswith("config/")}).eval()
    model.load_state_dict({k[6:]: torch.from_numpy(npz[k]) for k in npz.files if k.startswith("param/")})
    with torch.no_grad():
        outputs = model(torch.from_numpy(npz["input"]))
    return max(float((o - torch.from_numpy(npz[f"output_{i}"])).abs().max()) for i, o in enumerate(outputs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="deblurring,deraining,denoising", help="comma-separated presets")
    parser.add_argument("--modes", default="fwdbwd,fwd", help="comma-separated: fwdbwd, fwd")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="run in channels_last memory format")
    parser.add_argument("--official", metavar="MPRNet.py",
                        help="the official model file (swz30/MPRNet): time it too, on this machine")
    parser.add_argument("--case", nargs=2, metavar=("TASK", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--case-official", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:  # child process: one measurement, JSON on stdout
        print(json.dumps(run_case(*args.case, args.iters, args.warmup, args.threads, args.channels_last,
                                  args.official if args.case_official else None)))
        return 0
    if args.official and not Path(args.official).is_file():
        parser.error(f"--official: {args.official} is not a file")

    print(f"golden check: max abs error vs official outputs = {golden_error():.2e} (limit 1e-5)")
    # other processes on a small machine inflate wall times: show how busy it was
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, torch threads {args.threads}")
    same_machine = f" {'official here':>14} {'ratio':>6} {'its RSS':>8}" if args.official else ""
    print(f"{'task':<11} {'mode':<12} {'input':<9} {'median s':>9} {'official s':>12} {'ratio':>6} "
          f"{'peak RSS MiB':>13} {'official':>9}{same_machine}")
    for task in args.tasks.split(","):
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, "--case", task, mode, "--iters", str(args.iters),
                   "--warmup", str(args.warmup), "--threads", str(args.threads)]
            cmd += ["--channels-last"] if args.channels_last else []
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            official, official_rss = OFFICIAL[(task, mode)]
            size = MODES[mode][0]
            line = (f"{task:<11} {MODES[mode][1]:<12} {size}x{size:<5} {result['median_s']:>9.3f} "
                    f"{'/'.join(f'{t:.2f}' for t in official):>12} {result['median_s'] / min(official):>6.2f} "
                    f"{result['peak_rss_mib']:>13.0f} {official_rss:>9}")
            if args.official:  # right after ours, so that a change of load hits both
                theirs = json.loads(subprocess.run(cmd + ["--official", args.official, "--case-official"],
                                                   check=True, capture_output=True, text=True).stdout)
                line += (f" {theirs['median_s']:>14.3f} {result['median_s'] / theirs['median_s']:>6.2f} "
                         f"{theirs['peak_rss_mib']:>8.0f}")
            print(line, flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())

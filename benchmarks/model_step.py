"""Time and memory of one MPRNet step on CPU, next to the official implementation.

Protocol per preset and mode:
  fwd+bwd: model.train(), 1x3x128x128, grads set to None, loss = sum of the output means, backward;
  fwd:     model.eval() under torch.no_grad(), 1x3x256x256.
torch with --threads threads (default 2), --warmup untimed steps, then --iters timed steps.

Without ``--official``, each case runs in its own Python process: median time and peak RSS
(getrusage ru_maxrss of that process), next to the official baseline of the reference README
(official swz30/MPRNet on a 2-vCPU AMD EPYC VM, torch 2.13.0; the ratio divides by the faster of
its runs). Those figures come from another machine.

With ``--official PATH`` (``MPRNet.py`` of a swz30/MPRNet checkout; it is not part of this
repository and must not be copied in), each case runs ONE process that builds both models with
the same weights (the official state dict loaded into ours) and the same input, warms both up,
then alternates them step by step for --iters rounds (ours first in even rounds, the official
model first in odd ones), so that the load of a shared machine hits both alike. It prints both
medians, their ratio, the median and max of the per-round ratios (ours / official; < 1: ours is
faster) and the max abs difference of the two models' outputs on that input. Peak RSS is not
shown there (one process holds both models). Ours runs fwd+bwd in the layout ``mprnet train``
chooses on this CPU (``train.channels_last: auto``: NCHW for the wide presets below AVX-512) and
the forward pass channels-last, as ``build_model`` and ``mprnet restore`` do (``mprnet.precision``).

Before timing, the golden fixture is rerun to show the outputs are unchanged (max abs error vs
the official outputs, limit 1e-5).

    python benchmarks/model_step.py                       # all presets, both modes
    python benchmarks/model_step.py --tasks deraining --iters 3
    python benchmarks/model_step.py --official /tmp/official/MPRNet.py --iters 7
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
    """The official ``MPRNet`` class from the file ``source`` (swz30/MPRNet's ``MPRNet.py``), built
    with the preset's widths. Raises FileNotFoundError naming ``source`` if it is not a file."""
    import importlib.util

    from mprnet.model import PRESETS

    if not Path(source).is_file():
        raise FileNotFoundError(f"official model file {source} is not a file")
    spec = importlib.util.spec_from_file_location("official_mprnet", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MPRNet(**PRESETS[task])


def _step(model, x, mode: str):
    """One step of the protocol; returns the detached outputs."""
    import torch

    if mode == "fwd":
        with torch.no_grad():
            return model(x)
    for p in model.parameters():
        p.grad = None
    outputs = model(x)
    sum(o.mean() for o in outputs).backward()
    return [o.detach() for o in outputs]


def training_layout(model, task: str):
    """``model`` in the memory layout ``mprnet train`` gives it here (``train.channels_last: auto``,
    ``mprnet.precision.layout_choice``); ``build_model``'s channels-last is restoring's layout."""
    import torch

    from mprnet.precision import layout_choice
    from mprnet.presets import PRESETS

    channels_last = layout_choice("cpu", PRESETS[task]["n_feat"]).channels_last
    return model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def run_case(task: str, mode: str, iters: int, warmup: int, threads: int, channels_last: bool) -> dict:
    """Ours alone: median seconds per step and the process's peak RSS."""
    import resource

    import torch

    from mprnet.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(task)
    size = MODES[mode][0]
    x = torch.rand(1, 3, size, size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train(mode == "fwdbwd")
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        _step(model, x, mode)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"median_s": statistics.median(times), "times_s": times, "peak_rss_mib": rss_mib}


def run_pair(task: str, mode: str, iters: int, warmup: int, threads: int, official_source: str) -> dict:
    """Ours and the official model in one process, same weights and input, steps alternated."""
    import torch

    from mprnet.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    theirs = official_model(official_source, task)
    ours = training_layout(build_model(task), task) if mode == "fwdbwd" else build_model(task)
    ours.load_state_dict(theirs.state_dict())
    size = MODES[mode][0]
    x = torch.rand(1, 3, size, size)
    for model in (ours, theirs):
        model.train(mode == "fwdbwd")
    # the first step of each is a warm-up too
    diff = max(float((a - b).abs().max()) for a, b in zip(_step(ours, x, mode), _step(theirs, x, mode)))
    for _ in range(max(warmup - 1, 0)):
        _step(ours, x, mode), _step(theirs, x, mode)
    times = {"ours": [], "official": []}
    pair = [("ours", ours), ("official", theirs)]
    for i in range(iters):
        for name, model in pair if i % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            _step(model, x, mode)
            times[name].append(time.perf_counter() - start)
    rounds = [a / b for a, b in zip(times["ours"], times["official"])]
    return {"ours_s": statistics.median(times["ours"]), "official_s": statistics.median(times["official"]),
            "round_ratio_median": statistics.median(rounds), "round_ratio_max": max(rounds),
            "max_abs_diff": diff, "times_s": times}


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
    parser.add_argument("--iters", type=int, default=5, help="timed iterations (rounds with --official)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="run in channels_last memory format")
    parser.add_argument("--official", metavar="MPRNet.py",
                        help="the official model file (swz30/MPRNet): time it in the same process, alternated")
    parser.add_argument("--case", nargs=2, metavar=("TASK", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--case-pair", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:  # child process: one measurement, JSON on stdout
        if args.case_pair:
            print(json.dumps(run_pair(*args.case, args.iters, args.warmup, args.threads, args.official)))
        else:
            print(json.dumps(run_case(*args.case, args.iters, args.warmup, args.threads, args.channels_last)))
        return 0
    if args.official and not Path(args.official).is_file():
        parser.error(f"--official: {args.official} is not a file")

    print(f"golden check: max abs error vs official outputs = {golden_error():.2e} (limit 1e-5)")
    # other processes on a small machine inflate wall times: show how busy it was
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, torch threads {args.threads}")
    if args.official:
        print(f"ours and {args.official} in one process per case, steps alternated, {args.iters} rounds "
              f"after {args.warmup} warm-ups; ratio = ours / official (< 1: ours faster)")
        print(f"{'task':<11} {'mode':<12} {'input':<9} {'ours s':>8} {'official s':>11} {'ratio':>6} "
              f"{'round med':>10} {'round max':>10} {'max |diff|':>11}")
    else:
        print(f"{'task':<11} {'mode':<12} {'input':<9} {'median s':>9} {'official s':>12} {'ratio':>6} "
              f"{'peak RSS MiB':>13} {'official':>9}")
    for task in args.tasks.split(","):
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, "--case", task, mode, "--iters", str(args.iters),
                   "--warmup", str(args.warmup), "--threads", str(args.threads)]
            size = MODES[mode][0]
            head = f"{task:<11} {MODES[mode][1]:<12} {size}x{size:<5}"
            if args.official:
                cmd += ["--official", args.official, "--case-pair"]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                print(f"{head} {r['ours_s']:>8.3f} {r['official_s']:>11.3f} {r['ours_s'] / r['official_s']:>6.2f} "
                      f"{r['round_ratio_median']:>10.2f} {r['round_ratio_max']:>10.2f} {r['max_abs_diff']:>11.1e}",
                      flush=True)
                continue
            cmd += ["--channels-last"] if args.channels_last else []
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            official, official_rss = OFFICIAL[(task, mode)]
            print(f"{head} {result['median_s']:>9.3f} {'/'.join(f'{t:.2f}' for t in official):>12} "
                  f"{result['median_s'] / min(official):>6.2f} {result['peak_rss_mib']:>13.0f} {official_rss:>9}",
                  flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())

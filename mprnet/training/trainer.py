"""The training loop behind ``mprnet train`` and ``mprnet.training.train``.

Output folder (``out_dir``):

* ``config.yaml``: the effective run config (recipe defaults filled in);
* ``checkpoint.pt``: the full training state, rewritten atomically every
  ``runtime.checkpoint_every`` iterations, at the end, and on SIGTERM/SIGUSR1;
* ``model_final.pt``: ``{"model", "config", "iteration"}`` written when training completes;
* ``model_best.pt``: the same for the best validation PSNR (when ``data.val`` is set);
* ``metrics.csv`` (iteration, epoch, lr, loss, images_per_s, val_psnr) and ``dvclive/``
  (``dvc plots show <out>/dvclive/plots/metrics`` draws the curves);
* ``train.log`` when ``mprnet train --log`` names it (the workflow does): everything printed,
  appended by every attempt (``console.guarded_console``).

Devices: CPU, one GPU, or DistributedDataParallel when launched by ``torchrun`` (read from the
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` variables; ``nccl`` on GPUs, ``gloo`` on CPU).
``data.batch_size`` is the global batch, split evenly over processes.

Preemption: SIGTERM or SIGUSR1 (what Slurm sends before preemption or the time limit) makes
every process finish its current iteration; the state is checkpointed and the command exits
with ``RESUME_EXIT_CODE`` = 75 (``EX_TEMPFAIL``: "try again"). Running the same command with
``--resume`` then continues; on CPU the final weights are bit-identical to an uninterrupted run.
Slurm signals every process of the job at once, so the progress bar and messages go through
``console.GuardedStream``: a stdout/stderr that went away (EPIPE, closed) is dropped, never raised.

A non-finite loss stops training with ``TrainingDiverged`` naming the first bad iteration;
no checkpoint is written after it, so the last good one stays as it was.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError, MPRNetError
from .checkpointing import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .config import config_differences, dump_config, resolve_config
from .console import GuardedStream

CHECKPOINT = "checkpoint.pt"
FINAL_MODEL = "model_final.pt"
BEST_MODEL = "model_best.pt"
CSV_COLUMNS = ("iteration", "epoch", "lr", "loss", "images_per_s", "val_psnr")


class TrainingInterrupted(Exception):
    """Training stopped on a signal after checkpointing; run again with ``--resume``."""

    def __init__(self, checkpoint: Path, iteration: int, signame: str):
        super().__init__(f"{signame} received: checkpoint {checkpoint} written at iteration {iteration}; "
                         f"rerun with --resume to continue")
        self.checkpoint, self.iteration, self.signame = checkpoint, iteration, signame


class TrainingDiverged(MPRNetError):
    """The loss became NaN or infinite."""


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_type: str) -> "Dist":
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        created = False
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
            created = True
        return cls(rank, world, local, created)

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def all_reduce(self, tensor, op: str = "sum"):
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor

    def close(self) -> None:
        if self.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


class _StopFlag:
    """Remembers SIGTERM/SIGUSR1 so the loop can checkpoint at the end of the iteration."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self) -> None:
        self.signame: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signame = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM/SIGUSR1 to the main process.

    Slurm signals the whole process group; a worker killed by it would make the loader raise
    before the main process could checkpoint. Workers still exit when the main process does.
    """
    for name in _StopFlag.SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)


def _pick_device(setting: str, dist_local_rank: int):
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist_local_rank)
        return torch.device("cpu")
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"runtime.device: {setting} requested but CUDA is not available")
        if setting == "cuda":
            return torch.device("cuda", dist_local_rank)
    return torch.device(setting)


def build_training_model(cfg: dict):
    """The model of a run config: ``build_model(task, **model.overrides)``, seeded init."""
    import torch

    from ..model import build_model

    torch.manual_seed(cfg["seed"])
    try:
        return build_model(cfg["task"], **cfg["model"]["overrides"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.overrides: {exc}") from None


def _model_file(model_state: dict, cfg: dict, iteration: int, **extra) -> dict:
    return {"format": "mprnet-model/1", "model": model_state, "config": cfg, "iteration": iteration, **extra}


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in _unwrap(model).state_dict().items()}


class _MetricsLog:
    """metrics.csv plus dvclive, on the main process only."""

    def __init__(self, out: Path, resume_from: int | None, enabled: bool):
        self.enabled = enabled
        self.live = None
        if not enabled:
            return
        self.csv_path = out / "metrics.csv"
        if resume_from is not None and self.csv_path.exists():
            self._truncate(resume_from)
        elif self.csv_path.exists():
            self.csv_path.unlink()
        new = not self.csv_path.exists()
        self.fh = open(self.csv_path, "a", newline="")
        self.writer = csv.DictWriter(self.fh, fieldnames=CSV_COLUMNS)
        if new:
            self.writer.writeheader()
        if resume_from is not None:
            self._truncate_dvclive(out / "dvclive", resume_from)
        try:
            from dvclive import Live

            self.live = Live(dir=str(out / "dvclive"), resume=resume_from is not None,
                             save_dvc_exp=False, dvcyaml=False)
        except Exception as exc:  # logging must never stop training
            print(f"mprnet train: warning: dvclive disabled ({exc})", file=GuardedStream(sys.stdout))
            self.live = None

    def _truncate(self, keep_through: int) -> None:
        from ..atomic import atomic_write_text

        with open(self.csv_path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["iteration"]) <= keep_through]
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.csv_path, buf.getvalue())

    @staticmethod
    def _truncate_dvclive(folder: Path, keep_through: int) -> None:
        """Drop dvclive rows logged after the checkpoint (they are about to be logged again)."""
        from ..atomic import atomic_write_text

        for tsv in (folder / "plots" / "metrics").rglob("*.tsv"):
            lines = tsv.read_text().splitlines()
            if not lines:
                continue
            header = lines[0].split("\t")
            if "step" not in header:
                continue
            col = header.index("step")
            kept = [lines[0]] + [ln for ln in lines[1:] if int(float(ln.split("\t")[col])) <= keep_through]
            atomic_write_text(tsv, "\n".join(kept) + "\n")

    def log(self, iteration: int, **values: float) -> None:
        if not self.enabled:
            return
        row = {"iteration": iteration, **{k: ("" if v is None else v) for k, v in values.items()}}
        self.writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
        self.fh.flush()
        if self.live is not None:
            self.live.step = iteration
            for key, value in values.items():
                if value is not None and key != "epoch":
                    name = f"val/{key}" if key == "val_psnr" else f"train/{key}"
                    self.live.log_metric(name, float(value))

    def close(self) -> None:
        if not self.enabled:
            return
        self.fh.close()
        if self.live is not None:
            try:
                self.live.end()
            except Exception:
                pass


def train_step(net, criterion, optimizer, scaler, inp, tar, amp_dtype=None):
    """One optimisation step; returns the (detached) loss without synchronising the device.

    The network runs under autocast when ``amp_dtype`` is set; the loss is computed in float32.
    Gradients are released (``set_to_none``) as in the official code.
    """
    import torch

    with torch.autocast(inp.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        outputs = net(inp)
    loss = criterion([o.float() for o in outputs], tar)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def train(config: dict, out_dir: str | os.PathLike, *, resume: bool = False) -> Path:
    """Train MPRNet as ``config`` says; returns the path of ``model_final.pt``.

    ``resume``: continue from ``out_dir/checkpoint.pt`` when it exists (otherwise start).
    Raises ``TrainingInterrupted`` after checkpointing on SIGTERM/SIGUSR1, ``TrainingDiverged``
    on a non-finite loss, ``ConfigError``/``DataError``/``CheckpointError`` on bad input, the
    latter three before any training step.
    """
    import torch

    cfg = resolve_config(config)
    out = Path(out_dir)
    rt = cfg["runtime"]
    want_cuda = rt["device"].startswith("cuda") or (rt["device"] == "auto" and torch.cuda.is_available())
    if want_cuda and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # before NCCL picks a device
    dist = Dist.from_env("cuda" if want_cuda else "cpu")
    previous = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    try:
        with _StopFlag() as stop:
            return _train(cfg, out, resume, dist, stop)
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.benchmark = previous[1]
        dist.close()


def _train(cfg: dict, out: Path, resume: bool, dist: Dist, stop: _StopFlag) -> Path:
    import torch
    from tqdm import tqdm

    from ..losses import StageLoss
    from .dataset import BatchKeys, TrainCrops, ValCrops, iterations_per_epoch, scan_pairs, total_iterations
    from .mixup import mixup
    from .schedule import WarmupCosine, epoch_lr, iteration_lr

    rt, data_cfg, tr = cfg["runtime"], cfg["data"], cfg["train"]
    device = _pick_device(rt["device"], dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if tr["amp"] != "none" and device.type == "cpu" and tr["amp"] == "fp16":
        raise ConfigError("train.amp: fp16 autocast needs a GPU (use bf16 or none on CPU)")
    if rt["deterministic"]:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not rt["deterministic"]

    ckpt_path = out / CHECKPOINT
    state = None
    if ckpt_path.exists():
        if not resume:
            raise ConfigError(f"{ckpt_path}: a run already exists here; pass --resume to continue it or choose another --out")
        state = load_checkpoint(ckpt_path)
        diffs = config_differences(state["config"], cfg)
        if diffs:
            raise ConfigError(f"{ckpt_path}: was trained with a different config; differing keys: " + "; ".join(diffs[:8]))

    # Check every input before any training time is spent. Checksums are read by the main process
    # only (torchrun stops the other processes when one fails); all read the image headers.
    verify = data_cfg["verify"] and dist.is_main
    pairs = scan_pairs(data_cfg["train"], patch_size=data_cfg["patch_size"], pad_small=data_cfg["pad_small"],
                       verify=verify, progress=rt["progress"] and dist.is_main)
    val_pairs = []
    if data_cfg["val"]:
        val_pairs = scan_pairs(data_cfg["val"], verify=verify, progress=rt["progress"] and dist.is_main)
        if data_cfg["val_max_images"]:
            val_pairs = val_pairs[: data_cfg["val_max_images"]]
    per_epoch = iterations_per_epoch(len(pairs), data_cfg["batch_size"])
    if data_cfg["batch_size"] % dist.world_size:
        raise ConfigError(f"data.batch_size: {data_cfg['batch_size']} is not divisible by the {dist.world_size} processes")
    sched_cfg = cfg["schedule"]
    total = total_iterations(sched_cfg["unit"], sched_cfg["length"], per_epoch)
    schedule = WarmupCosine(cfg["optim"]["lr"], cfg["optim"]["min_lr"], sched_cfg["warmup"], sched_cfg["t_max"])

    def lr_for(it: int) -> float:
        return epoch_lr(schedule, it, per_epoch) if sched_cfg["unit"] == "epoch" else iteration_lr(schedule, it)

    model = build_training_model(cfg)
    if cfg["model"]["init_weights"] and state is None:
        from ..checkpoint import load_weights

        load_weights(model, cfg["model"]["init_weights"])
    if state is not None:
        try:
            model.load_state_dict(state["model"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{ckpt_path}: does not fit the configured model ({exc})") from None
    model.to(device)
    if tr["channels_last"]:
        model.to(memory_format=torch.channels_last)
    opt_cfg = cfg["optim"]
    optimizer = torch.optim.Adam(model.parameters(), lr=opt_cfg["lr"], betas=tuple(opt_cfg["betas"]),
                                 eps=opt_cfg["eps"], weight_decay=opt_cfg["weight_decay"])
    scaler = torch.amp.GradScaler(device.type, enabled=tr["amp"] == "fp16")
    start, best_psnr = 0, -math.inf
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        start, best_psnr = int(state["iteration"]), float(state["best_psnr"])
        if dist.is_main:
            print(f"mprnet train: resuming {ckpt_path} at iteration {start}", file=GuardedStream(sys.stderr))
    del state

    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    if start >= total:
        if dist.is_main and not (out / FINAL_MODEL).exists():
            save_checkpoint(out / FINAL_MODEL, _model_file(_cpu_state(model), cfg, start))
        return out / FINAL_MODEL

    net = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    criterion = StageLoss(edge_weight=cfg["loss"]["edge_weight"], clamp_outputs=cfg["loss"]["clamp_outputs"],
                          eps=cfg["loss"]["eps"]).to(device)

    dataset = TrainCrops(pairs, data_cfg["patch_size"], geometric_aug=data_cfg["geometric_aug"],
                         color_aug=data_cfg["color_aug"], pad_small=data_cfg["pad_small"])
    batches = BatchKeys(len(pairs), data_cfg["batch_size"], cfg["seed"], start, total, dist.rank, dist.world_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=rt["num_workers"], pin_memory=device.type == "cuda",
        persistent_workers=False, prefetch_factor=4 if rt["num_workers"] > 0 else None,
        worker_init_fn=_ignore_stop_signals,
    )
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tr["amp"])
    memory_format = torch.channels_last if tr["channels_last"] else torch.contiguous_format
    val_every = tr["val_every_iterations"] or (tr["val_every_epochs"] * per_epoch if tr["val_every_epochs"] else None)

    def save_state(done: int) -> None:
        if dist.is_main:
            save_checkpoint(ckpt_path, {
                "model": _cpu_state(model), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "rng": capture_rng(), "iteration": done, "best_psnr": best_psnr, "config": cfg,
            })
        dist.barrier()

    val_set = ValCrops(val_pairs, data_cfg["val_patch_size"])

    def validate() -> float:
        net.eval()
        total_psnr = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for idx in range(dist.rank, len(val_pairs), dist.world_size):
                inp, tar = val_set[idx]
                inp = inp[None].to(device).contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    restored = _unwrap(net)(inp)[0]
                mse = torch.mean((restored.float().clamp(0, 1) - tar[None].to(device)) ** 2)
                total_psnr[0] += -10.0 * torch.log10(mse.double())
                total_psnr[1] += 1
        net.train()
        dist.all_reduce(total_psnr)
        return float(total_psnr[0] / total_psnr[1])

    metrics = _MetricsLog(out, start if start > 0 else None, dist.is_main)
    # Console writes never raise: a stderr whose reader died with the same SIGTERM must not
    # abort the stop checkpoint (nor the finally: below, which would mask TrainingInterrupted).
    console = GuardedStream(sys.stderr)
    bar = tqdm(total=total, initial=start, desc=f"train {cfg['task']}", unit="it", dynamic_ncols=True,
               disable=not (rt["progress"] and dist.is_main), file=console)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    window_start, window_iters = time.perf_counter(), 0
    last_saved = start

    def check_finite() -> None:
        dist.all_reduce(first_bad, op="max")
        bad = int(first_bad)
        if bad >= 0:
            raise TrainingDiverged(
                f"non-finite loss at iteration {bad} (epoch {(bad - 1) // per_epoch + 1}); training stopped, "
                f"the last good checkpoint {ckpt_path} (iteration {last_saved}) is untouched"
                if last_saved > 0 else f"non-finite loss at iteration {bad}; training stopped, no checkpoint was written")

    net.train()
    it = start
    try:
        for inp, tar in loader:
            epoch = it // per_epoch + 1
            lr = lr_for(it)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inp = inp.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            tar = tar.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            if cfg["mixup"]["enabled"] and epoch >= cfg["mixup"]["start_epoch"]:
                inp, tar = mixup(inp, tar, alpha=cfg["mixup"]["alpha"], seed=cfg["seed"], iteration=it, rank=dist.rank)
            detached = train_step(net, criterion, optimizer, scaler, inp, tar, amp_dtype)
            first_bad.copy_(torch.where((first_bad < 0) & ~torch.isfinite(detached),
                                        torch.full_like(first_bad, it + 1), first_bad))
            loss_sum += detached.double()
            it += 1
            window_iters += 1
            bar.update(1)

            sync = it % rt["log_every"] == 0 or it == total
            stop_now = False
            if dist.world_size == 1:
                stop_now = stop.signame is not None
            elif sync:
                flag = torch.tensor([1.0 if stop.signame else 0.0], device=device)
                stop_now = bool(dist.all_reduce(flag, op="max").item() > 0)
                if stop_now and stop.signame is None:
                    stop.signame = "a signal to another process"
            due_ckpt = it % rt["checkpoint_every"] == 0 or it == total or stop_now
            due_val = bool(val_pairs) and val_every is not None and (it % val_every == 0 or it == total)
            if sync or due_ckpt or due_val:
                check_finite()
            if sync:
                dist.all_reduce(loss_sum)
                mean_loss = float(loss_sum) / (window_iters * dist.world_size)
                elapsed = time.perf_counter() - window_start
                speed = window_iters * data_cfg["batch_size"] / max(elapsed, 1e-9)
                metrics.log(it, epoch=epoch, lr=lr, loss=mean_loss, images_per_s=speed)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.1f}")
                loss_sum.zero_()
                window_start, window_iters = time.perf_counter(), 0
            if due_val:
                psnr = validate()
                metrics.log(it, epoch=epoch, val_psnr=psnr)
                bar.write(f"iteration {it}: validation PSNR {psnr:.2f} dB on {len(val_pairs)} images",
                          file=GuardedStream(sys.stdout))
                if psnr > best_psnr:
                    best_psnr = psnr
                    if dist.is_main:
                        save_checkpoint(out / BEST_MODEL, _model_file(_cpu_state(model), cfg, it, val_psnr=psnr))
            if due_ckpt:
                save_state(it)
                last_saved = it
            if stop_now:
                raise TrainingInterrupted(ckpt_path, it, stop.signame or "signal")
    finally:
        bar.close()
        metrics.close()
    if it < total:
        raise MPRNetError(f"the data loader ended at iteration {it} of {total}")
    if dist.is_main:
        save_checkpoint(out / FINAL_MODEL, _model_file(_cpu_state(model), cfg, it))
    dist.barrier()
    return out / FINAL_MODEL

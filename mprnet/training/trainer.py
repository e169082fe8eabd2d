"""The training loop behind ``mprnet train`` and ``mprnet.training.train``.

Output folder (``out_dir``):

* ``config.yaml``: the effective run config (recipe defaults filled in);
* ``checkpoint.pt``: the full training state, rewritten atomically every
  ``runtime.checkpoint_every`` iterations, at the end, and on SIGTERM/SIGUSR1;
* ``model_final.pt``: ``{"model", "config", "iteration"}`` written when training completes;
* ``model_best.pt``: the same for the best validation PSNR (when ``data.val`` is set);
* ``metrics.csv`` (iteration, epoch, lr, loss, images_per_s, val_psnr) and ``dvclive/``
  (``metrics_log.py``; ``dvc plots show <out>/dvclive/plots/metrics`` draws the curves);
* ``train.log`` when ``mprnet train --log`` names it (the workflow does): everything printed,
  appended by every attempt (``console.guarded_console``);
* ``attempts.csv``: one row per attempt of the run (start, host, device, iterations, wall and CPU
  seconds, peak memory, how it ended), rewritten at every checkpoint and exit (``attempts.py``).

Devices: CPU, one GPU, or DistributedDataParallel when launched by ``torchrun`` (``distributed.py``);
``mprnet train`` starts itself so when the run config says ``runtime.processes: N`` (``launch.py``).
``data.batch_size`` is the global batch, split evenly over processes.

Preemption (``signals.py``): SIGTERM or SIGUSR1 (what Slurm sends before preemption or the time
limit) makes the process finish its current iteration; the state is checkpointed and the command
exits with ``RESUME_EXIT_CODE`` = 75 (``EX_TEMPFAIL``: "try again"). With several processes they
agree after every iteration whether any of them was signalled (``Dist.any_rank``), so all stop
at the same iteration and rank 0 writes the one checkpoint. Running the same command with
``--resume`` then continues; on CPU the final weights are bit-identical to an uninterrupted run.
Slurm signals every process of the job at once, so the progress bar and messages go through
``console.GuardedStream``: a stdout/stderr that went away (EPIPE, closed) is dropped, never raised.

Non-finite numbers never become a result. A non-finite loss, a validation PSNR that is NaN
(or -inf), or weights holding NaN or infinite values when a file is due (checked on the
weights themselves before every ``checkpoint.pt``, ``model_best.pt`` and ``model_final.pt``: the
loss seen before a save belongs to the step *before* the saved weights) stop training with
``TrainingDiverged`` naming the iteration; nothing is written from them, so the last good
checkpoint, whose own weights were checked, stays as it was. A checkpoint whose weights are not
finite is refused on ``--resume`` as well.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import check_finite_weights, describe_non_finite, load_weights, non_finite_tensors
from ..errors import CheckpointError, ConfigError, MPRNetError
from ..losses import StageLoss
from ..model import build_model
from ..precision import AMP_PRECISION, resolve_amp, resolve_channels_last
from ..presets import network_kwargs
from .attempts import CRASHED, FINISHED, RUNNING, STOPPED, Attempt, Usage, origin
from .checkpointing import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .config import check_batch_split, check_gpus_per_process, config_differences, dump_config, resolve_config
from .console import GuardedStream
from .dataset import BatchKeys, TrainCrops, ValCrops, iterations_per_epoch, scan_pairs, total_iterations
from .distributed import Dist, pick_device
from .launch import is_main_worker
from .metrics_log import MetricsLog
from .mixup import mixup
from .runlock import run_lock
from .schedule import WarmupCosine, epoch_lr, iteration_lr
from .signals import StopFlag, TrainingInterrupted, ignore_stop_signals

CHECKPOINT = "checkpoint.pt"
FINAL_MODEL = "model_final.pt"
BEST_MODEL = "model_best.pt"


class TrainingDiverged(MPRNetError):
    """The loss, the validation PSNR or the weights became NaN or infinite."""


class PeerFailed(MPRNetError):
    """Another process of the run failed (it reports why); this one stopped with it."""


def build_training_model(cfg: dict):
    """The model of a run config: ``build_model(task, **model.overrides)``, seeded init."""
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

def train_step(net, criterion, optimizer, scaler, inp, tar, amp_dtype=None):
    """One optimisation step; returns the (detached) loss without synchronising the device.

    The network runs under autocast when ``amp_dtype`` is set; the loss is computed in float32.
    Gradients are released (``set_to_none``) as in the official code.
    """
    with torch.autocast(inp.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        outputs = net(inp)
    loss = criterion([o.float() for o in outputs], tar)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def train(config: dict, out_dir: str | os.PathLike, *, resume: bool = False) -> Path:
    """Train MPRNet as the run config ``config`` says (resolved here: ``resolve_config``); see
    :func:`run_training`."""
    return run_training(resolve_config(config), out_dir, resume=resume)


def run_training(cfg: dict, out_dir: str | os.PathLike, *, resume: bool = False, whole_process: bool = False) -> Path:
    """Train MPRNet as the resolved run config ``cfg`` says; returns the path of ``model_final.pt``.

    ``resume``: continue from ``out_dir/checkpoint.pt`` when it exists (otherwise start), keeping
    the earlier attempts' rows of ``attempts.csv``. ``whole_process``: this process exists to train
    (``mprnet train``), so its attempt counts from the process's start (``attempts.py``).
    The run folder's lock (``runlock.run_lock``) is held throughout (by rank 0, unless the
    launcher of ``runtime.processes`` holds it). Raises ``RunLocked`` when another trainer
    holds it, ``TrainingInterrupted`` after checkpointing on SIGTERM/SIGUSR1,
    ``TrainingDiverged`` on non-finite numbers, ``ConfigError``/``DataError``/``CheckpointError``
    on bad input, the latter three before any training step.
    """
    rt = cfg["runtime"]
    with run_lock(out_dir) if is_main_worker() else contextlib.nullcontext():  # one trainer per folder
        want_cuda = rt["device"].startswith("cuda") or (rt["device"] == "auto" and torch.cuda.is_available())
        if want_cuda and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
            # under torchrun too: one GPU per process on this node
            check_gpus_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), rt["device"])
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # before NCCL picks a device
        dist = Dist.from_env("cuda" if want_cuda else "cpu")
        previous = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
        try:
            with StopFlag() as stop:
                trainer = Trainer(cfg, Path(out_dir), dist, stop, whole_process=whole_process)
                trainer.setup(resume)
                try:
                    return trainer.fit()
                except BaseException as exc:
                    trainer.record_exit(exc)
                    raise
        finally:
            torch.use_deterministic_algorithms(previous[0])
            torch.backends.cudnn.benchmark = previous[1]
            dist.close()


class Trainer:
    """One training run as named steps, called in this order by ``train``:

    * ``setup(resume)``: device switches, the checkpoint to resume (if any), every input checked
      (``scan_pairs``), the model, optimiser and scaler built or restored, ``config.yaml`` written,
      the attempt's row of ``attempts.csv`` begun;
    * ``fit()``: the loop. Per iteration ``optimize_parameters`` (one step on one batch), then,
      when due, ``log_window`` (metrics.csv/dvclive), ``validation`` (mean PSNR, dB) with
      ``save_best``, and ``save`` (``checkpoint.pt``) with ``record_attempt``; ``save_final`` at the end.

    ``cfg`` is a resolved run config (``resolve_config``); ``dist`` the process group (one
    process: ``Dist()``); ``stop`` the signal flag that ends the loop after a checkpoint;
    ``whole_process``: the attempt counts from the process's start (``attempts.Attempt``).
    Iterations are counted from 0; ``self.iteration`` is the number of finished iterations.
    """

    def __init__(self, cfg: dict, out: Path, dist: Dist, stop: StopFlag, *, whole_process: bool = False):
        self.cfg, self.out, self.dist, self.stop = cfg, out, dist, stop
        self.rt, self.data_cfg, self.tr = cfg["runtime"], cfg["data"], cfg["train"]
        self.ckpt_path = out / CHECKPOINT
        self.clock = origin(whole_process)  # the attempt counts from here (or the process's start)
        self.attempt: Attempt | None = None

    # ------------------------------------------------------------------ set-up and resume

    def setup(self, resume: bool) -> None:
        """Prepare the run: raises ``ConfigError``, ``DataError`` or ``CheckpointError`` (before
        any training step) when a setting, a training pair or the checkpoint to resume is bad."""
        self._configure_device()
        state = self._existing_state(resume)
        self._choose_precision(state)
        self._choose_layout(state)
        if state is not None:
            self._check_same_config(state)
        self._scan_data()
        self._build_model(state)
        self._build_optimizer(state)
        del state
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            dump_config(self.cfg, self.out / "config.yaml")
        self.attempt = Attempt(self.out, keep_previous=resume and self.dist.is_main, start_iteration=self.start,
                               device=self.device, processes=self.dist.world_size, origin=self.clock)
        if self.dist.is_main:
            self._write_attempt(RUNNING)

    def _configure_device(self) -> None:
        rt = self.rt
        self.device = pick_device(rt["device"], self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if rt["deterministic"]:
            torch.use_deterministic_algorithms(True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not rt["deterministic"]

    def _existing_state(self, resume: bool) -> dict | None:
        """The checkpoint to continue from; ``None`` to start."""
        path = self.ckpt_path
        if not path.exists():
            return None
        if not resume:
            raise ConfigError(f"{path}: a run already exists here; pass --resume to continue it or choose another --out")
        return load_checkpoint(path)

    def _choose_precision(self, state: dict | None) -> None:
        """Resolve ``train.amp`` for this device (``mprnet.precision.resolve_amp``: ``auto`` keeps
        a resumed run's precision, else bf16 where native and fp32 elsewhere; emulated bf16 is a
        ``ConfigError``) and write the result into the effective config, which ``config.yaml``,
        every checkpoint and ``model_final.pt`` carry."""
        tr = self.tr
        previous = state["config"]["train"]["amp"] if state is not None else None
        amp, why = resolve_amp(tr["amp"], str(self.device), previous=previous)
        if self.dist.is_main and tr["amp"] == "auto":
            print(f"mprnet train: train.amp auto -> {amp} ({AMP_PRECISION[amp]}): {why}", file=GuardedStream(sys.stderr))
        tr["amp"] = amp
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def _choose_layout(self, state: dict | None) -> None:
        """Resolve ``train.channels_last`` for this device (``mprnet.precision.resolve_channels_last``:
        ``auto`` is NCHW only for wide networks on a CPU below AVX-512; a resumed ``auto`` run
        keeps its layout, as it keeps its precision) into the effective config."""
        tr = self.tr
        previous = state["config"]["train"]["channels_last"] if state is not None else None
        width = network_kwargs(self.cfg["task"], self.cfg["model"]["overrides"])["n_feat"]
        channels_last, why = resolve_channels_last(tr["channels_last"], str(self.device), width, previous=previous)
        if self.dist.is_main and tr["channels_last"] == "auto":
            print(f"mprnet train: train.channels_last auto -> {str(channels_last).lower()} ({why})",
                  file=GuardedStream(sys.stdout))  # information, not a warning: stderr stays for those
        tr["channels_last"] = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def _check_same_config(self, state: dict) -> None:
        diffs = config_differences(state["config"], self.cfg)
        if diffs:
            raise ConfigError(f"{self.ckpt_path}: was trained with a different config; differing keys: "
                              + "; ".join(diffs[:8]))

    def _scan_data(self) -> None:
        """Check every input before any training time is spent. Checksums are read by the main
        process only (torchrun stops the other processes when one fails); all read the headers."""
        data_cfg, dist, progress = self.data_cfg, self.dist, self.rt["progress"] and self.dist.is_main
        check_batch_split(data_cfg["batch_size"], dist.world_size, "this process group (WORLD_SIZE)")
        verify = data_cfg["verify"] and dist.is_main
        self.pairs = scan_pairs(data_cfg["train"], patch_size=data_cfg["patch_size"], pad_small=data_cfg["pad_small"],
                                verify=verify, progress=progress)
        self.val_pairs = []
        if data_cfg["val"]:
            self.val_pairs = scan_pairs(data_cfg["val"], verify=verify, progress=progress)
            if data_cfg["val_max_images"]:
                self.val_pairs = self.val_pairs[: data_cfg["val_max_images"]]
        self.per_epoch = iterations_per_epoch(len(self.pairs), data_cfg["batch_size"])
        sched, tr = self.cfg["schedule"], self.tr
        self.total = total_iterations(sched["unit"], sched["length"], self.per_epoch)
        self.schedule = WarmupCosine(self.cfg["optim"]["lr"], self.cfg["optim"]["min_lr"], sched["warmup"], sched["t_max"])
        self.val_every = tr["val_every_iterations"] or (
            tr["val_every_epochs"] * self.per_epoch if tr["val_every_epochs"] else None)

    def _build_model(self, state: dict | None) -> None:
        model = build_training_model(self.cfg)
        if self.cfg["model"]["init_weights"] and state is None:
            load_weights(model, self.cfg["model"]["init_weights"])
        if state is not None:
            check_finite_weights(state["model"], str(self.ckpt_path))
            try:
                model.load_state_dict(state["model"], strict=True)
            except RuntimeError as exc:
                raise CheckpointError(f"{self.ckpt_path}: does not fit the configured model ({exc})") from None
        model.to(self.device).to(memory_format=self.memory_format)  # the weights lead (MPRNet.forward)
        self.model = model

    def _build_optimizer(self, state: dict | None) -> None:
        """Adam and the fp16 GradScaler; on resume also their state, the RNGs and the position."""
        opt_cfg = self.cfg["optim"]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=opt_cfg["lr"], betas=tuple(opt_cfg["betas"]),
                                          eps=opt_cfg["eps"], weight_decay=opt_cfg["weight_decay"])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.tr["amp"] == "fp16")
        self.start, self.best_psnr = 0, -math.inf
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            restore_rng(state["rng"])
            self.start, self.best_psnr = int(state["iteration"]), float(state["best_psnr"])
            if self.dist.is_main:
                print(f"mprnet train: resuming {self.ckpt_path} at iteration {self.start}", file=GuardedStream(sys.stderr))
        self.iteration = self.last_saved = self.start

    # ------------------------------------------------------------------ the loop

    def fit(self) -> Path:
        """Train from ``self.start`` to the end; returns ``model_final.pt``.

        Raises ``TrainingInterrupted`` after the stop checkpoint, ``TrainingDiverged`` on a
        non-finite loss (checked at every log, validation and checkpoint), a NaN validation or
        non-finite weights when a file is due, ``MPRNetError`` if the data loader ends early.
        """
        if self.start >= self.total:
            if self.dist.any_rank(self.dist.is_main and not (self.out / FINAL_MODEL).exists()):
                self.save_final()
            self.record_attempt(FINISHED)
            return self.out / FINAL_MODEL
        loader = self._prepare_loop()
        try:
            for inp, tar in loader:
                self.optimize_parameters(inp, tar)
                self._after_iteration()
        finally:
            self.bar.close()
            self.metrics.close()
        if self.iteration < self.total:
            raise MPRNetError(f"the data loader ended at iteration {self.iteration} of {self.total}")
        self.save_final()
        self.record_attempt(FINISHED)
        return self.out / FINAL_MODEL

    def _prepare_loop(self):
        """The network (DDP-wrapped with several processes), loss, data loader, logs and the bar."""
        cfg, data_cfg, rt, dist, device = self.cfg, self.data_cfg, self.rt, self.dist, self.device
        self.net = self.model
        if dist.world_size > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.criterion = StageLoss(edge_weight=cfg["loss"]["edge_weight"], clamp_outputs=cfg["loss"]["clamp_outputs"],
                                   eps=cfg["loss"]["eps"]).to(device)
        dataset = TrainCrops(self.pairs, data_cfg["patch_size"], geometric_aug=data_cfg["geometric_aug"],
                             color_aug=data_cfg["color_aug"], pad_small=data_cfg["pad_small"])
        batches = BatchKeys(len(self.pairs), data_cfg["batch_size"], cfg["seed"], self.start, self.total,
                            dist.rank, dist.world_size)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=rt["num_workers"], pin_memory=device.type == "cuda",
            persistent_workers=False, prefetch_factor=4 if rt["num_workers"] > 0 else None,
            worker_init_fn=ignore_stop_signals,
        )
        self.val_set = ValCrops(self.val_pairs, data_cfg["val_patch_size"])
        self.metrics = MetricsLog(self.out, self.start if self.start > 0 else None, dist.is_main)
        # Console writes never raise: a stderr whose reader died with the same SIGTERM must not
        # abort the stop checkpoint (nor fit's finally:, which would mask TrainingInterrupted).
        self.bar = tqdm(total=self.total, initial=self.start, desc=f"train {cfg['task']}", unit="it",
                        dynamic_ncols=True, disable=not (rt["progress"] and dist.is_main), file=GuardedStream(sys.stderr))
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.window_start, self.window_iters = time.perf_counter(), 0
        self.net.train()
        return loader

    def lr_at(self, iteration: int) -> float:
        """The learning rate of 0-based ``iteration`` (constant within an epoch for unit ``epoch``)."""
        if self.cfg["schedule"]["unit"] == "epoch":
            return epoch_lr(self.schedule, iteration, self.per_epoch)
        return iteration_lr(self.schedule, iteration)

    def optimize_parameters(self, inp, tar) -> None:
        """One iteration on one batch (B×3×H×W float tensors in [0, 1], this process's share):
        learning rate, mixup when due, ``train_step``; the loss is accumulated on the device
        (no synchronisation) and the first non-finite one remembered for ``check_finite``."""
        it, cfg = self.iteration, self.cfg
        self.epoch = it // self.per_epoch + 1
        self.lr = self.lr_at(it)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        inp = inp.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        tar = tar.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        if cfg["mixup"]["enabled"] and self.epoch >= cfg["mixup"]["start_epoch"]:
            inp, tar = mixup(inp, tar, alpha=cfg["mixup"]["alpha"], seed=cfg["seed"], iteration=it, rank=self.dist.rank)
        loss = train_step(self.net, self.criterion, self.optimizer, self.scaler, inp, tar, self.amp_dtype)
        first_bad = self.first_bad
        first_bad.copy_(torch.where((first_bad < 0) & ~torch.isfinite(loss), torch.full_like(first_bad, it + 1), first_bad))
        self.loss_sum += loss.double()
        self.iteration += 1
        self.window_iters += 1
        self.bar.update(1)

    def _after_iteration(self) -> None:
        """Logging, validation and checkpointing when due; raises ``TrainingInterrupted`` to stop."""
        it, rt = self.iteration, self.rt
        sync = it % rt["log_every"] == 0 or it == self.total
        stop_now = self._stop_requested()
        due_ckpt = it % rt["checkpoint_every"] == 0 or it == self.total or stop_now
        due_val = bool(self.val_pairs) and self.val_every is not None and (it % self.val_every == 0 or it == self.total)
        if sync or due_ckpt or due_val:
            self.check_finite()
        if sync:
            self.log_window()
        if due_val:
            psnr = self.validation()
            if math.isnan(psnr) or psnr == -math.inf:
                raise self._diverged(f"validation PSNR {psnr} dB at iteration {it}")
            self.save_best(psnr)
        if due_ckpt:
            self.save()
            self.record_attempt(STOPPED if stop_now else RUNNING, (self.stop.signame or "") if stop_now else "")
        if stop_now:
            raise TrainingInterrupted(self.ckpt_path, it, self.stop.signame or "signal")

    def _stop_requested(self) -> bool:
        """Whether a stop signal was received; with several processes, by any of them. They
        agree after every iteration, so all stop at the same one, whichever got the signal."""
        if self.dist.world_size == 1:
            return self.stop.signame is not None
        stop_now = self.dist.any_rank(self.stop.signame is not None)
        if stop_now and self.stop.signame is None:
            self.stop.signame = "a signal to another process"
        return stop_now

    def check_finite(self) -> None:
        """Raise ``TrainingDiverged`` if any process has seen a non-finite loss."""
        self.dist.all_reduce(self.first_bad, op="max")
        bad = int(self.first_bad)
        if bad < 0:
            return
        raise self._diverged(f"non-finite loss at iteration {bad} (epoch {(bad - 1) // self.per_epoch + 1})")

    def _diverged(self, what: str) -> TrainingDiverged:
        """The error that stops a run at ``what``, naming the run and its last good checkpoint."""
        if self.last_saved > 0:
            kept = f"the last good checkpoint {self.ckpt_path} (iteration {self.last_saved}, finite weights) is untouched"
        else:
            kept = "no checkpoint was written"
        return TrainingDiverged(f"{self.out}: {what}; training stopped, {kept}")

    def log_window(self) -> None:
        """The mean loss and speed since the last log, to metrics.csv/dvclive and the bar."""
        self.dist.all_reduce(self.loss_sum)
        mean_loss = float(self.loss_sum) / (self.window_iters * self.dist.world_size)
        elapsed = time.perf_counter() - self.window_start
        speed = self.window_iters * self.data_cfg["batch_size"] / max(elapsed, 1e-9)
        self.metrics.log(self.iteration, epoch=self.epoch, lr=self.lr, loss=mean_loss, images_per_s=speed)
        self.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{self.lr:.2e}", img_s=f"{speed:.1f}")
        self.loss_sum.zero_()
        self.window_start, self.window_iters = time.perf_counter(), 0

    # ------------------------------------------------------------------ validation

    def validation(self) -> float:
        """Mean PSNR (dB, float64 sum over images, outputs clamped to [0, 1]) of the last stage
        on the validation crops, shared out over the processes; logged and printed."""
        net, device, dist = self.net, self.device, self.dist
        net.eval()
        total_psnr = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for idx in range(dist.rank, len(self.val_pairs), dist.world_size):
                inp, tar = self.val_set[idx]
                inp = inp[None].to(device).contiguous(memory_format=self.memory_format)
                with torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    restored = _unwrap(net)(inp)[0]
                mse = torch.mean((restored.float().clamp(0, 1) - tar[None].to(device)) ** 2)
                total_psnr[0] += -10.0 * torch.log10(mse.double())
                total_psnr[1] += 1
        net.train()
        dist.all_reduce(total_psnr)
        psnr = float(total_psnr[0] / total_psnr[1])
        self.metrics.log(self.iteration, epoch=self.epoch, val_psnr=psnr)
        self.bar.write(f"iteration {self.iteration}: validation PSNR {psnr:.2f} dB on {len(self.val_pairs)} images",
                       file=GuardedStream(sys.stdout))
        return psnr

    # ------------------------------------------------------------------ checkpointing

    def save_best(self, psnr: float) -> None:
        """Write ``model_best.pt`` (main process) when ``psnr`` beats the best so far."""
        if psnr > self.best_psnr:
            self.best_psnr = psnr
            self._write(self.out / BEST_MODEL, lambda state: _model_file(state, self.cfg, self.iteration, val_psnr=psnr))

    def save(self) -> None:
        """Write ``checkpoint.pt`` (main process, atomically) at ``self.iteration``; all wait."""
        self._write(self.ckpt_path, lambda state: {
            "model": state, "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": capture_rng(), "iteration": self.iteration, "best_psnr": self.best_psnr, "config": self.cfg,
        })
        self.last_saved = self.iteration

    def save_final(self) -> None:
        """Write ``model_final.pt``: ``{"format", "model", "config", "iteration"}``."""
        self._write(self.out / FINAL_MODEL, lambda state: _model_file(state, self.cfg, self.iteration))

    # ------------------------------------------------------------------ the attempts record

    def record_attempt(self, ended: str, detail: str = "") -> None:
        """Rewrite this attempt's row of ``attempts.csv`` at ``self.iteration`` (main process),
        with the CPU seconds of every process summed and the largest memory peaks; collective
        (every process calls it, at a checkpoint or the end)."""
        own = self.attempt.usage()
        cpu, = self.dist.reduce_floats([own.cpu_seconds], "sum")
        rss, gpu = self.dist.reduce_floats([own.peak_rss_mb, own.peak_gpu_mb], "max")
        self.attempt.others = Usage(cpu - own.cpu_seconds, rss, gpu)  # kept for a later error's record
        if self.dist.is_main:
            self._write_attempt(ended, detail, Usage(cpu, rss, gpu))

    def record_exit(self, exc: BaseException) -> None:
        """The row of an attempt ended by ``exc`` (main process; not collective: the others may be
        gone): ``crashed`` with the error's class. A stop on a signal was recorded at its checkpoint.
        Never raises: ``exc`` is what the caller reports."""
        if self.attempt is None or not self.dist.is_main or isinstance(exc, TrainingInterrupted):
            return
        try:
            self._write_attempt(CRASHED, type(exc).__name__)
        except Exception as failure:  # noqa: BLE001 - the record must not hide the error that ended the attempt
            print(f"mprnet train: warning: {self.attempt.path} not written ({failure})", file=GuardedStream(sys.stderr))

    def _write_attempt(self, ended: str, detail: str = "", usage: Usage | None = None) -> None:
        """``Attempt.record``; a record that cannot be written is a warning, never a reason to stop
        training (the next checkpoint writes it again)."""
        try:
            self.attempt.record(self.iteration, ended, detail, usage)
        except MPRNetError as exc:
            print(f"mprnet train: warning: {exc}", file=GuardedStream(sys.stderr))

    def _write(self, path: Path, content) -> None:
        """Write ``content(weights)`` to ``path`` on the main process, only if the weights are
        finite; every process raises alike (``TrainingDiverged`` for non-finite weights; the
        main process's write error, e.g. a full disk, and ``PeerFailed`` on the others)."""
        weights = _unwrap(self.model).state_dict()
        bad = non_finite_tensors(weights)
        if self.dist.any_rank(bool(bad)):
            why = describe_non_finite(weights, bad) if bad else "the weights of another process are not finite"
            raise self._diverged(f"{path} not written: after iteration {self.iteration} {why}")
        failure = None
        if self.dist.is_main:
            try:
                save_checkpoint(path, content(_cpu_state(self.model)))
            except MPRNetError as exc:
                failure = exc
        if self.dist.any_rank(failure is not None):
            raise failure or PeerFailed(f"{path}: process 0 could not write it (its error says why)")

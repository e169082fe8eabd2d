"""The official learning-rate schedule: linear warm-up, then cosine annealing.

The official ``train.py`` wraps ``CosineAnnealingLR(T_max, eta_min=1e-6)`` in the vendored
``GradualWarmupScheduler(multiplier=1, total_epoch=3)`` and steps it once before the first epoch
and once after each epoch. Run under torch 2.13 this gives, for epoch ``e`` (1-based):

* ``e <= warmup``: ``lr * e / warmup`` (6.667e-5, 1.333e-4, 2e-4 for the defaults);
* ``e == warmup + 1``: the warm-up hands over to the cosine scheduler one step after its start,
  so its recursive ("chainable") update scales the peak by ``2 / (1 + cos(pi / T_max))``;
* ``e > warmup + 1``: ``min + (lr - min) * (1 + cos(pi * k / T_max)) / (1 + cos(pi / T_max))``
  with ``k = e - warmup - 1``.

This is the textbook cosine ``min + (lr - min)(1 + cos(pi k / T_max)) / 2`` up to a factor
``2 / (1 + cos(pi / T_max))`` (at most 4e-8 in absolute lr for the official settings), and it
equals the schedule the authors actually ran (``tests/fixtures/lr_schedule.json``) to < 1e-12.
The same formula counts iterations instead of epochs for iteration budgets (``iteration_lr``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosine:
    """Learning rate for the ``step``-th unit (1-based epoch or iteration) of training."""

    lr: float = 2e-4
    min_lr: float = 1e-6
    warmup: int = 3
    t_max: int = 2997

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.t_max < 1:
            raise ValueError(f"warmup must be >= 0 and t_max >= 1, got {self.warmup}, {self.t_max}")

    def __call__(self, step: int) -> float:
        if step < 1:
            raise ValueError(f"steps are counted from 1, got {step}")
        if step <= self.warmup:
            return self.lr * step / self.warmup
        k = step - self.warmup - 1
        # Beyond T_max the cosine rises again, as torch's periodic CosineAnnealingLR does;
        # the official budgets stop before T_max.
        span = self.lr - self.min_lr
        first = 1.0 + math.cos(math.pi / self.t_max)
        if k == 0:
            return self.min_lr + span * 2.0 / first
        return self.min_lr + span * (1.0 + math.cos(math.pi * k / self.t_max)) / first


def epoch_lr(schedule: WarmupCosine, iteration: int, iters_per_epoch: int) -> float:
    """Learning rate for the 0-based ``iteration`` when the schedule counts epochs (constant per epoch)."""
    return schedule(iteration // iters_per_epoch + 1)


def iteration_lr(schedule: WarmupCosine, iteration: int) -> float:
    """Learning rate for the 0-based ``iteration`` when the schedule counts iterations."""
    return schedule(iteration + 1)

"""MixUp for denoising (official ``MixUp_AUG`` in ``Denoising/train.py``, used from epoch 6).

Each sample is blended with a sample of a random permutation of its batch; the weight
``lam ~ Beta(0.6, 0.6)`` is drawn per sample and used for both the noisy and the clean image.
The draws come from a generator seeded with (seed, iteration, rank) so that resumed runs repeat
them. With DDP the partners are drawn within each process's share of the batch (the official
DataParallel run mixed over the whole batch of 16).
"""

from __future__ import annotations

import numpy as np

_MIXUP_STREAM = 0x31


def mixup(inp, tar, *, alpha: float, seed: int, iteration: int, rank: int = 0):
    """Return mixed (input, target); ``inp``/``tar`` are B×C×H×W tensors on any device."""
    import torch

    rng = np.random.default_rng([seed, iteration, rank, _MIXUP_STREAM])
    batch = inp.shape[0]
    perm = torch.from_numpy(rng.permutation(batch)).to(inp.device)
    lam = torch.from_numpy(rng.beta(alpha, alpha, size=batch)).to(inp.device, inp.dtype).view(-1, 1, 1, 1)
    return lam * inp + (1 - lam) * inp[perm], lam * tar + (1 - lam) * tar[perm]

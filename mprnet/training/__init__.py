"""Training MPRNet with the official recipe (``mprnet train``); see ``config`` for the run config.

``train(config, out_dir, resume=False)`` is the Python entry point the workflow calls.
Exit status 75 (``RESUME_EXIT_CODE``) from ``mprnet train`` means "checkpointed on a signal,
run again with --resume".
"""

from __future__ import annotations

from .signals import RESUME_EXIT_CODE


def train(config: dict, out_dir, *, resume: bool = False):
    """Train as ``config`` says into ``out_dir``; see ``mprnet.training.trainer.train``."""
    from .trainer import train as _train

    return _train(config, out_dir, resume=resume)


__all__ = ["train", "RESUME_EXIT_CODE"]

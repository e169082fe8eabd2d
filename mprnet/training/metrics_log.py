"""The training curves of a run: ``metrics.csv`` and ``dvclive/``, written by the main process.

``metrics.csv`` has one row per log or validation (:data:`CSV_COLUMNS`); on ``--resume`` the rows
after the checkpoint are dropped (they are about to be logged again), in dvclive's files too.
``dvc plots show <out>/dvclive/plots/metrics`` draws the curves. Logging never stops training
(dvclive failing to start is a warning); a write that fails (a full disk) is one error naming
the file.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from ..atomic import atomic_write_text, write_failure
from .console import GuardedStream

CSV_COLUMNS = ("iteration", "epoch", "lr", "loss", "images_per_s", "val_psnr")


class MetricsLog:
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
        with open(self.csv_path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["iteration"]) <= keep_through]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.csv_path, buf.getvalue())

    @staticmethod
    def _truncate_dvclive(folder: Path, keep_through: int) -> None:
        """Drop dvclive rows logged after the checkpoint (they are about to be logged again)."""
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
        target = self.csv_path
        try:  # a full disk here is one error naming the file, not a traceback
            self.writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
            self.fh.flush()
            if self.live is not None:
                target = Path(self.live.dir)
                self.live.step = iteration
                for key, value in values.items():
                    if value is not None and key != "epoch":
                        name = f"val/{key}" if key == "val_psnr" else f"train/{key}"
                        self.live.log_metric(name, float(value))
        except OSError as exc:
            raise write_failure(target, exc) from None

    def close(self) -> None:
        if not self.enabled:
            return
        self.fh.close()
        if self.live is not None:
            try:
                self.live.end()
            except Exception:
                pass

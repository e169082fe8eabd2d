"""Non-finite numbers never become a result (issue 20, item 1): no model, checkpoint, restored
image, float output or score is written from NaN or infinite values, and every refusal names the
file and exits 2 (through the ``mprnet`` command, as the workflow runs it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mprnet.cli import main
from mprnet.errors import CheckpointError, NonFiniteError
from mprnet.images import write_png
from train_worker import TINY_MODEL, make_pairs, smooth_image, tiny_config, tiny_model_file, write_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs") / "train", 4, seed=0)


def _poison_weights_after(monkeypatch, iteration: int) -> None:
    """Make the optimiser step of ``iteration`` (1-based) leave one NaN weight, as a step with an
    overflowing gradient does: the loss of that step, computed before the update, is finite."""
    from mprnet.training import trainer

    real_step, calls = trainer.train_step, {"n": 0}

    def train_step(net, *args, **kwargs):
        loss = real_step(net, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == iteration:
            weight = next(net.parameters())
            with torch.no_grad():
                weight[(0,) * weight.dim()] = float("nan")
        return loss

    monkeypatch.setattr(trainer, "train_step", train_step)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def test_divergence_on_the_last_step_stops_at_the_nan_validation_and_writes_no_model(
        pairs_dir, tmp_path, monkeypatch, capsys):
    """Before: the weights of the last step were NaN, its loss (of the step before) finite:
    "validation PSNR nan dB", then exit 0 with model_final.pt and a NaN checkpoint."""
    out = tmp_path / "run"
    config = write_config(tmp_path / "run.yaml", tiny_config(
        pairs_dir, length=6, data={"val": str(pairs_dir), "val_patch_size": 32},
        train={"val_every_iterations": 3}, runtime={"checkpoint_every": 2, "log_every": 1}))
    _poison_weights_after(monkeypatch, 6)
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "validation PSNR nan dB at iteration 6" in line and str(out) in line
    assert f"last good checkpoint {out / 'checkpoint.pt'} (iteration 4" in line
    assert not (out / "model_final.pt").exists()
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 4 and all(torch.isfinite(v).all() for v in state["model"].values())
    best = torch.load(out / "model_best.pt", weights_only=True)
    assert best["iteration"] == 3 and all(torch.isfinite(v).all() for v in best["model"].values())


def test_weights_gone_nan_on_a_checkpoint_step_are_not_saved_and_the_last_good_checkpoint_stays(
        pairs_dir, tmp_path, monkeypatch, capsys):
    """Before: the loss checked before a save belongs to the step before the saved weights, so the
    checkpoint of iteration 4 held NaN weights, and a later error called it the last good one."""
    out = tmp_path / "run"
    config = write_config(tmp_path / "run.yaml", tiny_config(pairs_dir, length=8, runtime={"checkpoint_every": 2}))
    _poison_weights_after(monkeypatch, 4)
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"{out / 'checkpoint.pt'} not written: after iteration 4" in line
    assert "1 of" in line and "NaN or infinite" in line
    assert "last good checkpoint" in line and "(iteration 2" in line
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (out / "model_final.pt").exists()


def test_a_checkpoint_with_nan_weights_is_refused_on_resume_and_as_init_weights(pairs_dir, tmp_path, capsys):
    out = tmp_path / "run"
    config = write_config(tmp_path / "run.yaml", tiny_config(pairs_dir, length=4, runtime={"checkpoint_every": 2}))
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    first = next(iter(state["model"]))
    state["model"][first][(0,) * state["model"][first].dim()] = float("inf")
    torch.save(state, out / "checkpoint.pt")
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--out", str(out), "--resume"]) == 2
    line = _one_error_line(capsys)
    assert str(out / "checkpoint.pt") in line and first in line and "NaN or infinite" in line
    init = write_config(tmp_path / "init.yaml", tiny_config(pairs_dir, model={"init_weights": str(out / "checkpoint.pt")}))
    assert main(["train", "--config", str(init), "--out", str(tmp_path / "init")]) == 2
    assert str(out / "checkpoint.pt") in _one_error_line(capsys)


# --------------------------------------------------------------------------- restore


def _model_and_input(tmp_path):
    from mprnet.model import build_model

    torch.manual_seed(0)
    model = build_model("denoising", **TINY_MODEL)
    write_png(tmp_path / "in" / "a.png", np.rint(smooth_image(np.random.default_rng(0), 40, 48) * 255).astype(np.uint8))
    return model


@pytest.mark.parametrize("layout", ["released", "ours"])
def test_a_checkpoint_with_one_nan_weight_restores_nothing(tmp_path, capsys, layout):
    """Before: exit 0 and black PNGs (the only hint numpy's cast warning, naming no file). The
    released case: the authors' deraining format, its preset recognised from the shapes."""
    from mprnet.model import build_model

    _model_and_input(tmp_path)
    key = "stage3_orsnet.orb1.body.0.body.0.weight"
    if layout == "released":
        torch.manual_seed(0)
        state = build_model("deraining").state_dict()
        path = tmp_path / "model_deraining.pth"
        state[key][0, 0, 0, 1] = float("nan")
        torch.save({"epoch": 250, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        state = build_model("denoising", **TINY_MODEL).state_dict()
        path = tmp_path / "model_final.pt"
        state[key][0, 0, 0, 1] = float("nan")
        tiny_model_file(path, state)
    out = tmp_path / "out"
    assert main(["restore", "--checkpoint", str(path), "--input", str(tmp_path / "in"), "--output", str(out),
                 "--save-float", "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert f"{path}: 1 of" in line and f"{key}: 1 of {state[key].numel()}" in line
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_finite_weights_whose_outputs_overflow_write_no_png_and_no_float_array(tmp_path, capsys):
    """Before: --save-float wrote arrays that were 100% NaN and PNGs that were black."""
    model = _model_and_input(tmp_path)
    with torch.no_grad():
        model.stage3_orsnet.orb1.body[0].body[0].weight.fill_(1e38)  # finite, but its sums overflow
    tiny_model_file(tmp_path / "model_final.pt", model.state_dict())
    out = tmp_path / "out"
    assert main(["restore", "--checkpoint", str(tmp_path / "model_final.pt"), "--input", str(tmp_path / "in"),
                 "--output", str(out), "--save-float", "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert f"{tmp_path / 'in' / 'a.png'}: restoring it with {tmp_path / 'model_final.pt'} gave NaN or infinite" in line
    assert not out.exists()


# --------------------------------------------------------------------------- scores


def test_nan_scores_are_neither_written_nor_aggregated(tmp_path):
    """A score is never computed from nor written as NaN: the score writer and the aggregation's
    reader refuse it naming the file (PSNR inf, identical images, stays a result)."""
    import pandas as pd

    from mprnet.metrics.scoring import write_scores_csv
    from mprnet.study.aggregate import read_scores

    scores = pd.DataFrame({"image": ["a", "b", "c"], "psnr": [30.0, float("nan"), float("inf")],
                           "ssim": [0.9, 0.8, 1.0]})
    with pytest.raises(NonFiniteError, match=r"scores\.csv: 1 of 3 images scored NaN or infinite \(b\)"):
        write_scores_csv(scores, tmp_path / "scores.csv")
    assert not (tmp_path / "scores.csv").exists()
    write_scores_csv(scores.drop(index=1), tmp_path / "scores.csv")
    assert read_scores(tmp_path / "scores.csv")["psnr"].tolist() == [30.0, float("inf")]
    (tmp_path / "old.csv").write_text("image,psnr,ssim\na,7.93,0.146\nb,nan,0.1\nc,8.0,\n")
    with pytest.raises(NonFiniteError, match=r"old\.csv: 2 of 3 images scored NaN or infinite \(b, c\)"):
        read_scores(tmp_path / "old.csv")


def test_score_refuses_a_protocol_result_that_is_nan(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from mprnet.metrics import protocols

    for folder in ("pred", "target"):
        write_png(tmp_path / folder / "a.png", np.full((16, 16, 3), 7, np.uint8))
    nan_batch = replace(protocols.PROTOCOL_REGISTRY["rgb"],
                        score_batch=lambda p, t, device=None: (np.array([np.nan]), np.array([0.5])))
    monkeypatch.setitem(protocols.PROTOCOL_REGISTRY, "rgb", nan_batch)
    assert main(["score", "--protocol", "rgb", "--pred", str(tmp_path / "pred"), "--target",
                 str(tmp_path / "target"), "--out", str(tmp_path / "s.csv"), "--no-progress"]) == 2
    assert f"{tmp_path / 'pred'} vs {tmp_path / 'target'}: 1 of 1 images scored NaN" in _one_error_line(capsys)
    assert not (tmp_path / "s.csv").exists()


def test_load_weights_refuses_non_finite_state_dicts():
    from mprnet.checkpoint import load_weights
    from mprnet.model import build_model

    model = build_model("denoising", **TINY_MODEL)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["shallow_feat1.0.weight"][0, 0, 0, 0] = -float("inf")
    with pytest.raises(CheckpointError, match=r"given\.pt: 1 of \d+ weight tensors .*shallow_feat1\.0\.weight: 1 of"):
        load_weights(model, state, name="given.pt")

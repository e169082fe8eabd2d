"""The shipped registry is complete and valid; broken registries fail with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mprnet.data.registry import load_registry
from mprnet.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "config" / "datasets.yaml"

# Copied verbatim from the MPRNet READMEs (Datasets/README.md of each task folder): the registry must use
# these exact strings, so a user can check them against the official repository by eye.
OFFICIAL_URLS = [
    "https://drive.google.com/drive/folders/1Hnnlc5kI0v9_BtfMytC2LR5VpLAFZtVe?usp=sharing",
    "https://drive.google.com/drive/folders/1PDWggNh8ylevFmrjo-JEvlmqsDlWWvZs?usp=sharing",
    "https://drive.google.com/drive/folders/12uv5sdg1mYsKJYv1v-9KcXL-ciFWFdAI?usp=sharing",
    "https://drive.google.com/drive/folders/104BC9aUpeRbvzBSVYDqjmg32gVMVT0Tj?usp=sharing",
    "https://drive.google.com/drive/folders/1AsgIP9_X0bg0olu2-1N6karm2x15cJWE?usp=sharing",
    "https://drive.google.com/drive/folders/1a2qKfXWpNuTGOm2-Jex8kfNSzYJLbqkf?usp=sharing",
    "https://drive.google.com/file/d/1Nl8NeHyT_zgNf7xFkshgwFTtsRlEcaRw/view?usp=sharing",
    "https://drive.google.com/drive/folders/1nRsTXj4iTUkTvBhTcGg8cySK8nd3vlhK?usp=sharing",
    "https://drive.google.com/drive/folders/1KYtzeKCiDRX9DSvC-upHrCqvC4sPAiJ1?usp=sharing",
    "https://drive.google.com/drive/folders/1EwDoajf5nStPIAcU4s9rdc8SPzfm3tW1?usp=sharing",
    "https://www.eecs.yorku.ca/~kamel/sidd/dataset.php",
    "https://drive.google.com/drive/folders/1S44fHXaVxAYW3KLNxK41NYCnyX9S79su?usp=sharing",
    "https://www.eecs.yorku.ca/~kamel/sidd/benchmark.php",
    "https://noise.visinf.tu-darmstadt.de/downloads/",
    "https://drive.google.com/file/d/1QwQUVbk6YVOJViCsOKYNykCsdJSVGRtb/view?usp=sharing",
    "https://drive.google.com/file/d/1O3WEJbcat7eTY6doXWeorAbQ1l_WmMnM/view?usp=sharing",
    "https://drive.google.com/file/d/1LODPt9kYmxwU98g96UrRA0_Eh5HYcsRw/view?usp=sharing",
    "https://drive.google.com/drive/folders/12jgrGdIh_lfiSsXyo-QicQuZYcLXp9rP?usp=sharing",
    "https://drive.google.com/drive/folders/1IpF_jCGBhqsXN4f1vBNQ6DGpr7Pk6LdO?usp=sharing",
    "https://drive.google.com/drive/folders/1usbZKuYg8c7UrUml2bdZSbuxh_JrHW67?usp=sharing",
]


def test_shipped_registry_is_valid_and_complete():
    registry = load_registry(REGISTRY)
    urls = {s["url"] for s in registry.sources.values()}
    assert not set(OFFICIAL_URLS) - urls
    expected = {
        "rain13k": ("deraining", None), "test100": ("deraining", "y_channel"), "rain100h": ("deraining", "y_channel"),
        "rain100l": ("deraining", "y_channel"), "test2800": ("deraining", "y_channel"),
        "test1200": ("deraining", "y_channel"), "gopro": ("deblurring", "rgb"), "hide": ("deblurring", "rgb"),
        "realblur_j": ("deblurring", "realblur"), "realblur_r": ("deblurring", "realblur"),
        "realblur_j_train": ("deblurring", "realblur"), "realblur_r_train": ("deblurring", "realblur"),
        "sidd_train": ("denoising", None), "sidd_val": ("denoising", "rgb"), "sidd": ("denoising", "sidd"),
        "dnd": ("denoising", "dnd"),
        "pretrained_deblurring": ("deblurring", None), "pretrained_deraining": ("deraining", None),
        "pretrained_denoising": ("denoising", None), "released_results_deblurring": ("deblurring", None),
        "released_results_deraining": ("deraining", None), "released_results_denoising": ("denoising", None),
        "rain100l_orig": ("deraining", "y_channel"), "raintrainl": ("deraining", None),
    }
    got = {name: (entry["task"], entry["protocol"]) for name, entry in registry.datasets.items()}
    assert got == expected
    # Counts stated by the official repository and papers.
    splits = {name: entry["layout"]["splits"] for name, entry in registry.datasets.items()}
    assert splits["rain13k"]["train"]["count"] == 13711
    assert splits["test100"]["test"]["count"] == 98
    assert splits["sidd"]["test"]["count"] == 40 * 32
    assert splits["dnd"]["test"]["count"] == 50 * 20
    assert registry.lock_path == REGISTRY.with_name("datasets.lock.yaml")
    # Registration-walled sources say what to download (acceptance is by content, not by these words).
    for sid in ("dnd", "sidd_benchmark", "sidd_medium_srgb", "realblur_official", "rain100l_jorder"):
        assert registry.sources[sid]["kind"] == "manual" and registry.sources[sid]["download"]
    # RealBlur.zip is what the authors' download_dataset.sh fetches: the instructions name it.
    assert "RealBlur.zip" in " ".join(registry.sources["realblur_official"]["download"])


def test_every_image_dataset_names_a_stem_scheme_and_test_sets_share_them_across_copies():
    """One name per test image: each image-producing dataset names its scheme, and the datasets
    that are copies of the same test images use the same one (the released results' form)."""
    from mprnet.data.stems import SCHEMES

    registry = load_registry(REGISTRY)
    stems = {name: entry["layout"].get("stem") for name, entry in registry.datasets.items()}
    for name, entry in registry.datasets.items():
        whole = entry["layout"]["converter"] in ("copy_files", "copy_tree")
        assert (stems[name] is None) == whole, name
        assert whole or stems[name] in SCHEMES
    assert stems["realblur_j"] == stems["realblur_j_train"] == stems["realblur_r"] == stems["realblur_r_train"] \
        == "scene_frame"
    assert stems["rain100l"] == stems["rain100l_orig"] == stems["rain100h"] == stems["test100"] == "number"
    assert stems["gopro"] == "gopro" and stems["sidd"] == stems["dnd"] == "block"
    assert SCHEMES["scene_frame"].example == "scene230-7"


def test_known_defects_are_stated_in_the_registry():
    registry = load_registry(REGISTRY)
    defects = {name: " ".join(entry.get("defects", [])) for name, entry in registry.datasets.items()}
    assert "98 pairs" in defects["test100"] and "13,711" in defects["rain13k"]
    assert "926_10(1).jpg" in defects["test2800"]
    assert "blur_gamma" in defects["gopro"]
    assert "1,079" in defects["hide"] and "942" in defects["hide"]
    for name in ("rain100l", "rain100h", "rain100l_orig"):
        assert "Versions" in defects[name], name
    assert "512x384" in defects["rain100l"]
    assert all(name in defects["sidd_val"] for name in ("target/", "groundtruth/", "target_crops/"))


def _broken(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(REGISTRY.read_text())
    edit(raw)
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["datasets"]["gopro"]["layout"].__setitem__("converter", "magic"),
     r"datasets\.gopro\.layout\.converter: 'magic' is not one of"),
    (lambda r: r["datasets"]["hide"].__setitem__("protocol", "psnr"),
     r"datasets\.hide\.protocol: 'psnr' is not one of"),
    (lambda r: r["sources"]["dnd"].pop("download"), r"sources\.dnd: 'download' is a required property"),
    (lambda r: r["datasets"]["gopro"]["layout"].__setitem__("stem", "gopro_names"),
     r"datasets\.gopro\.layout\.stem: 'gopro_names' is not one of number, "),
    (lambda r: r["datasets"]["gopro"]["layout"].pop("stem"), r"datasets\.gopro\.layout: 'stem' is a required"),
    (lambda r: r["datasets"]["gopro"]["layout"]["splits"]["test"].__setitem__("blur_folder", "blur_gamma"),
     r"datasets\.gopro\.layout\.splits\.test: 'blur_folder' was unexpected|"
     r"datasets\.gopro\.layout\.splits\.test: Additional properties"),
    (lambda r: r["datasets"]["sidd"]["layout"]["splits"]["test"].__setitem__("source", "nowhere"),
     r"datasets\.sidd\.layout\.splits\.test\.source: unknown source 'nowhere'"),
    (lambda r: r["datasets"]["sidd"]["layout"]["splits"]["test"].__setitem__("list", "x.txt"),
     r"datasets\.sidd\.layout\.splits\.test: key\(s\) list mean nothing to converter 'sidd_blocks'"),
    (lambda r: r["datasets"].__setitem__("raw", r["datasets"]["dnd"]), r"datasets: 'raw' should not be valid"),
])
def test_errors_name_the_key(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        load_registry(_broken(tmp_path, edit))


def test_unreadable_registry(tmp_path):
    path = tmp_path / "datasets.yaml"
    path.write_text("sources: [unclosed\n")
    with pytest.raises(ConfigError, match="datasets.yaml: not valid YAML"):
        load_registry(path)
    with pytest.raises(ConfigError, match="not found"):
        load_registry(tmp_path / "missing.yaml")
    registry = load_registry(REGISTRY)
    with pytest.raises(ConfigError, match="no dataset 'gopr0'"):
        registry.dataset("gopr0")


def test_datasets_command_shows_stems_locks_and_known_defects(tmp_path, capsys):
    from mprnet.cli import main

    assert main(["datasets", "--registry", str(REGISTRY), "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    header, *rows = out.split("\n\nKnown defects")[0].splitlines()
    assert header.split() == ["name", "task", "role", "protocol", "stem", "sources", "state", "lock"]
    row = {line.split()[0]: line.split() for line in rows}
    assert row["realblur_j"][4] == "scene230-7" and row["gopro"][4] == "GOPR0884_11_00-000285"
    assert row["rain100l_orig"][-1] == "pinned" and row["rain100l"][-1] == "-"  # nothing trusted yet
    defects = out.split("Known defects")[1]
    assert "  test100: 98 pairs" in defects and "926_10(1).jpg" in defects and "blur_gamma" in defects

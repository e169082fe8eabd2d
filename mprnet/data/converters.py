"""Converters from each dataset's original layout to ``<split>/{input,target}/<stem>.png``.

One function per ``layout.converter`` of the registry, ``convert_X(ctx, split, spec, out)``:
it finds the source files below the fetched (and unpacked) source folders and writes the split
into ``out``, a temporary folder that ``prepare_dataset`` validates and renames into place.

* ``paired_folders``: ``.../input/*`` and ``.../target/*`` (Rain13K and the deraining test sets,
  SIDD validation PNGs), paired by stem or, like the official loaders, by sorted position;
* ``gopro``: MPRNet's ``{input,target}`` copy, or GOPRO_Large sequence folders
  ``<seq>/{blur,sharp}/<frame>.png`` (stem ``<seq>-<frame>``);
* ``hide``: MPRNet's copy, or HIDE_dataset ``test/test-*/<name>`` + ``GT/<name>``;
* ``realblur``: MPRNet's copy, or the RealBlur archive with its ``<gt> <blur>`` list files;
* ``sidd_blocks``: the SIDD validation ``.mat`` blocks (uint8, so PNG is lossless);
* ``sidd_medium_patches``: seeded random patches from SIDD-Medium sRGB;
* ``dnd_crops``: the 20 boxes of each DND image, as 8-bit PNG plus exact float32 ``.npy``;
* ``copy_files`` / ``copy_tree``: weights and result folders, copied as they are.
* ``rain_norain``: JORDER-style pairs numbered N (Rain100L/H and RainTrainL/H as RCDNet, PReNet
  and MSPFN distribute them), matched by N.
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..atomic import atomic_write_text
from ..errors import DataError
from ..images import list_images, read_rgb, to_uint8, write_png
from .extract import archive_stem, is_archive_name, safe_extract
from .fetch import source_files
from .filelock import exclusive
from .pairs import Pair, copy_pairs, default_workers, pair_folders, validate_pairs
from .registry import Registry

WHOLE_FOLDER_CONVERTERS = ("copy_files", "copy_tree")
IGNORED_PARTS = ("__MACOSX",)


# --------------------------------------------------------------------------- context

@dataclass
class PrepareContext:
    name: str
    entry: dict
    registry: Registry
    data_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def downloads(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def raw(self) -> Path:
        return self.data_dir / "raw"

    def roots(self, source_id: str) -> list[Path]:
        """Folders to search for a source's files: the download and its unpacked archives."""
        folder = self.downloads / source_id
        if not folder.is_dir():
            raise DataError(
                f"{folder}: source {source_id!r} is not fetched yet; run `mprnet fetch {self.name}` first"
            )
        archives = [a for a in source_files(folder) if is_archive_name(a)]
        if archives:
            # Parallel jobs preparing datasets of the same source unpack it once.
            with exclusive(self.raw / f".{source_id}.lock"):
                for archive in archives:
                    dest = self.raw / source_id / archive.relative_to(folder).parent / archive_stem(archive)
                    if not dest.exists():
                        print(f"unpacking {archive} -> {dest}")
                        safe_extract(archive, dest)
        return [p for p in (folder, self.raw / source_id) if p.is_dir()]


def _visible(root: Path, path: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(p.startswith(".") or p in IGNORED_PARTS for p in parts)


def find_paths(roots: list[Path], pattern: str, *, dirs: bool) -> list[Path]:
    """Paths matching ``pattern`` at any depth below the roots (hidden and __MACOSX skipped)."""
    found: set[Path] = set()
    for root in roots:
        for candidate in list(root.glob(pattern)) + list(root.glob("**/" + pattern)):
            if (candidate.is_dir() if dirs else candidate.is_file()) and _visible(root, candidate):
                found.add(candidate)
    return sorted(found)


def find_one(roots: list[Path], pattern: str, *, dirs: bool, what: str) -> Path:
    found = find_paths(roots, pattern, dirs=dirs)
    if len(found) == 1:
        return found[0]
    where = ", ".join(str(r) for r in roots)
    if not found:
        raise DataError(f"no {what} matching {pattern!r} under {where}")
    shown = ", ".join(str(p) for p in found[:6]) + (" ..." if len(found) > 6 else "")
    raise DataError(f"{len(found)} {what}s match {pattern!r} under {where} ({shown}); "
                    "name it more precisely in config/datasets.yaml")


# --------------------------------------------------------------------------- converters

def _folder_pairs(split: str, spec: dict, roots: list[Path], required: bool = False) -> list | None:
    """The pairs of an MPRNet-style input/target copy; None when there is none (an error if ``required``)."""
    if "input" in spec or "target" in spec:
        names = (spec.get("input", "input"), spec.get("target", "target"))
    else:
        names = next(((a, b) for a, b in ((f"{split}/input", f"{split}/target"), ("input", "target"))
                      if find_paths(roots, a, dirs=True)), None)
    if names is None:
        if required:
            raise DataError(f"no input/ and target/ folders under {', '.join(map(str, roots))}")
        return None
    dirs = (find_one(roots, names[0], dirs=True, what="input folder"),
            find_one(roots, names[1], dirs=True, what="target folder"))
    return pair_folders(*dirs, spec.get("pair_by", "stem"))


def convert_paired_folders(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    pairs = _folder_pairs(split, spec, ctx.roots(spec["source"]), required=True)
    copy_pairs(pairs, out, progress=ctx.progress, label=f"{ctx.name}/{split}")


def _partners(images: list[Path], partner_dir: Path, stem) -> tuple[list[Pair], list[Path]]:
    """Pair each image with the file of the same name in ``partner_dir``; also return the images
    that have none. ``stem(image)`` names the pair."""
    pairs, lost = [], []
    for image in images:
        partner = partner_dir / image.name
        if partner.is_file():
            pairs.append((stem(image), image, partner))
        else:
            lost.append(image)
    return pairs, lost


def gopro_sequence_pairs(roots: list[Path], split: str, blur_folder: str = "blur") -> list[Pair]:
    """GOPRO_Large: ``<split>/<sequence>/{blur,sharp}/<frame>.png`` -> stem ``<sequence>-<frame>``."""
    blur_dirs = find_paths(roots, blur_folder, dirs=True)

    def inside_split(folder: Path) -> bool:  # judged below the root only: /home/x/test/... is no split
        root = next(r for r in roots if r in folder.parents)
        return split in folder.relative_to(root).parts[:-2]

    blur_dirs = [d for d in blur_dirs if inside_split(d)] or blur_dirs
    pairs: list[Pair] = []
    missing = []
    for blur in blur_dirs:
        sharp = blur.parent / "sharp"
        sequence = blur.parent.name
        if not sharp.is_dir():
            missing.append(f"{blur.parent}: no sharp/ folder")
            continue
        found, lost = _partners(list_images(blur), sharp, lambda frame: f"{sequence}-{frame.stem}")
        pairs += found
        missing += [f"{frame}: no sharp frame {sharp / frame.name}" for frame in lost]
    if missing:
        raise DataError(f"{len(missing)} unpaired GoPro frame(s): " + "; ".join(missing[:20]))
    return pairs


def convert_gopro(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    roots = ctx.roots(spec["source"])
    pairs = _folder_pairs(split, spec, roots)
    if pairs is None:
        pairs = gopro_sequence_pairs(roots, split, spec.get("blur_folder", "blur"))
        if not pairs:
            raise DataError(f"neither input/target folders nor GoPro sequence folders (<seq>/blur, <seq>/sharp) "
                            f"under {', '.join(map(str, roots))}")
        ctx.notes.append("built from GOPRO_Large sequence folders: blur -> input, sharp -> target")
    copy_pairs(pairs, out, progress=ctx.progress, label=f"{ctx.name}/{split}")


def convert_hide(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    roots = ctx.roots(spec["source"])
    pairs = _folder_pairs(split, spec, roots)
    if pairs is None:
        gt = find_one(roots, "GT", dirs=True, what="HIDE GT folder")
        blurred = [p for d in find_paths(roots, f"{split}/*", dirs=True) for p in list_images(d)]
        if not blurred:
            raise DataError(f"no HIDE {split}/<subset>/ images under {', '.join(map(str, roots))}")
        pairs, missing = _partners(blurred, gt, lambda path: path.stem)
        if missing:
            raise DataError(f"{len(missing)} HIDE image(s) without a GT/ partner: " + ", ".join(map(str, missing[:20])))
        ctx.notes.append("built from HIDE_dataset: test/test-*/<name> -> input, GT/<name> -> target")
    copy_pairs(pairs, out, progress=ctx.progress, label=f"{ctx.name}/{split}")


def realblur_list_pairs(list_file: Path) -> list[Pair]:
    """Pairs of a RealBlur list file: each line '<gt path> <blur path>' relative to the list's folder."""
    base = list_file.parent
    pairs, problems = [], []
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            problems.append(f"line {number}: expected '<gt> <blur>', got {line!r}")
            continue
        gt, blur = base / fields[0], base / fields[1]
        scene = Path(fields[1]).parts[-3] if len(Path(fields[1]).parts) >= 3 else "scene"
        index = re.sub(r"^blur_?", "", Path(fields[1]).stem)
        for path in (gt, blur):
            if not path.is_file():
                problems.append(f"line {number}: {path} is missing")
        pairs.append((f"{scene}_{index}", blur, gt))
    if problems:
        raise DataError(f"{list_file}: {len(problems)} problem(s): " + "; ".join(problems[:20]))
    return pairs


def convert_realblur(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    roots = ctx.roots(spec["source"])
    if "list" in spec:
        pairs = realblur_list_pairs(find_one(roots, spec["list"], dirs=False, what="RealBlur list file"))
        ctx.notes.append(f"pairs from the RealBlur list {spec['list']} ('<gt> <blur>'), stem <scene>_<k>")
    else:
        pairs = _folder_pairs(split, spec, roots, required=True)
    copy_pairs(pairs, out, progress=ctx.progress, label=f"{ctx.name}/{split}")


def load_mat_array(path: Path, key: str) -> np.ndarray:
    """A variable of a MATLAB file, v5 (scipy) or v7.3 (HDF5, axes reversed back to MATLAB order)."""
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # -v7.3: HDF5 behind a 512-byte MATLAB header
        with h5py.File(path, "r") as handle:
            if key not in handle:
                raise DataError(f"{path}: no variable {key!r} (has {', '.join(handle.keys())})")
            data = np.asarray(handle[key])
        return data.transpose(tuple(reversed(range(data.ndim))))
    try:
        content = scipy.io.loadmat(path, variable_names=[key])
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path}: unreadable .mat file ({exc})") from None
    if key not in content:
        raise DataError(f"{path}: no variable {key!r}")
    return content[key]


def _blocks_as_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    scaled = array.astype(np.float64) * 255.0
    if np.issubdtype(array.dtype, np.floating) and np.array_equal(scaled, np.rint(scaled)) and scaled.min() >= 0 and scaled.max() <= 255:
        return scaled.astype(np.uint8)
    raise DataError(f"{path}: blocks are {array.dtype}, not 8-bit; PNG would not be lossless")


def convert_sidd_blocks(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    from tqdm import tqdm

    roots = ctx.roots(spec["source"])
    noisy_name = spec.get("noisy", "ValidationNoisyBlocksSrgb.mat")
    gt_name = spec.get("gt", "ValidationGtBlocksSrgb.mat")
    noisy_path = find_one(roots, noisy_name, dirs=False, what="SIDD noisy blocks file")
    gt_path = find_one(roots, gt_name, dirs=False, what="SIDD ground-truth blocks file")
    noisy = _blocks_as_uint8(load_mat_array(noisy_path, Path(noisy_name).stem), noisy_path)
    gt = _blocks_as_uint8(load_mat_array(gt_path, Path(gt_name).stem), gt_path)
    if noisy.ndim != 5 or noisy.shape[-1] != 3:
        raise DataError(f"{noisy_path}: expected images x blocks x H x W x 3, got shape {noisy.shape}")
    if noisy.shape != gt.shape:
        raise DataError(f"{noisy_path} has shape {noisy.shape} but {gt_path} has {gt.shape}")
    jobs = [(i, k) for i in range(noisy.shape[0]) for k in range(noisy.shape[1])]

    def write(job):
        i, k = job
        stem = f"{i + 1:04d}_{k + 1:02d}"
        write_png(out / "input" / f"{stem}.png", np.ascontiguousarray(noisy[i, k]))
        write_png(out / "target" / f"{stem}.png", np.ascontiguousarray(gt[i, k]))

    with ThreadPoolExecutor(default_workers()) as pool:
        list(tqdm(pool.map(write, jobs), total=len(jobs), desc=f"{ctx.name}/{split}", unit="block",
                  disable=not ctx.progress, leave=False))
    ctx.notes.append("blocks are uint8: PNG is lossless and target/255 equals the .mat ground truth "
                     "(the sidd protocol's im2single) exactly; stems <image>_<block>, both 1-based")


def _sidd_medium_pairs(roots: list[Path]) -> list[Pair]:
    pairs, missing = [], []
    gts = sorted({p for root in roots for p in root.rglob("*") if p.is_file() and _visible(root, p)
                  and "GT_SRGB" in p.name.upper() and p.suffix.lower() == ".png"})
    for gt in gts:
        noisy = gt.with_name(re.sub("GT_SRGB", "NOISY_SRGB", gt.name, flags=re.IGNORECASE))
        shot = re.search(r"GT_SRGB_?(\w*)$", gt.stem, flags=re.IGNORECASE)
        stem = f"{gt.parent.name}_{shot.group(1) if shot and shot.group(1) else '0'}"
        (pairs.append((stem, noisy, gt)) if noisy.is_file() else missing.append(str(gt)))
    if missing:
        raise DataError(f"{len(missing)} SIDD GT image(s) without a NOISY partner: " + ", ".join(missing[:20]))
    if not pairs:
        raise DataError(f"no SIDD-Medium *GT_SRGB*.PNG images under {', '.join(map(str, roots))}")
    return pairs


def convert_sidd_medium_patches(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    from tqdm import tqdm

    patches = int(ctx.options.get("patches") or spec.get("patches", 300))
    size = int(ctx.options.get("patch_size") or spec.get("patch_size", 256))
    seed = int(ctx.options["seed"] if ctx.options.get("seed") is not None else spec.get("seed", 0))
    pairs = _sidd_medium_pairs(ctx.roots(spec["source"]))
    validate_pairs(pairs)

    def cut(job):
        index, (stem, noisy_path, gt_path) = job
        noisy, gt = read_rgb(noisy_path), read_rgb(gt_path)
        height, width = gt.shape[:2]
        if height < size or width < size:
            raise DataError(f"{gt_path}: {height}x{width} is smaller than the {size}x{size} patches")
        # One generator per image, seeded by (seed, index): the result does not depend on
        # the order in which threads finish.
        rng = np.random.default_rng([seed, index])
        for j in range(patches):
            r = int(rng.integers(0, height - size + 1))
            c = int(rng.integers(0, width - size + 1))
            name = f"{stem}_{j:03d}.png"
            write_png(out / "input" / name, np.ascontiguousarray(noisy[r:r + size, c:c + size]))
            write_png(out / "target" / name, np.ascontiguousarray(gt[r:r + size, c:c + size]))

    with ThreadPoolExecutor(min(4, default_workers())) as pool:  # full-size SIDD images are ~50 MB each
        list(tqdm(pool.map(cut, enumerate(pairs)), total=len(pairs), desc=f"{ctx.name}/{split}",
                  unit="image", disable=not ctx.progress, leave=False))
    if patches != spec.get("patches", 300):  # the registry's count assumes its own patch count
        ctx.options["_expected_count"] = len(pairs) * patches
    ctx.notes.append(f"{patches} random {size}x{size} patches per image pair, numpy default_rng([{seed}, image index])")


def _dnd_boxes(info_path: Path) -> list[np.ndarray]:
    import h5py

    try:
        with h5py.File(info_path, "r") as handle:
            info = handle["info"]
            refs = np.asarray(info["boundingboxes"]).ravel()
            return [np.asarray(handle[ref]).T for ref in refs]
    except (OSError, KeyError) as exc:
        raise DataError(f"{info_path}: not a DND info.mat with info/boundingboxes ({exc})") from None


def convert_dnd_crops(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    import h5py
    from tqdm import tqdm

    roots = ctx.roots(spec["source"])
    info_path = find_one(roots, "info.mat", dirs=False, what="DND info.mat")
    images_dir = find_one(roots, "images_srgb", dirs=True, what="DND images_srgb folder")
    boxes_per_image = _dnd_boxes(info_path)
    (out / "input").mkdir(parents=True, exist_ok=True)
    (out / "input_float").mkdir(parents=True, exist_ok=True)
    rows = ["stem,image,box,row_start,row_stop,col_start,col_stop"]
    exact = True
    for i, boxes in enumerate(tqdm(boxes_per_image, desc=f"{ctx.name}/{split}", unit="image",
                                   disable=not ctx.progress, leave=False)):
        path = images_dir / f"{i + 1:04d}.mat"
        try:
            with h5py.File(path, "r") as handle:
                image = np.asarray(handle["InoisySRGB"], dtype=np.float32).T
        except (OSError, KeyError) as exc:
            raise DataError(f"{path}: not a DND image with InoisySRGB ({exc})") from None
        if image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"{path}: InoisySRGB has shape {image.shape}, expected H x W x 3")
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise DataError(f"{info_path}: boxes of image {i + 1} have shape {boxes.shape}, expected N x 4")
        for k, box in enumerate(boxes):
            # MATLAB boxes are 1-based and inclusive: rows b0..b2, columns b1..b3.
            r0, c0, r1, c1 = int(box[0]) - 1, int(box[1]) - 1, int(box[2]), int(box[3])
            if not (0 <= r0 < r1 <= image.shape[0] and 0 <= c0 < c1 <= image.shape[1]):
                raise DataError(f"{info_path}: box {k + 1} of image {i + 1} {box.tolist()} lies outside "
                                f"the {image.shape[0]}x{image.shape[1]} image {path}")
            crop = np.ascontiguousarray(image[r0:r1, c0:c1])
            stem = f"{i + 1:04d}_{k + 1:02d}"
            scaled = crop.astype(np.float64) * 255.0
            exact = exact and bool(np.all(np.abs(scaled - np.rint(scaled)) < 1e-3))
            write_png(out / "input" / f"{stem}.png", to_uint8(crop))
            np.save(out / "input_float" / f"{stem}.npy", crop.astype(np.float32))
            rows.append(f"{stem},{i + 1},{k + 1},{r0},{r1},{c0},{c1}")
    atomic_write_text(out / "boxes.csv", "\n".join(rows) + "\n")
    ctx.notes.append(
        "input/*.png are the crops rounded to 8 bits (to_uint8); input_float/*.npy hold the exact float32 "
        "crops the official test_DND.py feeds the network; stems <image:04d>_<box:02d>, both 1-based; "
        "boxes.csv has the 0-based half-open row/column ranges; no target (private ground truth). "
        + ("All crop values are multiples of 1/255, so the PNGs are exact." if exact
           else "The float crops are not all multiples of 1/255: the PNGs differ by up to 0.5/255.")
    )


def convert_copy_files(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    roots = ctx.roots(spec["source"])
    for name, pattern in spec.get("files", {}).items():
        shutil.copyfile(find_one(roots, pattern, dirs=False, what="file"), out / name)


def convert_copy_tree(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    for root in ctx.roots(spec["source"]):
        for path in source_files(root):
            if is_archive_name(path):
                continue  # its unpacked copy under raw/ is copied instead
            target = out / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


# --------------------------------------------------------------------------- numbered rain/clean pairs
#
# The JORDER sets (Rain100L/H and their training sets RainTrainL/H) circulate in several
# layouts, all of which number the pairs 1..N and say by folder or file prefix which image is
# rainy. Pairs are matched by that number N, never by list position or full file name.

# layout name -> (rainy side, clean side), as shown in error messages
RAIN_LAYOUTS = {
    "rain_norain_folders": ("rain/<x>-N.png", "norain/<x>-N.png"),  # RCDNet: both named norain-N
    "rainy_folder": ("rainy/rain-N.png", "norain-N.png"),           # PReNet's Rain100L/Rain100H
    "side_by_side": ("rain-N.png", "norain-N.png"),                 # PReNet's RainTrainL/RainTrainH
    "mspfn_crops": ("inputcrop/N.png", "cleancrop/N.png"),          # MSPFN's R100L/R100H test data
}
_NUMBERED = re.compile(r"^(?P<prefix>[A-Za-z]*)[-_]?(?P<n>\d+)$")


def _describe_rain_layouts() -> str:
    return "; ".join(f"{rain} + {clean}" for rain, clean in RAIN_LAYOUTS.values())


def _visible_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED_PARTS)


def _prefixed(images: list[Path], prefix: str) -> list[Path]:
    return [p for p in images if (m := _NUMBERED.match(p.stem)) and m["prefix"].lower() == prefix]


def detect_rain_layouts(folder: Path) -> list[str]:
    """The layouts of :data:`RAIN_LAYOUTS` found directly in ``folder`` (normally one)."""
    images = list_images(folder)
    found = []
    if (folder / "rain").is_dir() and (folder / "norain").is_dir():
        found.append("rain_norain_folders")
    if (folder / "rainy").is_dir() and _prefixed(images, "norain"):
        found.append("rainy_folder")
    if _prefixed(images, "rain") and _prefixed(images, "norain"):
        found.append("side_by_side")
    if (folder / "inputcrop").is_dir() and (folder / "cleancrop").is_dir():
        found.append("mspfn_crops")
    return found


def _numbered(images: list[Path], prefixes: tuple[str, ...] | None, side: str,
              problems: list[str]) -> dict[int, Path]:
    """N -> file for one side of a layout; ``prefixes`` None accepts any word before N."""
    by_number: dict[int, Path] = {}
    for path in images:
        match = _NUMBERED.match(path.stem)
        if not match or (prefixes is not None and match["prefix"].lower() not in prefixes):
            problems.append(f"{path}: not a {side} image of this layout (expected a name like "
                            f"{'/'.join(f'{p}-N' for p in prefixes) if prefixes else '<x>-N or N'}.png)")
            continue
        number = int(match["n"])
        if number in by_number:
            problems.append(f"{path}: N={number} twice, also {by_number[number]}")
            continue
        by_number[number] = path
    return by_number


def rain_layout_pairs(folder: Path, layout: str) -> list[Pair]:
    """The pairs of ``folder`` in ``layout``, matched by N; stems are N zero-padded (``001``).

    Raises ``DataError`` listing every file whose name does not fit the layout, every N that
    occurs twice on one side, and every N that has a rainy image but no clean one or the
    reverse (naming the file that has no partner).
    """
    problems: list[str] = []
    if layout == "rain_norain_folders":
        rainy = _numbered(list_images(folder / "rain"), None, "rainy", problems)
        clean = _numbered(list_images(folder / "norain"), None, "clean", problems)
    elif layout == "rainy_folder":
        rainy = _numbered(list_images(folder / "rainy"), ("rain", "rainy"), "rainy", problems)
        clean = _numbered(list_images(folder), ("norain",), "clean", problems)
    elif layout == "side_by_side":
        images = list_images(folder)
        rainy = _numbered(_prefixed(images, "rain"), ("rain",), "rainy", problems)
        clean = _numbered([p for p in images if p not in set(_prefixed(images, "rain"))], ("norain",),
                          "clean", problems)
    elif layout == "mspfn_crops":
        rainy = _numbered(list_images(folder / "inputcrop"), ("",), "rainy", problems)
        clean = _numbered(list_images(folder / "cleancrop"), ("",), "clean", problems)
    else:
        raise ValueError(f"unknown rain layout {layout!r}")
    for number in sorted(set(rainy) - set(clean)):
        problems.append(f"N={number}: rainy {rainy[number]} has no clean image")
    for number in sorted(set(clean) - set(rainy)):
        problems.append(f"N={number}: clean {clean[number]} has no rainy image")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; ... ({len(problems)} in all)" if len(problems) > 20 else "")
        raise DataError(f"{folder} ({RAIN_LAYOUTS[layout][0]} + {RAIN_LAYOUTS[layout][1]}): "
                        f"{len(problems)} problem(s): {shown}")
    if not rainy:
        raise DataError(f"{folder}: no images in the {RAIN_LAYOUTS[layout][0]} + {RAIN_LAYOUTS[layout][1]} layout")
    width = max(3, len(str(max(rainy))))
    return [(f"{n:0{width}d}", rainy[n], clean[n]) for n in sorted(rainy)]


def _rain_layout_home(folder: Path) -> tuple[Path, list[str]]:
    """Where a layout sits: ``folder`` itself or, failing that, its only sub-folder (RCDNet's
    ``small/``, a wrapper folder from unpacking); returns that folder and the layouts found."""
    layouts = detect_rain_layouts(folder)
    if layouts:
        return folder, layouts
    subfolders = [p for p in _visible_entries(folder) if p.is_dir()]
    if len(subfolders) == 1:
        inner = detect_rain_layouts(subfolders[0])
        if inner:
            return subfolders[0], inner
    return folder, []


def find_rain_folder(roots: list[Path], patterns: list[str]) -> tuple[Path, str]:
    """The one folder below ``roots`` that matches one of ``patterns`` and holds a known layout.

    Folders matching a pattern but holding no known layout are passed over; when no folder
    matches any pattern, the roots themselves are tried (a source that holds one split as is).
    Raises ``DataError`` when none or several qualify, or when a folder holds two layouts at once.
    """
    candidates = [p for pattern in patterns for p in find_paths(roots, pattern, dirs=True)]
    tried = candidates or list(roots)
    homes: dict[Path, list[str]] = {}
    for candidate in tried:
        home, layouts = _rain_layout_home(candidate)
        if layouts:
            homes[home] = layouts
    where = ", ".join(map(str, roots))
    if not homes:
        looked = "; ".join(
            f"{c} holds {', '.join(p.name + ('/' if p.is_dir() else '') for p in _visible_entries(c)[:8]) or 'nothing'}"
            for c in tried[:6])
        matched = f"folders matching {' or '.join(map(repr, patterns))}" if candidates else \
            f"no folder matches {' or '.join(map(repr, patterns))}, so the source folders themselves"
        raise DataError(f"no rainy/clean pairs in a known layout under {where}: {matched} were searched "
                        f"({looked}). Known layouts: {_describe_rain_layouts()}")
    if len(homes) > 1:
        raise DataError(f"{len(homes)} folders under {where} hold rainy/clean pairs for {' or '.join(patterns)}: "
                        f"{', '.join(map(str, homes))}; name one precisely (`folder:` in config/datasets.yaml)")
    (home, layouts), = homes.items()
    if len(layouts) > 1:
        raise DataError(f"{home} holds several layouts at once ({', '.join(layouts)}); it is not a copy as "
                        f"distributed. Known layouts: {_describe_rain_layouts()}")
    return home, layouts[0]


def _check_numbering(ctx: PrepareContext, split: str, folder: Path, pairs: list[Pair]) -> None:
    """With a registry count, name the N that are missing from 1..count or lie beyond it."""
    expected = ctx.options.get("_expected_count", ctx.entry["layout"]["splits"][split].get("count"))
    if expected is None or len(pairs) == expected:
        return
    numbers = {int(stem) for stem, _, _ in pairs}
    missing = sorted(set(range(1, expected + 1)) - numbers)
    beyond = sorted(n for n in numbers if n > expected)
    detail = "; ".join(part for part in (
        f"N missing from 1..{expected}: {_preview_numbers(missing)}" if missing else "",
        f"N beyond {expected}: {_preview_numbers(beyond)}" if beyond else "") if part)
    message = (f"{folder}: {len(pairs)} pairs, but {ctx.registry.path} expects {expected} for "
               f"{ctx.name}/{split} ({detail})")
    if not ctx.options.get("_allow_count_mismatch"):
        raise DataError(message + "; nothing was written (--allow-count-mismatch accepts it)")
    ctx.notes.append(message)


def _preview_numbers(numbers: list[int], limit: int = 20) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    return shown if len(numbers) <= limit else f"{shown}, ... ({len(numbers)} in all)"


def convert_rain_norain(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    """JORDER-style numbered pairs (Rain100L/H, RainTrainL/H, MSPFN's crops) -> ``<stem>.png``.

    ``spec["folder"]`` (a pattern or a list of them; default the split's name) names the folder
    that holds the split, at any depth below the source; the layout inside is recognised from
    :data:`RAIN_LAYOUTS`. Everything is checked (names, duplicates, partners, count by N, then
    sizes and bit depth in ``copy_pairs``) before the first image is written.
    """
    roots = ctx.roots(spec["source"])
    patterns = spec.get("folder", split)
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    folder, layout = find_rain_folder(roots, patterns)
    pairs = rain_layout_pairs(folder, layout)
    _check_numbering(ctx, split, folder, pairs)
    rain, clean = RAIN_LAYOUTS[layout]
    root = next((r for r in roots if r == folder or r in folder.parents), None)
    shown = folder.relative_to(root).as_posix() if root is not None else str(folder)
    ctx.notes.append(f"built from {shown or '.'}/ in the {rain} + {clean} layout: pairs matched by N, "
                     f"stem = N zero-padded to {len(pairs[0][0])} digits")
    copy_pairs(pairs, out, progress=ctx.progress, label=f"{ctx.name}/{split}")


CONVERTERS: dict[str, Callable[[PrepareContext, str, dict, Path], None]] = {
    "paired_folders": convert_paired_folders,
    "gopro": convert_gopro,
    "hide": convert_hide,
    "realblur": convert_realblur,
    "sidd_blocks": convert_sidd_blocks,
    "sidd_medium_patches": convert_sidd_medium_patches,
    "dnd_crops": convert_dnd_crops,
    "copy_files": convert_copy_files,
    "copy_tree": convert_copy_tree,
    "rain_norain": convert_rain_norain,
}

"""Converters from each dataset's original layout to ``<split>/{input,target}/<stem>.png``.

One :class:`Converter` per ``layout.converter`` of the registry, in two steps:

* ``locate(ctx, split, spec)`` finds what the split is made of below the fetched (and unpacked)
  source folders (pairs of files, the ``.mat`` files, ...; :mod:`.finding`) and raises
  ``DataError`` saying what is missing. It reads names and small index files only, so ``mprnet
  fetch`` runs it to decide whether a download or a manual drop holds what ``prepare`` needs
  (:mod:`.gate`: acceptance by content, not by archive name);
* ``write(ctx, split, spec, located, out)`` writes the split into ``out``, a temporary folder
  that ``prepare_dataset`` validates and renames into place.

Pairs are renamed to the dataset's stem scheme (``layout.stem``, :mod:`mprnet.data.stems`)
before anything is written, so one image has one name whatever copy it came from.

* ``paired_folders``: ``.../input/*`` and ``.../target/*`` (Rain13K and the deraining test sets,
  SIDD validation PNGs: ``input``/``target`` may list several folder names), paired by stem or,
  like the official loaders, by sorted position;
* ``gopro``: MPRNet's ``{input,target}`` copy, or GOPRO_Large sequence folders
  ``<seq>/{blur,sharp}/<frame>.png`` (stem ``<seq>-<frame>``; ``blur``, never ``blur_gamma``);
* ``hide``: MPRNet's copy, or HIDE_dataset ``test/test-*/<name>`` + ``GT/<name>``;
* ``realblur``: MPRNet's copy, or the RealBlur archive with its ``<gt> <blur>`` list files;
* ``sidd_blocks``: the SIDD validation ``.mat`` blocks (uint8, so PNG is lossless);
* ``sidd_medium_patches``: seeded random patches from SIDD-Medium sRGB;
* ``dnd_crops``: the 20 boxes of each DND image, as 8-bit PNG plus exact float32 ``.npy``;
* ``copy_files`` / ``copy_tree``: weights and result folders, copied as they are once read
  (images decoded, weights loaded and found finite).
* ``rain_norain``: JORDER-style pairs numbered N (Rain100L/H and RainTrainL/H as RCDNet, PReNet
  and MSPFN distribute them), matched by N (:mod:`.rain_layouts`).
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
from ..images import IMAGE_EXTENSIONS, list_images, read_rgb, to_uint8, write_png
from .extract import is_archive_name, unpack_archives
from .fetch import source_files
from .finding import find_one, find_paths, visible
from .pairs import Pair, copy_pairs, default_workers, pair_folders, validate_pairs
from .rain_layouts import RAIN_LAYOUTS, find_rain_folder, rain_layout_pairs
from .registry import Registry
from .stems import StemScheme, canonical_pairs, scheme_of

WHOLE_FOLDER_CONVERTERS = ("copy_files", "copy_tree")


# --------------------------------------------------------------------------- context

@dataclass
class PrepareContext:
    """What a converter needs: the dataset's registry entry, the data folder, options, notes.

    ``source_roots`` replaces the folders a source is read from (``mprnet fetch`` checks a
    download before it is moved into ``downloads/``); by default they are
    ``data/downloads/<source>/`` and ``data/raw/<source>/`` (its unpacked archives).
    """

    name: str
    entry: dict
    registry: Registry
    data_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    notes: list[str] = field(default_factory=list)
    source_roots: dict[str, list[Path]] | None = None
    count_mismatch: bool = False  # a count other than the registry's was accepted (allow_count_mismatch)

    @property
    def downloads(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def raw(self) -> Path:
        return self.data_dir / "raw"

    @property
    def scheme(self) -> StemScheme:
        return scheme_of(self.entry)

    def roots(self, source_id: str) -> list[Path]:
        """Folders to search for a source's files: the download and its unpacked archives."""
        if self.source_roots is not None and source_id in self.source_roots:
            return self.source_roots[source_id]
        folder = self.downloads / source_id
        if not folder.is_dir():
            raise DataError(
                f"{folder}: source {source_id!r} is not fetched yet; run `mprnet fetch {self.name}` first"
            )
        unpack_archives(folder, self.raw / source_id, quiet=not self.progress)
        return [p for p in (folder, self.raw / source_id) if p.is_dir()]

# --------------------------------------------------------------------------- converters

def _folder_pairs(split: str, spec: dict, roots: list[Path], required: bool = False) -> list | None:
    """The pairs of an MPRNet-style input/target copy; None when there is none (an error if ``required``).

    ``spec["input"]``/``spec["target"]`` name the folders (a pattern, or a list of alternatives
    such as SIDD's ``target``, ``groundtruth`` and ``target_crops``); by default
    ``<split>/input`` + ``<split>/target`` or ``input`` + ``target``.
    """
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


# GOPRO_Large holds blur/ (the average of sharp frames) and blur_gamma/ (averaged after a gamma
# curve). MPRNet's copy, and so its numbers, use blur/ (swz30/MPRNet#75, #24): pinned here.
GOPRO_BLUR = "blur"


def gopro_sequence_pairs(roots: list[Path], split: str) -> list[Pair]:
    """GOPRO_Large: ``<split>/<sequence>/{blur,sharp}/<frame>.png`` -> stem ``<sequence>-<frame>``.

    Only ``blur/`` is read (:data:`GOPRO_BLUR`); ``blur_gamma/`` is ignored.
    """
    blur_dirs = find_paths(roots, GOPRO_BLUR, dirs=True)

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


def locate_paired_folders(ctx: PrepareContext, split: str, spec: dict) -> list[Pair]:
    return _folder_pairs(split, spec, ctx.roots(spec["source"]), required=True)


def locate_gopro(ctx: PrepareContext, split: str, spec: dict) -> list[Pair]:
    roots = ctx.roots(spec["source"])
    pairs = _folder_pairs(split, spec, roots)
    if pairs is None:
        pairs = gopro_sequence_pairs(roots, split)
        if not pairs:
            raise DataError(f"neither input/target folders nor GoPro sequence folders (<seq>/blur, <seq>/sharp) "
                            f"under {', '.join(map(str, roots))}")
        ctx.notes.append(f"built from GOPRO_Large sequence folders: {GOPRO_BLUR} -> input, sharp -> target")
    return pairs


def locate_hide(ctx: PrepareContext, split: str, spec: dict) -> list[Pair]:
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
    return pairs


def realblur_list_pairs(list_file: Path) -> list[Pair]:
    """Pairs of a RealBlur list file: each line '<gt path> <blur path>' relative to the list's folder.

    A blur path ``.../scene230/blur/blur_7.png`` names the pair ``scene230-7``, the form of
    MPRNet's copy and the released results (:data:`mprnet.data.stems.SCHEMES` ``scene_frame``).
    Raises ``DataError`` listing every malformed line and missing file.
    """
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
        pairs.append((f"{scene}-{index}", blur, gt))
    if problems:
        raise DataError(f"{list_file}: {len(problems)} problem(s): " + "; ".join(problems[:20]))
    return pairs


def locate_realblur(ctx: PrepareContext, split: str, spec: dict) -> list[Pair]:
    roots = ctx.roots(spec["source"])
    if "list" in spec:
        pairs = realblur_list_pairs(find_one(roots, spec["list"], dirs=False, what="RealBlur list file"))
        ctx.notes.append(f"pairs from the RealBlur list {spec['list']} ('<gt> <blur>'), stem scene<NNN>-<k>")
        return pairs
    return _folder_pairs(split, spec, roots, required=True)


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


def _sidd_block_names(spec: dict) -> tuple[str, str]:
    return spec.get("noisy", "ValidationNoisyBlocksSrgb.mat"), spec.get("gt", "ValidationGtBlocksSrgb.mat")


def locate_sidd_blocks(ctx: PrepareContext, split: str, spec: dict) -> tuple[Path, Path]:
    roots = ctx.roots(spec["source"])
    noisy_name, gt_name = _sidd_block_names(spec)
    return (find_one(roots, noisy_name, dirs=False, what="SIDD noisy blocks file"),
            find_one(roots, gt_name, dirs=False, what="SIDD ground-truth blocks file"))


def write_sidd_blocks(ctx: PrepareContext, split: str, spec: dict, located: tuple[Path, Path], out: Path) -> None:
    from tqdm import tqdm

    noisy_path, gt_path = located
    noisy_name, gt_name = _sidd_block_names(spec)
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


def locate_sidd_medium(ctx: PrepareContext, split: str, spec: dict) -> list[Pair]:
    """SIDD-Medium sRGB ``<scene>/{GT,NOISY}_SRGB_<shot>.PNG`` at any depth -> stem ``<scene>_<shot>``."""
    roots = ctx.roots(spec["source"])
    pairs, missing = [], []
    gts = sorted({p for root in roots for p in root.rglob("*") if p.is_file() and visible(root, p)
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


def write_sidd_medium_patches(ctx: PrepareContext, split: str, spec: dict, pairs: list[Pair], out: Path) -> None:
    from tqdm import tqdm

    patches = int(ctx.options.get("patches") or spec.get("patches", 300))
    size = int(ctx.options.get("patch_size") or spec.get("patch_size", 256))
    seed = int(ctx.options["seed"] if ctx.options.get("seed") is not None else spec.get("seed", 0))
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


def locate_dnd_crops(ctx: PrepareContext, split: str, spec: dict) -> tuple[Path, Path, list[np.ndarray]]:
    """``info.mat`` (its boxes) and the ``images_srgb`` folder holding ``NNNN.mat`` for every image."""
    roots = ctx.roots(spec["source"])
    info_path = find_one(roots, "info.mat", dirs=False, what="DND info.mat")
    images_dir = find_one(roots, "images_srgb", dirs=True, what="DND images_srgb folder")
    boxes = _dnd_boxes(info_path)
    missing = [f"{i + 1:04d}.mat" for i in range(len(boxes)) if not (images_dir / f"{i + 1:04d}.mat").is_file()]
    if missing:
        raise DataError(f"{images_dir}: {len(missing)} of the {len(boxes)} images {info_path.name} lists are "
                        f"missing: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else ""))
    return info_path, images_dir, boxes


def write_dnd_crops(ctx: PrepareContext, split: str, spec: dict, located, out: Path) -> None:
    import h5py
    from tqdm import tqdm

    info_path, images_dir, boxes_per_image = located
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


def _check_readable(path: Path) -> None:
    """What a copying converter accepts is read first, as its later reader will: images are
    decoded (``read_rgb``), weights loaded (weights only) and checked to be finite; a truncated,
    corrupt or refused file is a ``DataError``/``CheckpointError`` naming it, and nothing is kept."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        read_rgb(path)
    elif suffix in (".pth", ".pt"):
        from ..checkpoint import check_finite_weights, read_state_dict

        check_finite_weights(read_state_dict(path), str(path))


def locate_copy_files(ctx: PrepareContext, split: str, spec: dict) -> dict[str, Path]:
    roots = ctx.roots(spec["source"])
    return {name: find_one(roots, pattern, dirs=False, what="file") for name, pattern in spec.get("files", {}).items()}


def write_copy_files(ctx: PrepareContext, split: str, spec: dict, files: dict[str, Path], out: Path) -> None:
    for name, path in files.items():
        _check_readable(path)
        shutil.copyfile(path, out / name)


def locate_copy_tree(ctx: PrepareContext, split: str, spec: dict) -> list[tuple[Path, Path]]:
    """(file, path relative to its root) for every file; an archive's unpacked copy stands for it."""
    roots = ctx.roots(spec["source"])
    files = [(path, path.relative_to(root)) for root in roots for path in source_files(root)
             if not is_archive_name(path)]
    if not files:
        raise DataError(f"no files under {', '.join(map(str, roots))}")
    return files


def write_copy_tree(ctx: PrepareContext, split: str, spec: dict, files: list[tuple[Path, Path]], out: Path) -> None:
    for path, rel in files:
        _check_readable(path)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

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
    ctx.count_mismatch = True


def _preview_numbers(numbers: list[int], limit: int = 20) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    return shown if len(numbers) <= limit else f"{shown}, ... ({len(numbers)} in all)"


def locate_rain_norain(ctx: PrepareContext, split: str, spec: dict) -> list[Pair]:
    """JORDER-style numbered pairs (Rain100L/H, RainTrainL/H, MSPFN's crops), matched by N.

    ``spec["folder"]`` (a pattern or a list of them; default the split's name) names the folder
    that holds the split, at any depth below the source; the layout inside is recognised from
    :data:`RAIN_LAYOUTS`. Names, duplicates, partners and the count by N are checked here; sizes
    and bit depth in ``copy_pairs``, all before the first image is written. Stems are N.
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
    ctx.notes.append(f"built from {shown or '.'}/ in the {rain} + {clean} layout: pairs matched by N, stem = N")
    return pairs


# --------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Converter:
    """``locate`` finds a split's content (cheap: names and small index files; raises
    ``DataError`` saying what is missing); ``write`` writes the split from what ``locate``
    returned. ``pairs``: ``locate`` returns image pairs, renamed to the dataset's stem scheme
    and written with :func:`mprnet.data.pairs.copy_pairs`."""

    locate: Callable[[PrepareContext, str, dict], Any]
    write: Callable[[PrepareContext, str, dict, Any, Path], None] | None = None
    pairs: bool = True


CONVERTERS: dict[str, Converter] = {
    "paired_folders": Converter(locate_paired_folders),
    "gopro": Converter(locate_gopro),
    "hide": Converter(locate_hide),
    "realblur": Converter(locate_realblur),
    "sidd_blocks": Converter(locate_sidd_blocks, write_sidd_blocks, pairs=False),
    "sidd_medium_patches": Converter(locate_sidd_medium, write_sidd_medium_patches),
    "dnd_crops": Converter(locate_dnd_crops, write_dnd_crops, pairs=False),
    "copy_files": Converter(locate_copy_files, write_copy_files, pairs=False),
    "copy_tree": Converter(locate_copy_tree, write_copy_tree, pairs=False),
    "rain_norain": Converter(locate_rain_norain),
}


def locate(ctx: PrepareContext, split: str, spec: dict) -> Any:
    """What ``split`` is made of (see :class:`Converter`); pairs come back with canonical stems."""
    converter = CONVERTERS[ctx.entry["layout"]["converter"]]
    located = converter.locate(ctx, split, spec)
    if converter.pairs:
        located = canonical_pairs(located, ctx.scheme, f"{ctx.name}/{split}")
    return located


def convert(ctx: PrepareContext, split: str, spec: dict, out: Path) -> None:
    """Write ``split`` of ``ctx``'s dataset into ``out`` (locate, then write)."""
    converter = CONVERTERS[ctx.entry["layout"]["converter"]]
    located = locate(ctx, split, spec)
    if converter.write is None:
        copy_pairs(located, out, progress=ctx.progress, label=f"{ctx.name}/{split}")
    else:
        converter.write(ctx, split, spec, located, out)

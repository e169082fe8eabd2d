"""Random paired crops from a prepared folder ``<dir>/{input,target}/<stem>.png``.

Augmentation follows the official ``DataLoaderTrain`` (``dataset_RGB.py``):

* images smaller than the patch are reflect-padded on the bottom/right (only with
  ``pad_small``; otherwise they are refused before training starts);
* deblurring only (``color_aug``): with probability 1/3 the saturation of input and target is
  scaled by the same factor ``1 + (0.2 - 0.4 U)``, U ~ [0, 1), like PIL/torchvision
  ``adjust_saturation`` on 8-bit images (the official gamma jitter uses gamma 1, a no-op, and is
  left out);
* the same random ``ps``×``ps`` crop of both images;
* ``aug = randint(0, 8)`` (9 values): 0 and 8 identity, 1 flip rows, 2 flip columns, 3/4/5
  rot90 by 1/2/3, 6 rot90 of the row flip, 7 rot90 of the column flip.

Unlike the official loader, each draw comes from its own generator seeded with
``(seed, epoch, position in the epoch)``. A sample is then the same whatever process, worker
or restart produces it: resuming needs only the iteration counter, and N DDP processes see
exactly the samples one process would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..images import inspect_image, pair_by_stem, read_rgb

# Distinguishes the streams drawn from one (seed, ...) tuple.
_ORDER_STREAM = 0x0D
_SAMPLE_STREAM = 0x5A


@dataclass(frozen=True)
class Pair:
    stem: str
    input: Path
    target: Path
    height: int
    width: int


def scan_pairs(
    root: str | os.PathLike,
    *,
    patch_size: int | None = None,
    pad_small: bool = False,
    verify: bool = True,
    progress: bool = False,
) -> list[Pair]:
    """List and check the pairs under ``root`` before any training time is spent.

    Raises ``DataError`` naming the file for a missing folder, an unpaired, unreadable,
    truncated (``verify``: PNG checksums) or refused image (16-bit, float, CMYK: see
    :func:`mprnet.images.read_rgb`), a pair whose sizes differ, or
    (unless ``pad_small``) an image smaller than ``patch_size``.
    """
    from tqdm import tqdm

    root = Path(root)
    for sub in ("input", "target"):
        if not (root / sub).is_dir():
            raise DataError(f"{root / sub}: missing folder (expected {root}/input and {root}/target)")
    triples = pair_by_stem(root / "input", root / "target")
    pairs: list[Pair] = []
    too_small: list[str] = []
    for stem, inp, tar in tqdm(triples, desc=f"checking {root}", disable=not progress, leave=False):
        sizes = []
        for path in (inp, tar):
            info = inspect_image(path, verify=verify)  # refuses what read_rgb would refuse
            sizes.append((info.width, info.height))
        if sizes[0] != sizes[1]:
            raise DataError(
                f"{inp} is {sizes[0][0]}x{sizes[0][1]} but its target {tar} is {sizes[1][0]}x{sizes[1][1]} (W x H)"
            )
        width, height = sizes[0]
        if patch_size is not None and (height < patch_size or width < patch_size) and not pad_small:
            too_small.append(f"{tar} ({width}x{height})")
        pairs.append(Pair(stem, inp, tar, height, width))
    if too_small:
        shown = ", ".join(too_small[:5]) + (f", ... ({len(too_small)} in all)" if len(too_small) > 5 else "")
        raise DataError(
            f"images smaller than the {patch_size}x{patch_size} training patch: {shown}; "
            "lower data.patch_size or set data.pad_small: true to reflect-pad them as the official loader does"
        )
    return pairs


def augment_geometric(image: np.ndarray, aug: int) -> np.ndarray:
    """The official 9-way flip/rotation ``aug`` (0..8) applied to an H×W×C array."""
    if aug == 1:
        image = image[::-1]
    elif aug == 2:
        image = image[:, ::-1]
    elif aug in (3, 4, 5):
        image = np.rot90(image, k=aug - 2, axes=(0, 1))
    elif aug == 6:
        image = np.rot90(image[::-1], axes=(0, 1))
    elif aug == 7:
        image = np.rot90(image[:, ::-1], axes=(0, 1))
    elif aug not in (0, 8):
        raise ValueError(f"aug must be in 0..8, got {aug}")
    return image


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend an 8-bit RGB image with its luma by ``factor``, as ``PIL.ImageEnhance.Color`` does."""
    from PIL import Image, ImageEnhance

    return np.asarray(ImageEnhance.Color(Image.fromarray(image)).enhance(factor))


def pad_to(image: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad on the bottom/right up to ``size`` in each dimension (official loader)."""
    pad_h = max(0, size - image.shape[0])
    pad_w = max(0, size - image.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    return image


def _to_tensor(image: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class TrainCrops:
    """Map-style dataset: key ``(index, (seed, epoch, position))`` -> (input, target) CHW float tensors."""

    def __init__(self, pairs: Sequence[Pair], patch_size: int, *, geometric_aug: bool = True,
                 color_aug: bool = False, pad_small: bool = False):
        self.pairs = list(pairs)
        self.patch_size = patch_size
        self.geometric_aug = geometric_aug
        self.color_aug = color_aug
        self.pad_small = pad_small

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, tuple[int, int, int]]):
        index, sample_seed = key
        pair = self.pairs[index]
        # One stream per decision, so switching one augmentation off leaves the others unchanged.
        crop_rng, color_rng, geo_rng = (np.random.default_rng(s) for s in
                                        np.random.SeedSequence([*sample_seed, _SAMPLE_STREAM]).spawn(3))
        inp, tar = read_rgb(pair.input), read_rgb(pair.target)
        if inp.shape != tar.shape:
            raise DataError(f"{pair.input}: size {inp.shape} differs from its target {pair.target} {tar.shape}")
        ps = self.patch_size
        if inp.shape[0] < ps or inp.shape[1] < ps:
            if not self.pad_small:
                raise DataError(f"{pair.target}: smaller than the {ps}x{ps} patch")
            inp, tar = pad_to(inp, ps), pad_to(tar, ps)
        saturation = None
        if self.color_aug and color_rng.integers(0, 3) == 1:
            saturation = 1.0 + (0.2 - 0.4 * color_rng.random())
        top = int(crop_rng.integers(0, inp.shape[0] - ps + 1))
        left = int(crop_rng.integers(0, inp.shape[1] - ps + 1))
        inp = inp[top:top + ps, left:left + ps]
        tar = tar[top:top + ps, left:left + ps]
        if saturation is not None:
            inp, tar = adjust_saturation(inp, saturation), adjust_saturation(tar, saturation)
        if self.geometric_aug:
            aug = int(geo_rng.integers(0, 9))
            inp, tar = augment_geometric(inp, aug), augment_geometric(tar, aug)
        return _to_tensor(inp), _to_tensor(tar)


class ValCrops:
    """Centre crops (torchvision ``center_crop`` offsets) of every pair, for validation PSNR."""

    def __init__(self, pairs: Sequence[Pair], patch_size: int):
        self.pairs = list(pairs)
        self.patch_size = patch_size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        pair = self.pairs[index]
        inp, tar = read_rgb(pair.input), read_rgb(pair.target)
        h, w = tar.shape[:2]
        ch, cw = min(h, self.patch_size), min(w, self.patch_size)
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        crop = (slice(top, top + ch), slice(left, left + cw))
        return _to_tensor(inp[crop]), _to_tensor(tar[crop])


def iterations_per_epoch(num_pairs: int, batch_size: int) -> int:
    """Full batches per epoch; the incomplete last batch is skipped (the order changes each epoch)."""
    if num_pairs < batch_size:
        raise ConfigError(f"data.batch_size: {batch_size} is larger than the {num_pairs} training pairs")
    return num_pairs // batch_size


def epoch_order(num_pairs: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of the pairs in (1-based) ``epoch``."""
    return np.random.default_rng([seed, epoch, _ORDER_STREAM]).permutation(num_pairs)


class BatchKeys:
    """Batches of dataset keys for one DDP rank, from iteration ``start`` to ``stop`` (0-based).

    The global batch ``i`` holds positions ``[i*B, (i+1)*B)`` of its epoch's order; rank ``r`` of
    ``w`` takes the ``r``-th contiguous ``B/w`` of it.
    """

    def __init__(self, num_pairs: int, batch_size: int, seed: int, start: int, stop: int,
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ConfigError(f"data.batch_size: {batch_size} is not divisible by the {world_size} processes")
        self.num_pairs, self.batch_size, self.seed = num_pairs, batch_size, seed
        self.start, self.stop, self.rank, self.world_size = start, stop, rank, world_size
        self.per_epoch = iterations_per_epoch(num_pairs, batch_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, int, int]]]]:
        local = self.batch_size // self.world_size
        order, order_epoch = None, None
        for it in range(self.start, self.stop):
            epoch = it // self.per_epoch + 1
            if epoch != order_epoch:
                order, order_epoch = epoch_order(self.num_pairs, self.seed, epoch), epoch
            first = (it % self.per_epoch) * self.batch_size + self.rank * local
            yield [(int(order[pos]), (self.seed, epoch, pos)) for pos in range(first, first + local)]


def total_iterations(schedule_unit: str, length: int, per_epoch: int) -> int:
    return length * per_epoch if schedule_unit == "epoch" else length


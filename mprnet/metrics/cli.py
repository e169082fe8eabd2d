"""``mprnet score``, ``mprnet rulers`` and ``mprnet dnd-bundle``."""

from __future__ import annotations

import argparse

from .protocols import PROTOCOLS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="PSNR/SSIM of restored images against ground truth, with one of the paper's protocols",
        description="Pair the images of --pred and --target by file stem and score each pair with the "
                    "paper's protocol: y_channel (deraining), rgb (GoPro, HIDE), realblur (RealBlur-J/R), "
                    "sidd (SIDD; reads <pred>/float/<stem>.npy when present). Prints the means; "
                    "--out writes one CSV row per image (image,psnr,ssim).",
    )
    _folders(p)
    p.add_argument("--out", help="CSV file for the per-image scores (written atomically)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_score)

    r = subparsers.add_parser(
        "rulers",
        help="score restored images under the paper's protocol and the rulers people use instead",
        description="Pair --pred and --target as `mprnet score` does and score every image under the paper's "
                    "--protocol and under each alternative ruler of mprnet.metrics.rulers (scikit-image, "
                    "torchmetrics, BasicSR, IQA-PyTorch, MATLAB 2-D SSIM, RealBlur without alignment, SIDD on "
                    "8-bit outputs: those that apply to the protocol). Prints each ruler's mean and the spread "
                    "of its difference to the paper's ruler; --out writes one CSV row per (image, ruler).",
    )
    _folders(r)
    r.add_argument("--rulers", help="comma-separated ruler names (default: every alternative to the protocol)")
    r.add_argument("--out", help="CSV file for the per-image scores of every ruler (written atomically)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_rulers)

    d = subparsers.add_parser(
        "dnd-bundle",
        help="write the DND online-benchmark submission (one %%04d.mat per image)",
        description="Bundle restored DND crops named <image>_<box> (e.g. 0001_01 .. 0050_20; read from "
                    "INPUT/float/*.npy, else INPUT/*.npy, else 8-bit images) into OUTPUT/%04d.mat files "
                    "holding Idenoised (1x20 cell of float32 HxWx3), israw=false, eval_version='1.0'.",
    )
    d.add_argument("--input", required=True, help="folder of restored crops")
    d.add_argument("--output", required=True, help="folder for the .mat files")
    d.set_defaults(func=_dnd_bundle)


def _folders(parser: argparse.ArgumentParser) -> None:
    """The arguments `score` and `rulers` share: the protocol and the two folders paired by stem."""
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--pred", required=True, help="folder of restored images")
    parser.add_argument("--target", required=True, help="folder of ground-truth images")


def _score(args: argparse.Namespace) -> int:
    import sys

    from .scoring import format_means, score_folders, write_scores_csv  # each command imports what it runs

    scores = score_folders(args.protocol, args.pred, args.target, device=args.device,
                           progress=not args.no_progress and sys.stderr.isatty())
    if args.out:
        write_scores_csv(scores, args.out)
    print(format_means(args.protocol, scores))
    if args.out:
        print(f"per-image scores: {args.out}")
    return 0


def _rulers(args: argparse.Namespace) -> int:
    import sys

    from ..errors import ConfigError, DataError
    from .rulers import read_pairs, ruler_sensitivity, select_rulers, write_ruler_scores

    names = [n.strip() for n in args.rulers.split(",") if n.strip()] if args.rulers else None
    try:
        select_rulers(args.protocol, names)
    except ValueError as exc:
        raise ConfigError(f"--rulers: {exc}") from None
    pairs = read_pairs(args.protocol, args.pred, args.target, progress=not args.no_progress and sys.stderr.isatty())
    try:
        per_image, summary = ruler_sensitivity(pairs, args.protocol, names)
    except DataError:  # pairing and reading: the message names the files
        raise
    except ValueError as exc:  # an image a ruler cannot score (too small, grey): named by its stem
        raise DataError(f"{args.pred}: {exc}") from None
    if args.out:
        write_ruler_scores(per_image, args.out)
    columns = ["ruler", "n_images", "psnr", "ssim", "d_psnr_mean", "d_psnr_std", "d_ssim_mean", "d_ssim_std"]
    print(summary[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        print(f"per-image scores: {args.out}")
    return 0


def _dnd_bundle(args: argparse.Namespace) -> int:
    import sys

    from .dnd import write_bundle

    written = write_bundle(args.input, args.output, progress=sys.stderr.isatty())
    print(f"dnd-bundle: wrote {len(written)} files to {args.output}")
    return 0

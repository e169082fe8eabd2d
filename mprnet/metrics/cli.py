"""``mprnet score`` and ``mprnet dnd-bundle``."""

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
    p.add_argument("--protocol", required=True, choices=PROTOCOLS)
    p.add_argument("--pred", required=True, help="folder of restored images")
    p.add_argument("--target", required=True, help="folder of ground-truth images")
    p.add_argument("--out", help="CSV file for the per-image scores (written atomically)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_score)

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


def _dnd_bundle(args: argparse.Namespace) -> int:
    import sys

    from .dnd import write_bundle

    written = write_bundle(args.input, args.output, progress=sys.stderr.isatty())
    print(f"dnd-bundle: wrote {len(written)} files to {args.output}")
    return 0

"""``breast-subtype merge``: the shards of a cohort run (``predict --shard I/N``) → one predictions.csv.

Refuses (exit 2, one line, nothing written) a merge where a case of the manifest has no row, a
case has rows in two shards, or the folders come from different splits.
"""

from __future__ import annotations

import argparse

HELP = "merge the shard folders of a cohort run (predict --shard I/N) into one predictions.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="the manifest CSV every shard was run on")
    parser.add_argument(
        "--out",
        required=True,
        help="the --out folder of the shard runs (holds shard-I-of-N/); gets predictions.csv",
    )


def run(args: argparse.Namespace) -> int:
    from BreastSubtypeLib.inference.cohort import merge_shards

    print(f"predictions_csv: {merge_shards(args.manifest, args.out)}")
    return 0

"""dotrec explain: why a model gives a user an item's score."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dotrec.artifact import load_model
from dotrec.cli._common import echo
from dotrec.explain import Explanation, explain

_SHOWN_PARTS = 5
"""Parts listed one by one; the rest are summed on one line."""


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "explain",
        help="split a user's score for an item into parts, with the item's rank",
        description="Explain the score MODEL_DIR gives item --item for user --user: its "
        "parts where the model has them (biases and dot product; per training item for EASE "
        "and ItemKNN), the user's training items closest to the item, and the item's rank "
        "among the items recommend would consider. The user's training items are stored in "
        "the model folder, so no data is needed.",
    )
    parser.add_argument("model", metavar="MODEL_DIR", type=Path)
    parser.add_argument("--user", required=True, metavar="ID", help="raw user ID")
    parser.add_argument("--item", required=True, metavar="ID", help="raw item ID")
    parser.add_argument(
        "--nearest", type=int, default=5, help="training items to list by closeness (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.nearest < 0:
        raise ValueError(f"--nearest must be non-negative, got {args.nearest}")
    model = load_model(args.model)
    why = explain(model, args.user, args.item, args.nearest)
    if args.json:
        echo(json.dumps(why.to_dict(), indent=2))
    else:
        for line in _lines(why, no_similarity=args.nearest > 0 and not model.item_similarity):
            echo(line)
    return 0


def _lines(why: Explanation, no_similarity: bool = False) -> list[str]:
    lines = [
        f"user {why.user_id}, item {why.item_id} ({why.model} model)",
        f"score: {why.score:.6g}  ({why.score_kind})",
    ]
    if why.probability is None:
        lines.append("probability: not available (uncalibrated; see `dotrec calibrate`)")
    else:
        lines.append(f"probability (calibrated): {why.probability:.4g}")
    lines.append(f"parts: {why.parts_note}")
    if why.parts:
        shown = sorted(why.parts.items(), key=lambda kv: -abs(kv[1]))
        width = max(len(name) for name, _ in shown[:_SHOWN_PARTS])
        lines.extend(f"  {name:<{width}}  {value:+.6g}" for name, value in shown[:_SHOWN_PARTS])
        rest = shown[_SHOWN_PARTS:]
        if rest:
            lines.append(f"  ... {len(rest)} more, together {sum(v for _, v in rest):+.6g}")
        lines.append(f"  sum {why.parts_sum:.6g} (the score: {why.score:.6g})")
    if why.in_history:
        lines.append(
            f"rank: none; item {why.item_id} is one of the user's training items, which "
            f"recommend leaves out ({why.candidates} other items are ranked)"
        )
    else:
        lines.append(
            f"rank: {why.rank} of the {why.candidates} items recommend ranks for this user "
            "(training items left out)"
        )
    if no_similarity:
        lines.append(f"closest training items: none (the {why.model} model knows no similarity)")
    if why.nearest_history:
        lines.append("training items of the user closest to it (cosine of item vectors):")
        lines.extend(f"  {item}  {cosine:.3f}" for item, cosine in why.nearest_history)
    return lines

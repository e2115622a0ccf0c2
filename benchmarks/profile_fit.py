"""Where a model's fit spends its time: Torch's profiler over one ``fit``.

The training side is the one ``benchmarks/peers.py`` uses: ml-100k and
ml-latest-small split by ``dotrec.random_split(data, 0.2, seed=0)``, Gowalla
as published. The model gets its defaults, plus any ``--set NAME=VALUE``.
The table lists Torch operators by the CPU time spent in them (not counting
the operators they call), most first. Time outside Torch operators (Python,
NumPy, SciPy) shows as the gap between the wall time and the operators' total.

    DOTREC_DATA=../shared/data python benchmarks/profile_fit.py --model bpr --dataset ml-100k
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

import dotrec
from dotrec.models import MODELS

DATASETS = ("ml-100k", "ml-latest-small", "gowalla")


def training_side(dataset: str, root: Path | None) -> dotrec.Interactions:
    """The training side ``benchmarks/peers.py`` fits on."""
    if dataset == "gowalla":
        return dotrec.data.load_split("gowalla", root=root)[0]
    data = dotrec.load_dataset(dataset, root=root, download=False)
    return dotrec.random_split(data.interactions, 0.2, seed=0)[0]


def _setting(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--dataset", choices=DATASETS, default="ml-100k")
    parser.add_argument("--set", type=_setting, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--rows", type=int, default=15, help="operators listed (default 15)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $DOTREC_DATA")
    args = parser.parse_args(argv)

    train = training_side(args.dataset, args.data_dir)
    model = MODELS[args.model](**dict(args.set))
    warnings.simplefilter("ignore")
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        start = time.perf_counter()
        model.fit(train)
        wall = time.perf_counter() - start
    ops = trace.key_averages()
    total_us = sum(op.self_cpu_time_total for op in ops)
    print(
        f"{args.model} on {args.dataset} ({len(train):,} rows): fit {wall:.2f} s wall under the "
        f"profiler, {total_us / 1e6:.2f} s CPU in Torch operators"
    )
    print(f"{'operator':<34} {'self CPU s':>10} {'share':>6} {'calls':>7}")
    for op in sorted(ops, key=lambda o: o.self_cpu_time_total, reverse=True)[: args.rows]:
        seconds = op.self_cpu_time_total / 1e6
        share = op.self_cpu_time_total / max(total_us, 1)
        print(f"{op.key[:34]:<34} {seconds:>10.3f} {share:>6.1%} {op.count:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

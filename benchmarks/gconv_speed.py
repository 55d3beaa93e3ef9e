"""Training and inference speed of the plain-torch group CNNs (gc4, gd4) beside the width-11 ResNet-18 and the e2cnn
C4/D4 networks, on one CPU thread: the images/s that decide who wins at equal CPU time.

Each network trains (forward, cross-entropy, backward, Adam) and infers (eval mode, no_grad; and exported with
`deeplense.models.export_model`) on random 64x64 1-band images, batch 64; each rate is the median over `--repeats`
runs of `--steps` timed steps (after a warm-up step), in images per CPU-second of this process, which other jobs on
a shared machine disturb much less than the wall clock (the wall-clock rates are in the CSV). The 1-minute load
average is written beside each network.

    python -m benchmarks.gconv_speed --threads 1
    python -m benchmarks.gconv_speed --threads 1 --models gc4 'gd4={"width": 6, "depth": 2}' --repeats 3
"""
from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch

from deeplense.cli import FullNameParser
from deeplense.core import hardware
from deeplense.models import MODEL_NAMES, build_model, count_parameters, export_model

from benchmarks.common import RESULTS, command_line, hardware_sentence, load, write_tables
from benchmarks.equivariance import NETWORKS
from benchmarks.train import images_per_second

def _spec(network: str) -> str: # a network of the equivariance study as NAME=JSON
    model, kwargs = NETWORKS[network]
    return f"{model}={json.dumps(kwargs)}" if kwargs else model

DEFAULT_MODELS = [_spec("resnet18-w11"), "c4", "d4", "c8", _spec("c8-fast"), "gc4", 'gc4={"depth": 2}', "gd4", _spec("gd4-w8"),
                  'gd4={"width": 6, "depth": 2}']
COLUMNS = {"model": ("network", "`{}`"), "kwargs": ("arguments", "{}"), "params": ("parameters", "{:,}"),
           "train": ("train, images/CPU-s", "{:.0f}"), "infer": ("inference", "{:.0f}"),
           "infer_exported": ("exported inference", "{:.0f}"), "load": ("load (1/5/15 min) before, after", "{}")}


def model_spec(text: str) -> tuple:
    "'NAME' or 'NAME=JSON' (build_model arguments) -> (name, kwargs)."
    name, _, spec = text.partition("=")
    if name not in MODEL_NAMES: raise argparse.ArgumentTypeError(f"unknown network {name!r} in {text!r}; valid: {', '.join(MODEL_NAMES)}")
    try: return name, json.loads(spec) if spec else {}
    except json.JSONDecodeError as e: raise argparse.ArgumentTypeError(f"not valid JSON in {text!r}: {e}") from None


def median_rates(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, repeats: int, train: bool) -> tuple:
    "Median images per wall-clock second and per CPU-second over `repeats` runs of `images_per_second`."
    runs = [images_per_second(model, x, y, steps, train) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", type=model_spec, default=[model_spec(m) for m in DEFAULT_MODELS],
                   metavar="NAME[=JSON]", help="networks and their build_model arguments (default: %(default)s)")
    p.add_argument("--size", type=int, default=64, help="image side [pixels]")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5, help="timed steps per run (after one warm-up step)")
    p.add_argument("--repeats", type=int, default=5, help="runs per rate; the table gives the median")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=RESULTS, help="where gconv_speed.csv and .md go")
    p.add_argument("--note", default=None, help="a remark printed above the table")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    command = command_line("gconv_speed", argv)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(a.batch, 1, a.size, a.size, generator=gen), torch.randint(0, 3, (a.batch,), generator=gen)
    rows = []
    for name, kwargs in a.models:
        before = load()
        torch.manual_seed(0)
        model = build_model(name, 1, 3, **kwargs)
        train = median_rates(model, x, y, a.steps, a.repeats, True)
        infer = median_rates(model, x, y, a.steps, a.repeats, False)
        exported = median_rates(export_model(model), x, y, a.steps, a.repeats, False)
        rows.append(dict(model=name, kwargs=json.dumps(kwargs) if kwargs else "", params=count_parameters(model),
                         train=train[1], infer=infer[1], infer_exported=exported[1],
                         train_wall=train[0], infer_wall=infer[0], infer_exported_wall=exported[0],
                         load=f"{before}, {load()}", command=command,
                         finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
        r = rows[-1]
        print(f"{name:<10}{r['kwargs']:<28}{r['params']:>9,} params  train {r['train']:6.0f}  inference {r['infer']:6.0f}  "
              f"exported {r['infer_exported']:6.0f} images/CPU-s  load {r['load']}", flush=True)
    method = (hardware_sentence(hardware(torch.device("cpu"))) + f" {a.size}x{a.size} random 1-band images, batch {a.batch}, "
              f"3 classes, {torch.get_num_threads()} torch thread(s); each rate is the median of {a.repeats} runs of {a.steps} "
              "timed steps, in images per CPU-second of the process (wall-clock rates in the CSV). Training: forward, "
              "cross-entropy, backward, Adam. Inference: eval mode, no_grad; exported: `export_model` (e2cnn networks "
              "in plain torch; group CNNs with their filters built once).")
    footer = ("`c4`, `d4`: e2cnn steerable CNNs (`equivariant_cnn`); `gc4`, `gd4`: plain-torch group CNNs "
              "(`group_cnn`, Cohen & Welling 2016); `resnet18` of width 11 is `deeplense train`'s default network.")
    write_tables(rows, a.out, "gconv_speed", "Speed of the plain-torch group CNNs on one CPU thread", a.note, method,
                 COLUMNS, footer)
    return rows


if __name__ == "__main__":
    main()

"""What the benchmarks of this folder share: the machine and its load, time budgets, cached simulations, planned
epochs, the command that ran, and the tables (CSV and Markdown).

The benchmarks are a package of the repository (not of the installed `deeplense`): run one from the repository's
root as a module, `python -m benchmarks.results --scale test`, and import one in a notebook as `benchmarks.results`
with the repository's root on `sys.path`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from deeplense.core import DEFAULT_FRACTIONS
from deeplense.formats import read_info
from deeplense.datasets import LensDataset
from deeplense.models import build_model
from deeplense.simulate import simulate_to_h5
from deeplense.train import TrainConfig, fit, resolve_task

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" # the committed tables


def load() -> str:
    "The 1, 5 and 15-minute load averages, e.g. '1.9/2.3/2.1'."
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def hardware_sentence(env: dict) -> str:
    "The tables' first words: the machine of `deeplense.core.hardware()`."
    return (f"Hardware: {env['cpu']}, {env['cores']} cores, torch {env['torch']}, device {env['device']}"
            + (f" ({env['gpu']})" if env["gpu"] else "") + f"; Python {env['python']}.")


def command_line(module: str, # the benchmark's module name, e.g. "results"
                 argv: list | None, # the arguments; None: the process's
                ) -> str:
    "The command that ran `benchmarks.MODULE`, for the tables, without its --note (a remark, not a setting)."
    args = list(argv if argv is not None else sys.argv[1:])
    if "--note" in args: args = args[:args.index("--note")] + args[args.index("--note") + 2:]
    return shlex.join(["python", "-m", f"benchmarks.{module}", *args])


def simulated_file(config, # a deeplense.simconfig.SimulationConfig
                   n: int, # images
                   work: Path, # the benchmark's work folder: the file goes to work/data/NAME-nN-seedS.h5
                   name: str, # what the file holds, e.g. "model_ii-cpu"
                   seed: int, # the simulation's seed
                   device: torch.device | str = "cpu",
                   progress: bool = True, # show the simulation's progress bar
                  ) -> Path:
    "`n` images of `config` simulated once into the work folder and reused (a stopped simulation resumes)."
    path = Path(work) / "data" / f"{name}-n{n}-seed{seed}.h5"
    if is_simulated(path, config, seed): return path
    path.parent.mkdir(parents=True, exist_ok=True)
    return simulate_to_h5(config, n, path, seed=seed, device=device, progress=progress)


def is_simulated(path: Path, # a cached simulation, which may not exist yet
                 config, # the configuration it must have been made with
                 seed: int, # and the seed
                ) -> bool:
    "Whether `path` exists, made from `config` and `seed`; a `ValueError` when it exists but was made otherwise."
    if not Path(path).exists(): return False
    stored = read_info(path).config
    if stored.get("simulation") != config.to_dict() or stored.get("seed") != seed:
        raise ValueError(f"{path} was simulated with another configuration or seed (the preset or the code changed?): "
                         "delete it, and the runs trained on it, or use another --work folder")
    return True


class BudgetReached(Exception):
    "Raised by `Budget` at the first epoch boundary past the time budget; fit has saved that epoch's checkpoints."


def cpu_clock() -> float:
    "This process's CPU time per torch thread [s]: what the wall clock would read if no other job shared the cores."
    return time.process_time() / torch.get_num_threads()


CLOCKS = {"wall": time.perf_counter, "cpu": cpu_clock}


class Budget:
    "fit's `callback`: stops the training at the first epoch boundary past `seconds` on `clock` after its creation."
    def __init__(self, seconds: float, clock=time.perf_counter):
        self.seconds, self.clock, self.start = seconds, clock, clock()
    def __call__(self, history: dict):
        if self.clock() - self.start >= self.seconds: raise BudgetReached


def planned_epochs(model: str, kwargs: dict, path: Path,
                   s, # the benchmark's scale: its batch_size, max_epochs and timing_s (about how long the trial trains [s])
                   budget_s: float, device: torch.device, clock: str, config: TrainConfig,
                   targets: list | None = None) -> tuple:
    """Epochs that fill `budget_s` on `clock`, and the training speed (images/s), timed on a one-epoch trial of the
    run's own pipeline (HDF5 reads, preprocessing, augmentation, validation) on the file's first rows. Timing bare
    training steps instead overestimated the speed by about 1.5x on 1 CPU thread, so that the budget stopped the
    one-cycle schedule two thirds of the way through, before its learning rate had come down."""
    from benchmarks.train import images_per_second
    info = read_info(path)
    task, n_out = resolve_task(config.task, info.class_names, targets)
    net = build_model(model, info.image_shape[0], n_out, **kwargs).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(s.batch_size, *info.image_shape, generator=gen).to(device)
    y = torch.randint(0, n_out, (s.batch_size,), generator=gen).to(device)
    rate, _ = images_per_second(net, x, y, steps=2, train=True) # a first look, to size the trial
    n_train, n_val = (round(info.n * f) for f in DEFAULT_FRACTIONS[:2])
    n_trial = int(min(n_train, max(4 * s.batch_size, s.timing_s * rate)))
    rows = np.arange(n_trial + max(1, round(n_trial * n_val / n_train)))
    target = list(targets) if targets else "label"
    train, val = LensDataset(path, indices=rows[:n_trial], target=target), LensDataset(path, indices=rows[n_trial:], target=target)
    start = CLOCKS[clock]()
    fit(net, train, val, replace(config, epochs=1, progress=False, task=task))
    per_image = (CLOCKS[clock]() - start) / n_trial # a training step and its share of the validation
    return int(np.clip(round(budget_s / (per_image * n_train)), 1, s.max_epochs)), 1 / per_image


def run_name(model: str, kwargs: dict) -> str:
    "A run's directory name: the network and its build_model arguments, e.g. resnet18-width11."
    return "-".join([model, *(f"{k}{json.dumps(v).replace(' ', '')}" for k, v in sorted(kwargs.items()))])


def add_run_arguments(p: argparse.ArgumentParser, stem: str):
    "The options the budgeted benchmarks share: clock, seed, threads, device, work and output folders, note."
    p.add_argument("--budget-clock", choices=CLOCKS, default="wall",
                   help="wall: the budget is wall-clock time; cpu: CPU time per thread, which other jobs on a shared "
                        "machine disturb much less (the time the training would take if it had the cores alone)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation, the split and the training")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps, ...; default: CUDA, then MPS, then CPU")
    p.add_argument("--work", type=Path, default=Path(f"{stem}_work"), help="simulated data and runs (reused)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"where {stem}_SCALE.csv, .md and .png go")
    p.add_argument("--note", default=None, help="a remark printed above the table (e.g. the machine was shared)")


def write_csv(rows: list, path: Path):
    "Every field of every row (the union of their keys, in order of appearance) as CSV."
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)


def write_tables(rows: list, # one dict per run, with `command` and `finished`
                 out: Path, # the folder of the tables
                 stem: str, # file name without suffix, e.g. results_cpu
                 title: str, # the Markdown title
                 note: str | None, # a remark printed above the table
                 method: str, # the paragraph on the hardware and the method, above the table
                 columns: dict, # row key -> (Markdown header, format)
                 footer: str): # text below the table (references, notes)
    "STEM.csv (every field of every row) and STEM.md (the commands, the note, the method, the main columns, the footer)."
    write_csv(rows, out / f"{stem}.csv")
    commands = list(dict.fromkeys(r["command"] for r in rows))
    lines = [f"# {title}", "", "Made with " + ", then ".join(f"`{c}`" for c in commands)
             + f" (finished {max(r['finished'] for r in rows)}).", ""]
    if note: lines += [f"**Note:** {note}", ""]
    lines += [method, "", "| " + " | ".join(h for h, _ in columns.values()) + " |", "|" + "---|" * len(columns)]
    cells = lambda r: ("" if r.get(k) is None else f.format(r[k]) for k, (_, f) in columns.items())
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    (out / f"{stem}.md").write_text("\n".join(lines + ["", footer]))

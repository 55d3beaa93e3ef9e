"""Train and evaluate every DeepLense network on every simulated task, and write one table (CSV, Markdown, a figure).

For each data set (`model_i`, `model_ii`, `model_iii`: 3 classes no_sub / cdm / axion; `lens_finding`: lens or not)
and each network of `deeplense.models.MODEL_NAMES`, the package's public pipeline runs: `simulate_to_h5` (cached
between runs) -> `fit_h5` (80/10/10 split, one-cycle AdamW, dihedral augmentation) -> `evaluate` on the held-out
test rows (figures and metrics.json per run). The table gives parameters, training time, inference images/s, macro
AUC and accuracy, and for lens finding AUC, TPR0 and TPR10, with the seeds, the hardware and the load average.

Each network trains for a time budget: the number of epochs is planned from a one-epoch trial of the training
pipeline on the file's first rows, so that the learning-rate schedule ends when the budget does (the committed
results_cpu tables were planned from bare training steps, which overestimated the speed: see their `planned_epochs`
column), and a `callback` to fit_h5 stops the run
at the first epoch boundary past the budget. The budget is wall-clock time, or with `--budget-clock cpu`
CPU time per thread: what the run would take with the cores to itself, which other jobs on a shared machine disturb
much less. The table is made from every finished run of the scale in `--work`, so several invocations add up to one
table (each row records its command).

    python -m benchmarks.results --scale test                  # tiny: seconds per network (the pipeline's test)
    python -m benchmarks.results --scale cpu --threads 2       # 6,000 training images, 6 minutes per network
    python -m benchmarks.results --scale gpu                   # DeepLense sizes: 30,000 training images per class
    python -m benchmarks.results --scale cpu --models resnet18 c4 --datasets model_ii --budget-clock cpu

On Colab (GPU runtime): `!pip install -q git+https://github.com/ML4SCI/deeplense`, `!git clone -q
https://github.com/ML4SCI/deeplense`, then `!cd deeplense && python -m benchmarks.results --scale gpu`. Finished runs are
kept in `--work` and reused, so a disconnected session continues where it stopped (delete a run's directory to redo
it); `--models`/`--datasets` split the work over sessions.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch

from deeplense.cli import FullNameParser
from deeplense.core import DEFAULT_FRACTIONS, get_device, hardware
from deeplense.formats import read_history, read_info
from deeplense.evaluate import evaluate
from deeplense.models import MODEL_NAMES, count_parameters, export_model
from deeplense.simulate import DEEPLENSESIM_PRESETS, PRESETS, preset
from deeplense.train import TrainConfig, fit_h5, load_checkpoint, predict

from benchmarks.common import (CLOCKS, Budget, BudgetReached, add_run_arguments, command_line, hardware_sentence, load,
                               planned_epochs, run_name, simulated_file, write_tables)

DATASETS = tuple(PRESETS) # model_i, model_ii, model_iii, lens_finding, then the NAME_deeplensesim and NAME_varied variants
OWN_DATASETS = [d for d in DATASETS if d not in DEEPLENSESIM_PRESETS] # the default run
TINY_EQUIVARIANT = {"channels": [16, 16, 32, 32], "hidden": 16}


@dataclass
class Scale:
    "The sizes of one scale of the benchmark."
    n_train: int | None # training images per data set (None: `per_class` times the classes)
    per_class: int | None # training images per class
    budget_minutes: float # training time per network
    batch_size: int
    max_epochs: int # an upper bound on the planned epochs
    overrides: dict = field(default_factory=dict) # simulation overrides of every preset (e.g. a smaller image)
    model_kwargs: dict = field(default_factory=dict) # network name -> build_model keyword arguments
    n_equivariance: int = 16 # test images of evaluate's rotation curve
    timing_s: float = 10.0 # about how long the planning trial trains [s]

    def n_images(self, n_classes: int) -> int:
        "Images to simulate so that the training split has `n_train` (or `per_class` per class) of them."
        n_train = self.n_train if self.n_train is not None else self.per_class * n_classes
        return round(n_train / DEFAULT_FRACTIONS[0])


SCALES = {
    "test": Scale(n_train=48, per_class=None, budget_minutes=0.05, batch_size=16, max_epochs=2, overrides={"n_pix": 32},
                  model_kwargs={"resnet18": {"width": 4}, "cmu_deeplens": {"units_per_block": 1},
                                **{g: TINY_EQUIVARIANT for g in ("c4", "c8", "d4", "d8")}},
                  n_equivariance=2, timing_s=0.5),
    # the CPU scale: 6,000 training images, 6 minutes per network; ResNet-18 at width 11 has 0.33 M parameters
    "cpu": Scale(n_train=6000, per_class=None, budget_minutes=6.0, batch_size=64, max_epochs=100,
                 model_kwargs={"resnet18": {"width": 11}}),
    # DeepLense's sizes: 30,000 training images per class, full-width networks
    "gpu": Scale(n_train=None, per_class=30_000, budget_minutes=15.0, batch_size=128, max_epochs=100),
}


def dataset_file(name: str, scale: str, work: Path, seed: int, device: torch.device) -> Path:
    "The simulated data set `name` of `scale`, made once and reused (a stopped simulation resumes)."
    s = SCALES[scale]
    config = preset(name, s.overrides)
    return simulated_file(config, s.n_images(len(config.classes)), work, f"{name}-{scale}", seed, device)


def preprocess_spec(path: Path) -> dict:
    "Standardised images for the substructure sets; for lens finding CMU DeepLens's clip, at the 99th percentile."
    info = read_info(path)
    if info.class_names != ["non_lens", "lens"]: return {"name": "standardize"}
    with h5py.File(path) as f: sample = f["images"][:256]
    clip = float(np.percentile(np.abs(sample[sample != 100]), 99)) # masked pixels are 100, as in the challenge's files
    return {"name": "cmu_deeplens", "vmin": -clip, "vmax": clip}


def inference_rate(checkpoint: Path, path: Path, device: torch.device, batch_size: int) -> float:
    "Test images per second of the exported network (preprocessing included; up to 2048 images, already in memory)."
    model, meta = load_checkpoint(checkpoint, device)
    model = export_model(model)
    rows = np.sort(meta["test_indices"].numpy())[:2048]
    with h5py.File(path) as f: x = torch.from_numpy(f["images"][rows])
    predict(model, x[:batch_size], meta, batch_size, device) # warm-up
    if device.type == "cuda": torch.cuda.synchronize(device)
    start = time.perf_counter()
    predict(model, x, meta, batch_size, device)
    if device.type == "cuda": torch.cuda.synchronize(device)
    return len(x) / (time.perf_counter() - start)


def run_one(dataset: str, model: str, scale: str, work: Path, seed: int, budget_minutes: float, clock: str,
            device: torch.device, model_kwargs: dict, command: str) -> dict:
    "Train and evaluate `model` on `dataset`; returns the table's row (cached in the run directory as row.json)."
    run = work / "runs" / scale / dataset / f"{run_name(model, model_kwargs)}-threads{torch.get_num_threads()}"
    if (run / "row.json").exists(): return json.loads((run / "row.json").read_text())
    s = SCALES[scale]
    path = dataset_file(dataset, scale, work, seed, device)
    info = read_info(path)
    budget_s = 60 * budget_minutes
    config = TrainConfig(batch_size=s.batch_size, lr=2e-3, preprocess=preprocess_spec(path), augment={"dihedral": True},
                         seed=seed, device=str(device), progress=False)
    epochs, step_rate = planned_epochs(model, model_kwargs, path, s, budget_s, device, clock, config)
    config = replace(config, epochs=epochs)
    load_before, stopped = load(), False
    start, cpu_start = time.perf_counter(), time.process_time()
    try: fit_h5(path, model, run, config, model_kwargs, callback=Budget(budget_s, CLOCKS[clock]))
    except BudgetReached: stopped = True
    train_s, train_cpu_s = time.perf_counter() - start, (time.process_time() - cpu_start) / torch.get_num_threads()
    epochs_done = len(read_history(run / "history.csv")["epoch"])
    load_after = load()
    rate = inference_rate(run / "best.pt", path, device, 256)
    metrics = evaluate(run / "best.pt", path, run / "evaluation", indices="test", device=device,
                       n_equivariance=s.n_equivariance)
    net, _ = load_checkpoint(run / "best.pt", "cpu")
    binary = len(info.class_names) == 2
    row = dict(dataset=dataset, model=model, params=count_parameters(net), model_kwargs=json.dumps(model_kwargs),
               train_images=round(info.n * DEFAULT_FRACTIONS[0]), test_images=metrics["n"],
               image_shape="x".join(map(str, info.image_shape)), epochs=epochs_done, planned_epochs=epochs,
               budget_min=budget_minutes, budget_clock=clock, stopped_by_budget=stopped,
               train_min=round(train_s / 60, 2), train_cpu_min_per_thread=round(train_cpu_s / 60, 2),
               train_img_s=round(step_rate, 1), infer_img_s=round(rate, 1),
               macro_auc=round(metrics["auc_macro"], 4), accuracy=round(metrics["accuracy"], 4),
               auc=round(metrics["auc"], 4) if binary else None, tpr0=round(metrics["tpr0"], 3) if binary else None,
               tpr10=round(metrics["tpr10"], 3) if binary else None, data_seed=seed, train_seed=seed,
               load_before=load_before, load_after=load_after, threads=torch.get_num_threads(), command=command,
               finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    (run / "row.json").write_text(json.dumps(row, indent=1))
    return row


COLUMNS = { # column -> (Markdown header, format)
    "dataset": ("data set", "{}"), "model": ("network", "{}"), "model_kwargs": ("arguments", "{}"),
    "params": ("parameters", "{:,}"), "train_images": ("training images", "{:,}"), "threads": ("threads", "{}"),
    "budget_min": ("budget [min]", "{:g}"), "budget_clock": ("budget clock", "{}"), "epochs": ("epochs", "{}"),
    "train_min": ("training [min]", "{:.2f}"), "train_cpu_min_per_thread": ("CPU [min/thread]", "{:.2f}"),
    "infer_img_s": ("inference [images/s]", "{:,.0f}"), "macro_auc": ("macro AUC", "{:.4f}"),
    "accuracy": ("accuracy", "{:.3f}"), "auc": ("AUC", "{:.4f}"), "tpr0": ("TPR0", "{:.2f}"),
    "tpr10": ("TPR10", "{:.2f}"), "load_before": ("load before", "{}"), "load_after": ("load after", "{}")}

REFERENCES = """\
Reference figures from the DeepLense studies (their own data sets, not these files):
- DeepLense GSoC 2023, macro AUC: Model I 0.9921 (ResNet-18 and C4); Model II 0.9996 (ResNet-18), 0.9997 (C4);
  Model III 0.9995 (ResNet-18), 0.9997 (C4). **Their Model II images are noise-free** (a simulator bug, `image +
  image`); our `model_ii` images carry Euclid VIS-like noise, but our Einstein radii are 1.3 times theirs (1.66"
  against 1.28" for the 1e12 Msun host: theirs come from luminosity distances), so our arcs are larger and the
  subhalos sit on them differently. Which task is harder is not measured: their figures are references on other
  data, not targets for these rows (results_*.png draws them as such).
- DeepLense GSoC 2021 on the older Model F: C8 0.9984, D4 0.9982, ResNet-18 0.9942 (micro AUC).
- Lens finding on the real Strong Lens Finding Challenge (ground-based): CMU DeepLens AUC 0.98, TPR0 0.09, TPR10
  0.45. Our `lens_finding` rows are on simulated stamps, which are easier; TPR0 and TPR10 on a few hundred test
  stamps are coarse.
- A bar for the `cpu` scale: a small ResNet (0.3 M parameters) trained for 6 minutes on 6,000 noisy `model_ii`-spec
  images on 2 CPU cores reaches macro AUC 0.996.
"""


def finished_rows(work: Path, scale: str) -> list:
    "The rows of every finished run of `scale` in `work` (this and earlier invocations), by data set and network."
    rows = [json.loads(p.read_text()) for p in (work / "runs" / scale).glob("*/*/row.json")]
    return sorted(rows, key=lambda r: (DATASETS.index(r["dataset"]), MODEL_NAMES.index(r["model"]), r["params"]))


def write_table(rows: list, out: Path, scale: str, env: dict, note: str | None):
    "results_{scale}.csv (every field), results_{scale}.md (the main columns, the hardware, the references) and .png."
    s = SCALES[scale]
    method = (hardware_sentence(env) + f" Each network trains for its budget (epochs planned from a one-epoch trial "
              f"of the training pipeline; on the `cpu` clock the budget is "
              f"CPU time per thread, the time the run would take with the cores to itself), batch {s.batch_size}, "
              f"one-cycle "
              f"AdamW (peak learning rate 2e-3), random dihedral augmentation; data and training seed "
              f"{rows[0]['data_seed']}; split 80/10/10; scores on the held-out test rows. The load averages (1/5/15 "
              f"min) before and after each training run are in the table: above the core count, other jobs shared "
              f"the cores and the timings are slower than the machine can do.")
    write_tables(rows, out, f"results_{scale}", f"DeepLense results, `{scale}` scale", note, method, COLUMNS, REFERENCES)
    plot_table(rows, out, scale)


REFERENCE_AUC = {"model_i": 0.9921, "model_ii": 0.9997, "model_iii": 0.9997} # DeepLense GSoC 2023, best macro AUC
BAR_AUC = {"model_ii": 0.996} # the cpu scale's bar: a 0.3 M ResNet, 6 minutes, 6,000 noisy model_ii images


def plot_table(rows: list, out: Path, scale: str):
    "results_{scale}.png: the test score of every network on every data set (macro AUC; for lens finding also TPR10)."
    from matplotlib.figure import Figure # no pyplot: drawing must not switch the backend of a notebook that runs this
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    fig = Figure(figsize=(3.2 * len(datasets), 3.6))
    axes = fig.subplots(1, len(datasets), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        mine = [r for r in rows if r["dataset"] == dataset]
        x = np.arange(len(mine))
        ax.plot(x, [r["macro_auc"] for r in mine], "o", color="tab:blue", label="macro AUC (AUC for lens finding)")
        if mine[0]["tpr10"] is not None: ax.plot(x, [r["tpr10"] for r in mine], "s", color="tab:orange", label="TPR10")
        if dataset in REFERENCE_AUC: ax.axhline(REFERENCE_AUC[dataset], color="0.5", ls="-.", lw=1,
                                                  label="DeepLense's best on their own images (a reference, not a target: other data)")
        if dataset in BAR_AUC: ax.axhline(BAR_AUC[dataset], color="tab:red", ls=":", lw=1.5, label="the cpu-scale bar")
        low = min([r["macro_auc"] for r in mine] + [r["tpr10"] for r in mine if r["tpr10"] is not None])
        ax.set(title=dataset, ylim=(max(0.0, low - 0.01), 1.0005), xticks=x, xlim=(-0.5, len(mine) - 0.5))
        ax.set_xticklabels([r["model"] for r in mine], rotation=45, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("test score")
    handles = {l: h for ax in axes[0] for h, l in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"DeepLense `{scale}` scale: every network on every simulated data set", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(out / f"results_{scale}.png", dpi=110)


def _kwargs_arg(text: str) -> tuple:
    name, _, spec = text.partition("=")
    if name not in MODEL_NAMES: raise argparse.ArgumentTypeError(f"unknown network {name!r} in {text!r}")
    try: return name, json.loads(spec)
    except json.JSONDecodeError as e: raise argparse.ArgumentTypeError(f"not valid JSON in {text!r}: {e}") from None


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=SCALES, required=True)
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--datasets", nargs="+", default=OWN_DATASETS, choices=DATASETS)
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="training time per network (default: the scale's)")
    p.add_argument("--model-kwargs", nargs="+", type=_kwargs_arg, default=[], metavar="NAME=JSON",
                   help='build_model arguments replacing the scale\'s, e.g. resnet18=\'{"width": 16}\'')
    add_run_arguments(p, "results")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device, s = get_device(a.device), SCALES[a.scale]
    budget = a.budget_minutes if a.budget_minutes is not None else s.budget_minutes
    kwargs = s.model_kwargs | dict(a.model_kwargs)
    env = hardware(device)
    print(f"{a.scale} scale on {env['cpu']} ({env['cores']} cores, {env['torch_threads']} threads), {device}; "
          f"budget {budget:g} min per network; load {load()}", flush=True)
    command = command_line("results", argv)
    rows = []
    for dataset in a.datasets:
        for model in a.models:
            row = run_one(dataset, model, a.scale, a.work, a.seed, budget, a.budget_clock, device,
                          kwargs.get(model, {}), command)
            rows.append(row)
            print(f"{dataset:<13}{model:<14}{row['params']:>10,} params  {row['epochs']:>3} epochs  "
                  f"{row['train_min']:>6.2f} min  {row['infer_img_s']:>8.1f} img/s  macro AUC {row['macro_auc']:.4f}  "
                  f"acc {row['accuracy']:.3f}"
                  + (f"  TPR0 {row['tpr0']:.2f}  TPR10 {row['tpr10']:.2f}" if row["tpr0"] is not None else "")
                  + f"  load {row['load_before']} -> {row['load_after']}", flush=True)
    write_table(finished_rows(a.work, a.scale), a.out, a.scale, env, a.note)
    return rows


if __name__ == "__main__":
    main()

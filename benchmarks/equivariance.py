"""Equivariant networks against a ResNet at equal data (issue 17): macro AUC on a separate test file, which chooses
nothing, against the number of training images, for several training seeds, with the CPU time each run took.

Every network trains the same epochs on the same images (one-cycle AdamW, peak lr 2e-3, batch 64, standardised
images, dihedral augmentation; best.pt chosen on the training file's 10% validation rows) and is scored on the same
test file (another simulation seed). The plain-torch group-convolution networks `gc4` and `gd4` train at about the
speed of the width-11 ResNet-18 (benchmarks/results/gconv_speed.md), so equal epochs are also about equal CPU time;
the table gives each run's CPU minutes to check it. With `--equal-time NETWORK` the other networks get instead as
many epochs as fit in the CPU time NETWORK's run of the same seed took, from the CPU time per epoch of a one-epoch
trial run of each network. Every table comes with its learning curves (validation macro AUC against the epoch and
against CPU minutes, mean over the seeds).

    python -m benchmarks.equivariance --threads 1                    # model_ii, 1k/3k/10k images, seeds 0-2
    python -m benchmarks.equivariance --sizes 6000 --epochs 10 --equal-time resnet18-w11   # equal CPU time
    python -m benchmarks.equivariance --sizes 6000 --epochs 10 --equal-time resnet18-w11 --networks resnet18-w11 gc4 gd4-w8 c8-fast
    python -m benchmarks.equivariance --dataset model_ii_varied --sizes 1000 1500 3000     # another preset
    python -m benchmarks.equivariance --networks resnet18 --sizes 1500                   # the full-width ResNet-18
    python -m benchmarks.equivariance --networks c8 d4 --sizes 1500                      # e2cnn's steerable networks
    python -m benchmarks.equivariance --dataset model_i --bin 2 --networks resnet18-w11 gc4 gd4-w8 c8-fast --sizes 1000 3000 10000
    python -m benchmarks.equivariance --scale test                   # seconds: the script's own check
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch

from deeplense.cli import FullNameParser
from deeplense.core import hardware
from deeplense.formats import read_history
from deeplense.metrics import bootstrap, weighted_macro_auc
from deeplense.models import GROUPS, build_model, count_parameters
from deeplense.simconfig import preset
from deeplense.train import TrainConfig, fit_h5, predict

from benchmarks.common import RESULTS, command_line, cpu_clock, hardware_sentence, load, simulated_file, write_csv


@dataclass
class Scale:
    sizes: tuple # training images (the files hold them plus 1/9 for validation)
    n_test: int # test images
    epochs: int
    batch_size: int
    overrides: dict = field(default_factory=dict) # simulation overrides
    n_boot: int = 2000 # bootstrap resamples of the test images


SCALES = {"cpu": Scale(sizes=(1000, 3000, 10000), n_test=3000, epochs=20, batch_size=64),
          "test": Scale(sizes=(48,), n_test=48, epochs=1, batch_size=16, overrides={"n_pix": 32}, n_boot=200)}
NETWORKS = {"resnet18-w11": ("resnet18", {"width": 11}), "gc4": ("gc4", {}), "gd4-w8": ("gd4", {"width": 8}),
            "resnet18": ("resnet18", {}), # the full-width ResNet-18 (11 M parameters): on request, about 10x the CPU time (measured: 5.9 against 0.5 CPU-min)
            **{g: (g, {}) for g in GROUPS}, # the e2cnn steerable networks C4, C8, D4, D8 at their default sizes: on request, 9-16x the ResNet's CPU time (gconv_speed.md)
            # e2cnn's C8 at the ResNet's speed: the input binned 2x2 first, 2-16 regular fields (1.3x the ResNet's training
            # images per CPU-second, gconv_speed.md); chosen among three such sizes on the validation rows (results/equivariance)
            "c8-fast": ("c8", {"channels": [16, 32, 64, 128], "kernel_sizes": [7, 5, 3, 3], "pool_input": True})}
DEFAULT_NETWORKS = ("resnet18-w11", "gc4", "gd4-w8")


def equal_time_epochs(budget_min: float, trial: dict) -> int:
    "How many epochs fit in `budget_min` CPU minutes at the CPU minutes per epoch of a trial run (at least one)."
    return max(1, int(budget_min / (trial["cpu_min"] / trial["epochs"])))


def train_run(run: Path, data: Path, model: str, kwargs: dict, config: TrainConfig) -> dict:
    "Train (or reuse) one run: epochs, CPU minutes per thread and the load before and after."
    done, spent = run / "done.json", run / "cpu_min.json" # spent: the CPU minutes of the epochs saved so far
    if done.exists(): return json.loads(done.read_text())
    before, cpu = load(), cpu_clock()
    earlier = json.loads(spent.read_text()) if spent.exists() and (run / "last.pt").exists() else dict(cpu_min=0.0, load_before=before)
    def record(history: dict): # after each epoch's checkpoint: a run stopped and resumed counts every saved epoch's CPU time
        spent.write_text(json.dumps(dict(earlier, cpu_min=earlier["cpu_min"] + (cpu_clock() - cpu) / 60)))
    fit_h5(data, model, run, config, kwargs, fractions=(0.9, 0.1, 0.0), resume=True, callback=record)
    info = dict(epochs=len(read_history(run / "history.csv")["epoch"]), cpu_min=json.loads(spent.read_text())["cpu_min"],
                load_before=earlier["load_before"], load_after=load())
    done.write_text(json.dumps(info))
    return info


def macro_auc_interval(labels: np.ndarray, probs: np.ndarray, n_boot: int) -> tuple:
    "Macro AUC on the test images and its 95% percentile bootstrap interval."
    return bootstrap(weighted_macro_auc, labels, probs, n_boot=n_boot, weighted=True)[:3]


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=SCALES, default="cpu")
    p.add_argument("--dataset", default="model_ii", help="a preset with the three substructure classes")
    p.add_argument("--sizes", type=int, nargs="+", help="training images (default: the scale's)")
    p.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(DEFAULT_NETWORKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--epochs", type=int, help="training epochs (default: the scale's)")
    p.add_argument("--bin", type=int, default=1, help="standardise images binned NxN (2 for model_i's 150x150 pixels)")
    p.add_argument("--equal-time", choices=NETWORKS, metavar="NETWORK",
                   help="the other networks train as many epochs as fit in this network's CPU time (same seed)")
    p.add_argument("--work", type=Path, default=Path("equivariance_work"), help="simulations and runs (reused)")
    p.add_argument("--out", type=Path, default=RESULTS / "equivariance", help="where the tables go")
    args = p.parse_args(argv)
    if args.bin < 1: p.error(f"--bin must be a positive integer, got {args.bin}")
    torch.set_num_threads(args.threads)
    s, command = SCALES[args.scale], command_line("equivariance", argv)
    config = preset(args.dataset, s.overrides)
    test = simulated_file(config, s.n_test, args.work, f"{args.dataset}-{args.scale}", seed=99)
    with h5py.File(test) as f: labels, images = f["labels"][:], torch.from_numpy(f["images"][:])
    epochs = args.epochs or s.epochs
    preprocess, binned = ({"name": "standardize"}, "") if args.bin == 1 else ({"name": "standardize", "bin": args.bin}, f"-bin{args.bin}")
    def train_config(seed: int, n_epochs: int) -> TrainConfig: # the recipe every network shares
        return TrainConfig(epochs=n_epochs, batch_size=s.batch_size, lr=2e-3, preprocess=preprocess,
                           augment={"dihedral": True}, seed=seed, device="cpu", progress=False)
    networks = sorted(args.networks, key=lambda name: name != args.equal_time) # the reference first: its times set the budgets
    if args.equal_time and args.equal_time not in networks: raise SystemExit(f"--equal-time {args.equal_time}: add it to --networks")
    rows = []
    for size in args.sizes or s.sizes:
        data = simulated_file(config, round(size / 0.9), args.work, f"{args.dataset}-{args.scale}", seed=0)
        runs = args.work / "runs" / f"{args.dataset}-{args.scale}-n{size}{binned}"
        budgets = {} # seed -> the reference run's CPU minutes
        for name in networks:
            model, kwargs = NETWORKS[name]
            n_params = count_parameters(build_model(model, config.image_shape[0], len(config.classes), **kwargs))
            trial = (train_run(runs / f"{name}-trial-e1", data, model, kwargs, train_config(0, 1))
                     if args.equal_time and name != args.equal_time else None)
            for seed in args.seeds:
                n_epochs = equal_time_epochs(budgets[seed], trial) if trial else epochs
                run = runs / (f"{name}-seed{seed}" + ("" if n_epochs == s.epochs else f"-e{n_epochs}"))
                info = train_run(run, data, model, kwargs, train_config(seed, n_epochs))
                if name == args.equal_time: budgets[seed] = info["cpu_min"]
                probs = predict(run / "best.pt", images, device="cpu").numpy()
                auc, low, high = macro_auc_interval(labels, probs, s.n_boot)
                best_val = max(read_history(run / "history.csv")["val_auc"]) # what chose best.pt (and, for a probe, a network)
                rows.append(dict(dataset=args.dataset, scale=args.scale, training_images=size, network=name, model=model,
                                 kwargs=json.dumps(kwargs), parameters=n_params, seed=seed, test_images=len(labels),
                                 macro_auc=float(auc), auc_low=float(low), auc_high=float(high), best_val_auc=best_val,
                                 **info, run=str(run),
                                 command=command, finished=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"))
                print(f"n={size} {name} seed {seed}: macro AUC {auc:.4f} [{low:.4f}, {high:.4f}], {info['epochs']} epochs, "
                      f"{info['cpu_min']:.1f} CPU min", flush=True)
    stem = args.out / (f"equivariance_{args.dataset}_{args.scale}" + binned.replace("-", "_") + ("" if epochs == s.epochs else f"_e{epochs}")
                       + (f"_equal_time_{args.equal_time}" if args.equal_time else ""))
    comparison = (f"equal CPU time (each network as many epochs as fit in {args.equal_time}'s CPU time, seed by seed)"
                  if args.equal_time else "equal data")
    write_table(rows, stem, hardware(torch.device("cpu")), comparison)
    plot_curves(rows, stem.with_suffix(".png"))
    return rows


def plot_curves(rows: list, path: Path):
    "Validation macro AUC against the epoch and against CPU minutes, mean over seeds, one panel pair per training-set size."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = sorted({r["training_images"] for r in rows})
    fig, axes = plt.subplots(len(sizes), 2, figsize=(9, 3 * len(sizes)), squeeze=False, layout="constrained")
    for (ax_epoch, ax_time), size in zip(axes, sizes):
        for name in dict.fromkeys(r["network"] for r in rows):
            runs = [r for r in rows if r["training_images"] == size and r["network"] == name]
            if not runs: continue
            histories = [read_history(Path(r["run"]) / "history.csv") for r in runs]
            n = min(len(h["epoch"]) for h in histories)
            auc = np.mean([h["val_auc"][:n] for h in histories], 0)
            minutes = np.mean([np.cumsum(h["time"][:n]) for h in histories], 0) / 60 * np.mean(
                [r["cpu_min"] / (sum(h["time"]) / 60) for r, h in zip(runs, histories)]) # wall time scaled to the runs' CPU minutes
            label = f"{name} ({len(runs)} seeds)"
            ax_epoch.plot(np.arange(1, n + 1), auc, "o-", ms=3, label=label)
            ax_time.plot(minutes, auc, "o-", ms=3, label=label)
        ax_epoch.set(xlabel="epoch", ylabel="validation macro AUC", title=f"{size:,} training images")
        ax_time.set(xlabel="CPU minutes (one thread)", ylabel="validation macro AUC", title=f"{size:,} training images")
        for ax in (ax_epoch, ax_time): ax.set_ylim(max(0.5, ax.get_ylim()[0]), 1.0); ax.grid(alpha=0.3)
        ax_epoch.legend(fontsize=8)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_table(rows: list, stem: Path, env: dict, comparison: str = "equal data"):
    "CSV of every run; Markdown: the mean and range over seeds per (training images, network), then every run."
    write_csv(rows, stem.with_suffix(".csv"))
    lines = [f"# Equivariant networks against a ResNet at {comparison}: `{rows[0]['dataset']}`, `{rows[0]['scale']}` scale", "",
             f"Made with `{rows[0]['command']}` (finished {max(r['finished'] for r in rows)}).", "", hardware_sentence(env), "",
             "| training images | network | parameters | seeds | macro AUC: mean [min, max] over seeds | CPU min per run (mean) |",
             "|---|---|---|---|---|---|"]
    groups = {}
    for r in rows: groups.setdefault((r["training_images"], r["network"]), []).append(r)
    for (size, name), runs in groups.items():
        aucs = [r["macro_auc"] for r in runs]
        lines.append(f"| {size:,} | {name} | {runs[0]['parameters']:,} | {len(runs)} | {np.mean(aucs):.4f} [{min(aucs):.4f}, "
                     f"{max(aucs):.4f}] | {np.mean([r['cpu_min'] for r in runs]):.1f} |")
    lines += ["", "| training images | network | seed | macro AUC [95% bootstrap over test images] | best validation AUC | epochs | "
              "CPU min | load before / after |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['training_images']:,} | {r['network']} | {r['seed']} | {r['macro_auc']:.4f} [{r['auc_low']:.4f}, {r['auc_high']:.4f}] | "
              f"{r['best_val_auc']:.4f} | {r['epochs']} | {r['cpu_min']:.1f} | {r['load_before']} / {r['load_after']} |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

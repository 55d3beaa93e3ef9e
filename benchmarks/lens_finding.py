"""Lens finding as the issue on transferable simulations measures it: a width-11 ResNet-18 trained 10 epochs on 6,000
simulated stamps with the CMU DeepLens recipe and dihedral augmentation, scored on a separate simulated test file (and,
given one, on real Strong Lens Finding Challenge stamps converted by `deeplense convert challenge`).

AUC, TPR0 and TPR10 come with 95% bootstrap intervals over the test stamps, for several training seeds; the test file
is never used to choose anything (best.pt is chosen on the training file's 10% validation rows). The table also
splits the lenses by how visible they are (`lensed_pixels`, as the challenge's catalogue counts them), each bin's
lenses against all the non-lenses.

    python -m benchmarks.lens_finding --preset lens_finding --seeds 0 1 2 --threads 1
    python -m benchmarks.lens_finding --preset lens_finding_space --seeds 0 1 2
    python -m benchmarks.lens_finding --preset lens_finding_survey --seeds 0 1 2             # a survey's look-alikes
    python -m benchmarks.lens_finding --preset lens_finding --challenge challenge_ground.h5   # the real stamps
    python -m benchmarks.lens_finding --preset lens_finding --n-train 20000                 # the challenge's training-set size
    python -m benchmarks.lens_finding --preset lens_finding --network gd4-w8                # another network (equivariance's names)
    python -m benchmarks.lens_finding --scale test                                          # seconds: the script's own check
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch

from deeplense.cli import FullNameParser
from deeplense.core import hardware
from deeplense.formats import read_history, read_info
from deeplense.datasets import LensDataset
from deeplense.metrics import bootstrap, roc_auc, tpr0, tpr10
from deeplense.simconfig import CHALLENGE_CATALOGUE, NON_LENS_KINDS, preset
from deeplense.simulate import parse_override, simulate_to_h5
from deeplense.train import TrainConfig, fit_h5, predict

from benchmarks.common import HERE, RESULTS, command_line, is_simulated, write_csv
from benchmarks.equivariance import NETWORKS

SCALES = {"full": dict(n_train=6000, n_test=4000, epochs=10, overrides={}),
          "test": dict(n_train=96, n_test=64, epochs=1, overrides={"n_pix": 32})}
TRAIN_SEED, TEST_SEED = 1000, 2000 # simulation seeds of the training and test files
PIXEL_BINS = (0, 1, *CHALLENGE_CATALOGUE["lens_finding"]["lensed_pixels"][1:4], np.inf) # lensed pixels: none, then the ground catalogue's quartiles


def scores_on(checkpoint: Path, path: Path) -> tuple:
    "(labels 0/1 with 1 = lens, lens probabilities, lensed pixels or None, central object's kind or None) of every stamp of `path`."
    info = read_info(path)
    with h5py.File(path, "r") as f:
        labels = (f["labels"][:] == info.class_names.index("lens")).astype(int)
        pixels, kinds = (f["params"][k][:] if k in f["params"] else None for k in ("lensed_pixels", "kind"))
    return labels, predict(checkpoint, LensDataset(path)).numpy(), pixels, kinds


def metrics_row(labels: np.ndarray, probs: np.ndarray, pixels: np.ndarray | None, kinds: np.ndarray | None = None) -> dict:
    "AUC, TPR0 and TPR10 with intervals; the AUC of each visibility bin of the lenses and against each kind of non-lens."
    row = {}
    for name, metric in (("auc", roc_auc), ("tpr0", tpr0), ("tpr10", tpr10)):
        row[name], row[f"{name}_low"], row[f"{name}_high"], _ = bootstrap(metric, labels, probs, strata=labels) # within each class
    if pixels is not None:
        for low, high in zip(PIXEL_BINS[:-1], PIXEL_BINS[1:]):
            keep = (labels == 0) | ((pixels >= low) & (pixels < high))
            row[f"auc_pixels_{low:g}_{high:g}"] = roc_auc(labels[keep], probs[keep]) if (labels[keep] == 1).any() else np.nan
    if kinds is not None: # every lens against the non-lenses of one kind: which contaminants pass for lenses
        for i, kind in enumerate(NON_LENS_KINDS):
            keep = (labels == 1) | (kinds == i)
            row[f"auc_vs_{kind}"] = roc_auc(labels[keep], probs[keep]) if (labels[keep] == 0).any() else np.nan
    return row


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="lens_finding", help="lens_finding, lens_finding_space or lens_finding_survey")
    p.add_argument("--scale", choices=SCALES, default="full")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--network", choices=list(NETWORKS), default="resnet18-w11",
                   help="the network (the issue's: resnet18-w11; gc4 and gd4-w8 are the group-convolution networks)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle AdamW schedule")
    p.add_argument("--batch-size", type=int, default=64, help="images per step")
    p.add_argument("--preprocess", type=json.loads, default={"name": "cmu_deeplens"}, help="preprocessing spec (JSON)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the scale's, 10)")
    p.add_argument("--n-train", type=int, help="training stamps (default: the scale's, 6,000; the challenge's training set had 20,000)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="override a field of the preset, e.g. source.magnitude='{\"uniform\": [21.5, 25.3]}' (repeatable)")
    p.add_argument("--challenge", type=Path, help="a converted challenge file (deeplense convert challenge) to score too")
    p.add_argument("--work", type=Path, default=HERE / "work" / "lens_finding", help="simulations and runs (cached)")
    p.add_argument("--out", type=Path, default=RESULTS / "lens_finding", help="where the table goes")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_train = args.n_train if args.n_train != SCALES[args.scale]["n_train"] else None # None: the scale's own files and runs
    s = SCALES[args.scale] | ({"epochs": args.epochs} if args.epochs else {}) | ({"n_train": n_train} if n_train else {})
    overrides = dict(parse_override(text) for text in args.set)
    variant = "".join(f"+{k}={json.dumps(v, separators=(',', ':'))}" for k, v in overrides.items()) # its own simulations
    work = args.work / args.scale / (args.preset + variant)
    work.mkdir(parents=True, exist_ok=True)
    config = preset(args.preset, s["overrides"] | overrides)
    files = {}
    for split, n, seed in (("train", round(s["n_train"] / 0.9), TRAIN_SEED), ("test", s["n_test"], TEST_SEED)):
        files[split] = work / (f"{split}.h5" if split == "test" or not n_train else f"train_n{n_train}.h5")
        if not is_simulated(files[split], config, seed):
            start = time.perf_counter()
            simulate_to_h5(config, n, files[split], seed=seed, device="cpu", progress=False)
            print(f"simulated {n} {split} stamps in {time.perf_counter() - start:.0f} s", flush=True)
    spec = args.preprocess
    recipe = (("" if args.lr == 1e-3 else f"_lr{args.lr:g}") + ("" if not args.epochs else f"_e{args.epochs}")
              + ("" if not n_train else f"_n{n_train}")
              + ("" if args.batch_size == 64 else f"_bs{args.batch_size}")
              + ("" if spec == {"name": "cmu_deeplens"} else "_" + json.dumps(spec, separators=(",", ":"), sort_keys=True)))
    rows = []
    for seed in args.seeds:
        run = work / f"{args.network.replace('-', '_')}_seed{seed}{recipe}"
        train_config = TrainConfig(epochs=s["epochs"], batch_size=args.batch_size, lr=args.lr, preprocess=spec, augment={"dihedral": True},
                                   seed=seed, progress=False, device="cpu")
        model_name, model_kwargs = NETWORKS[args.network]
        fit_h5(files["train"], model_name, run, train_config, model_kwargs=model_kwargs, fractions=(0.9, 0.1, 0.0), resume=True)
        seconds = sum(read_history(run / "history.csv")["time"]) # the epochs' own times: a finished run re-scored keeps them
        tests = [("simulated", files["test"])] + ([("challenge", args.challenge)] if args.challenge else [])
        for name, path in tests:
            row = dict(preset=args.preset + variant, network=args.network, scale=args.scale, seed=seed, lr=args.lr, epochs=s["epochs"], n_train=s["n_train"],
                       preprocess=json.dumps(spec), test=name, test_file=str(path), n_test=read_info(path).n,
                       train_seconds=round(seconds), **metrics_row(*scores_on(run / "best.pt", path)))
            rows.append(row)
            print(f"seed {seed} on {name}: AUC {row['auc']:.4f} [{row['auc_low']:.4f}, {row['auc_high']:.4f}], "
                  f"TPR0 {row['tpr0']:.3f} [{row['tpr0_low']:.3f}, {row['tpr0_high']:.3f}], "
                  f"TPR10 {row['tpr10']:.3f} [{row['tpr10_low']:.3f}, {row['tpr10_high']:.3f}]", flush=True)
    table = (recipe.split("_{")[0] + ("" if spec == {"name": "cmu_deeplens"} else f"_{spec.get('name')}") # a file name without JSON
             + ("" if args.network == "resnet18-w11" else f"_{args.network}"))
    write_table(rows, args.out / (f"{args.preset}_{args.scale}{table}" + ("_variant" if variant else "")), command_line("lens_finding", argv))
    return rows


def write_table(rows: list, stem: Path, command: str):
    "CSV of every row, and a Markdown table with the machine, the load and the command."
    write_csv(rows, stem.with_suffix(".csv"))
    env = hardware(torch.device("cpu"))
    network = {"resnet18-w11": "ResNet-18 width 11", "resnet18": "ResNet-18"}.get(rows[0]["network"], rows[0]["network"])
    spec = json.loads(rows[0].get("preprocess", '{"name": "cmu_deeplens"}'))
    preprocessing = "CMU DeepLens preprocessing" if spec == {"name": "cmu_deeplens"} else f"preprocessing `{json.dumps(spec)}`"
    lines = [f"# Lens finding: {network}, {rows[0]['epochs']} epochs on {rows[0]['n_train']:,} stamps, {preprocessing}, dihedral augmentation\n",
             f"{datetime.now(timezone.utc):%Y-%m-%d}, {json.dumps(env)}; command: `{command}`\n",
             "| preset | seed | test | stamps | AUC [95%] | TPR0 [95%] | TPR10 [95%] | AUC by lensed pixels (none, 1-42, 43-115, 116-241, 242+) | "
             f"AUC against each kind of non-lens ({', '.join(NON_LENS_KINDS)}) | train [s] |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bins, by_kind = (", ".join(f"{v:.3f}" for k, v in r.items() if k.startswith(prefix)) or "-" for prefix in ("auc_pixels_", "auc_vs_"))
        lines.append(f"| {r['preset']} | {r['seed']} | {r['test']} | {r['n_test']} | {r['auc']:.4f} [{r['auc_low']:.4f}, {r['auc_high']:.4f}] | "
                     f"{r['tpr0']:.3f} [{r['tpr0_low']:.3f}, {r['tpr0_high']:.3f}] | {r['tpr10']:.3f} [{r['tpr10_low']:.3f}, {r['tpr10_high']:.3f}] | "
                     f"{bins} | {by_kind} | {r['train_seconds']} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Fine-tuning across simulations: a ResNet-18 pre-trained on model_ii and fine-tuned on a few model_iii images, against the same network trained from scratch on them; one table (CSV, Markdown).

Issue #20 ("Simulations that transfer"), part 6. For each seed, the package's public pipeline runs three trainings of a
ResNet-18 (width 11 at the `cpu` scale, 0.33 M parameters, as in benchmarks/results.py and regression.py):

1. pre-training: `fit_h5` on 3,000 `model_ii` images (data seed 0; split 90/10, best epoch on the 300 validation images);
2. fine-tuning: `fit_h5(..., config=replace(config, init=PRE/best.pt))` (the `deeplense train --init` of 07_train) on
   300 `model_iii` images (data seed 1; split 80/20: 240 to train on, 60 to pick the best epoch and the settings);
3. from scratch: the same network, configuration and split on the same 300 images, without `init`.

Both are tested on 1,500 other `model_iii` images (data seed 2) used for nothing else: macro AUC with 95% bootstrap
intervals (2,000 resamples of the test images; the difference resamples the same images for both networks, so the
pair is compared on equal terms), and the mean over the seeds. Fine-tuning and scratch runs of a seed share the seed
(initial weights of the new layers, split, shuffling, augmentation). The issue's bar: fine-tuned macro AUC at least
0.03 above scratch. Fine-tuning settings other than the default (`--finetune-lr`, `--freeze-backbone`, `--pretrain-augment`) are compared on
the 60 validation images (`val AUC`), never on the test file. Runs are cached in `--work` (row.json and the test
probabilities per run); each invocation writes the table from every finished run of its scale.

    python -m benchmarks.finetune --scale test                                   # a minute: the pipeline's test
    python -m benchmarks.finetune --scale cpu --threads 1 --seeds 0 1 2          # about 15 CPU-minutes
    python -m benchmarks.finetune --scale cpu --threads 1 --seeds 0 1 2 --finetune-lr 3e-4
    python -m benchmarks.finetune --scale cpu --threads 1 --seeds 0 1 2 --freeze-backbone --finetune-lr 1e-2
    python -m benchmarks.finetune --scale cpu --threads 1 --seeds 0 1 2 --pretrain-augment '{"dihedral": true, "zoom": 1.3}'
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch

from deeplense.cli import FullNameParser
from deeplense.core import get_device, hardware
from deeplense.metrics import bootstrap, weighted_macro_auc
from deeplense.models import count_parameters
from deeplense.simulate import preset
from deeplense.train import TrainConfig, fit_h5, load_checkpoint, predict
from deeplense.formats import read_history

from benchmarks.common import RESULTS, command_line, cpu_clock, hardware_sentence, load, simulated_file, write_tables

MODEL = "resnet18"
BAR = 0.03 # the issue's bar: fine-tuned macro AUC at least this much above scratch
BASE_AUGMENT = {"dihedral": True} # of all three trainings unless --pretrain-augment changes pre-training's
PRE_FRACTIONS, FEW_FRACTIONS = (0.9, 0.1, 0.0), (0.8, 0.2, 0.0) # train, validation, test


@dataclass
class Scale:
    "The sizes of one scale of the benchmark."
    n_pre: int # model_ii images to pre-train on (train + validation)
    n_few: int # model_iii images to fine-tune on (train + validation)
    n_test: int # model_iii test images
    epochs: int # of each of the three trainings
    batch_size: int
    model_kwargs: dict
    overrides: dict = field(default_factory=dict) # simulation overrides of both presets (e.g. a smaller image)
    n_boot: int = 2000 # bootstrap resamples of the test images


SCALES = {
    "test": Scale(n_pre=96, n_few=48, n_test=96, epochs=2, batch_size=16, model_kwargs={"width": 4}, overrides={"n_pix": 32},
                  n_boot=200),
    "cpu": Scale(n_pre=3000, n_few=300, n_test=1500, epochs=10, batch_size=32, model_kwargs={"width": 11}),
}


def data_files(scale: str, work: Path, device: torch.device) -> dict:
    "The pre-training (model_ii, seed 0), few-image (model_iii, seed 1) and test (model_iii, seed 2) files, simulated once."
    s = SCALES[scale]
    specs = dict(pre=("model_ii", s.n_pre, 0), few=("model_iii", s.n_few, 1), test=("model_iii", s.n_test, 2))
    return {k: simulated_file(preset(name, s.overrides), n, work, f"{name}-{scale}", seed, device)
            for k, (name, n, seed) in specs.items()}


def base_config(s: Scale, seed: int, device: torch.device) -> TrainConfig:
    "The configuration of all three trainings (one-cycle AdamW, peak 2e-3, dihedral augmentation, standardised images)."
    return TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=2e-3, preprocess={"name": "standardize"},
                       augment=BASE_AUGMENT, seed=seed, device=str(device), progress=False)


def train(run: Path, data: Path, config: TrainConfig, model_kwargs: dict | None, fractions: tuple) -> dict:
    "Train (or reuse) one run: its best validation AUC, epochs, training minutes and the load before and after."
    done = run / "done.json"
    if done.exists(): return json.loads(done.read_text())
    before, start, cpu = load(), time.perf_counter(), cpu_clock()
    if (run / "last.pt").exists(): # a stopped run resumes alone: it keeps its init, hash and frozen backbone
        config = replace(config, init=None, freeze_backbone=False)
    fit_h5(data, MODEL if config.init is None else None, run, config, model_kwargs, fractions=fractions,
           resume=config.init is None)
    history = read_history(run / "history.csv")
    info = dict(val_auc=max(history["val_auc"]), best_epoch=1 + int(np.argmax(history["val_auc"])), epochs=len(history["epoch"]),
                train_min=(time.perf_counter() - start) / 60, cpu_min=(cpu_clock() - cpu) / 60,
                load_before=before, load_after=load())
    done.write_text(json.dumps(info))
    return info


def test_probs(checkpoint: Path, test: Path, device: torch.device) -> np.ndarray:
    "(N, K) class probabilities of a checkpoint on every image of the test file."
    with h5py.File(test) as f: images = torch.from_numpy(f["images"][:])
    return predict(checkpoint, images, device=device).cpu().numpy()


def test_labels(test: Path) -> np.ndarray:
    with h5py.File(test) as f: return f["labels"][:]


def auc_interval(labels: np.ndarray, # (N,) test labels
                 probs: list, # (N, K) probabilities of each network
                 coefficients: list, # the statistic: sum of coefficients[i] * macro AUC of network i
                 n: int, seed: int = 0) -> tuple:
    "The statistic on the test set and its 95% percentile bootstrap interval (the same resampled images for every network)."
    statistic = lambda labels, *probs, weights: sum(c * weighted_macro_auc(labels, p, weights) for c, p in zip(coefficients, probs))
    return bootstrap(statistic, labels, *probs, n_boot=n, seed=seed, weighted=True)[:3]


def pretrain_name(augment: dict | None) -> str:
    "The pre-training run's folder: `pretrain` with the base augmentation, else e.g. `pretrain-zoom1.3`."
    base = BASE_AUGMENT if augment is None else augment
    changed = [f"{k}{v if not isinstance(v, bool) else str(v).lower()}" for k, v in sorted(base.items()) if BASE_AUGMENT.get(k) != v]
    changed += [f"no{k}" for k in sorted(BASE_AUGMENT) if k not in base]
    return "-".join(["pretrain"] + changed)


def variant_name(lr: float | None, frozen: bool, pre_augment: dict | None = None) -> str:
    "The fine-tuning settings in a run name, e.g. lr0.0003-frozen or pre-zoom1.3; `default`: the base configuration's."
    pre = pretrain_name(pre_augment).removeprefix("pretrain")
    return "-".join(([f"lr{lr:g}"] if lr is not None else []) + (["frozen"] if frozen else []) + ([f"pre{pre}"] if pre else [])) or "default"


def run_seed(scale: str, seed: int, lr: float | None, frozen: bool, work: Path, device: torch.device, command: str,
             pre_augment: dict | None = None) -> dict:
    "Pre-train (with `pre_augment`, default the base's), fine-tune and train from scratch with `seed`; the table's row (cached)."
    s, variant, pre_name = SCALES[scale], variant_name(lr, frozen, pre_augment), pretrain_name(pre_augment)
    runs = work / "runs" / scale / f"seed{seed}"
    row_path = runs / f"row-{variant}.json"
    if row_path.exists(): return json.loads(row_path.read_text())
    files, config = data_files(scale, work, device), base_config(s, seed, device)
    pre = train(runs / pre_name, files["pre"], replace(config, augment=pre_augment or BASE_AUGMENT), s.model_kwargs, PRE_FRACTIONS)
    scratch = train(runs / "scratch", files["few"], config, s.model_kwargs, FEW_FRACTIONS)
    tuned_config = replace(config, init=str(runs / pre_name / "best.pt"), freeze_backbone=frozen, lr=lr or config.lr)
    tuned = train(runs / f"finetune-{variant}", files["few"], tuned_config, None, FEW_FRACTIONS)
    labels = test_labels(files["test"])
    probs = {}
    for name in (pre_name, "scratch", f"finetune-{variant}"):
        cache = runs / name / "test_probs.npy"
        if not cache.exists(): np.save(cache, test_probs(runs / name / "best.pt", files["test"], device))
        probs[name] = np.load(cache)
    model, meta = load_checkpoint(runs / f"finetune-{variant}" / "best.pt", "cpu")
    auc = lambda name: auc_interval(labels, [probs[name]], [1.0], s.n_boot)
    (sc, sc_lo, sc_hi), (ft, ft_lo, ft_hi), (zs, zs_lo, zs_hi) = auc("scratch"), auc(f"finetune-{variant}"), auc(pre_name)
    diff, diff_lo, diff_hi = auc_interval(labels, [probs[f"finetune-{variant}"], probs["scratch"]], [1.0, -1.0], s.n_boot)
    row = dict(scale=scale, seed=seed, variant=variant, finetune_lr=tuned_config.lr, frozen=frozen, pretrain_run=pre_name,
               pretrain_augment=json.dumps(pre_augment or BASE_AUGMENT), params=count_parameters(model),
               trainable=count_parameters(model) if not frozen else sum(p.numel() for n, p in model.named_parameters()
                                                                         if n.startswith(meta["init"]["head"] + ".")),
               head=meta["init"]["head_note"], pre_val_auc=pre["val_auc"], scratch_val_auc=scratch["val_auc"],
               finetune_val_auc=tuned["val_auc"], pretrained_auc=zs, pretrained_lo=zs_lo, pretrained_hi=zs_hi,
               scratch_auc=sc, scratch_lo=sc_lo, scratch_hi=sc_hi, finetune_auc=ft, finetune_lo=ft_lo, finetune_hi=ft_hi,
               diff=diff, diff_lo=diff_lo, diff_hi=diff_hi, pre_min=pre["cpu_min"], scratch_min=scratch["cpu_min"],
               finetune_min=tuned["cpu_min"], load_before=pre["load_before"] if variant == "default" else tuned["load_before"],
               load_after=tuned["load_after"], threads=torch.get_num_threads(), command=command,
               finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    row_path.write_text(json.dumps(row))
    return row


def mean_rows(rows: list, scale: str, work: Path) -> list:
    "One row per variant with at least two seeds: the mean over its seeds, with intervals from the same bootstrap."
    s, out = SCALES[scale], []
    labels = test_labels(data_files(scale, work, torch.device("cpu"))["test"])
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        if len(mine) < 2: continue
        probs = lambda name: [np.load(work / "runs" / scale / f"seed{r['seed']}" / name / "test_probs.npy") for r in mine]
        k = len(mine)
        avg = lambda names, weights: auc_interval(labels, [p for n in names for p in probs(n)],
                                                [w / k for w in weights for _ in range(k)], s.n_boot)
        (sc, sc_lo, sc_hi), (ft, ft_lo, ft_hi) = avg(["scratch"], [1.0]), avg([f"finetune-{variant}"], [1.0])
        zs, zs_lo, zs_hi = avg([mine[0].get("pretrain_run", "pretrain")], [1.0])
        diff, diff_lo, diff_hi = avg([f"finetune-{variant}", "scratch"], [1.0, -1.0])
        mean = lambda key: float(np.mean([r[key] for r in mine]))
        out.append(mine[0] | dict(seed="mean of " + ", ".join(str(r["seed"]) for r in mine), pre_val_auc=mean("pre_val_auc"),
                                  scratch_val_auc=mean("scratch_val_auc"), finetune_val_auc=mean("finetune_val_auc"),
                                  pretrained_auc=zs, pretrained_lo=zs_lo, pretrained_hi=zs_hi, scratch_auc=sc, scratch_lo=sc_lo,
                                  scratch_hi=sc_hi, finetune_auc=ft, finetune_lo=ft_lo, finetune_hi=ft_hi, diff=diff,
                                  diff_lo=diff_lo, diff_hi=diff_hi, pre_min=mean("pre_min"), scratch_min=mean("scratch_min"),
                                  finetune_min=mean("finetune_min"), load_before=None, load_after=None,
                                  finished=max(r["finished"] for r in mine)))
    return out


COLUMNS = {"variant": ("fine-tuning", "{}"), "pretrain_augment": ("pre-training augmentation", "{}"),
           "finetune_lr": ("fine-tuning lr", "{:g}"), "trainable": ("trained parameters", "{:,}"),
           "seed": ("seed", "{}"), "pre_val_auc": ("pre-training val AUC (model_ii)", "{:.4f}"),
           "scratch_val_auc": ("scratch val AUC", "{:.4f}"), "finetune_val_auc": ("fine-tuned val AUC", "{:.4f}"),
           "pretrained_auc": ("pre-trained only, test", "{:.4f}"), "scratch_auc": ("scratch, test", "{:.4f}"),
           "scratch_ci": ("95% interval", "{}"), "finetune_auc": ("fine-tuned, test", "{:.4f}"),
           "finetune_ci": ("95% interval", "{}"), "diff": ("fine-tuned - scratch", "{:+.4f}"), "diff_ci": ("95% interval", "{}"),
           "bar": ("bar (+0.03)", "{}"), "pre_min": ("pre-training [CPU min]", "{:.1f}"),
           "finetune_min": ("fine-tuning [CPU min]", "{:.2f}"), "scratch_min": ("scratch [CPU min]", "{:.2f}"),
           "load_before": ("load before", "{}"), "load_after": ("load after", "{}")}


def write_table(rows: list, out: Path, scale: str, env: dict, note: str | None):
    "finetune_{scale}.csv and .md in `out`: one row per seed and variant, then the means over the seeds."
    s = SCALES[scale]
    interval = lambda r, key: f"[{r[key + '_lo']:.4f}, {r[key + '_hi']:.4f}]"
    rows = [dict(pretrain_augment=json.dumps(BASE_AUGMENT)) | r | dict(scratch_ci=interval(r, "scratch"), finetune_ci=interval(r, "finetune"),
                     diff_ci=f"[{r['diff_lo']:+.4f}, {r['diff_hi']:+.4f}]", bar="met" if r["diff"] >= BAR else "not met")
            for r in rows]
    method = (hardware_sentence(env) + f" ResNet-18 {s.model_kwargs} ({rows[0]['params']:,} parameters), "
              f"{s.epochs} epochs for each training, batch {s.batch_size}, one-cycle AdamW (peak learning rate 2e-3 unless "
              f"the row says otherwise), random dihedral augmentation (pre-training: as its column says), standardised images; each run's best epoch on its "
              f"validation images. Pre-training: {s.n_pre:,} `model_ii` images (90% to train on; data seed 0). Fine-tuning "
              f"(`init` = the pre-trained best.pt: every weight, the output layer too since the three classes are the "
              f"same; a new optimizer and schedule) and scratch: {s.n_few} `model_iii` images (data seed 1; 80% to train "
              f"on, 20% to validate), the same seed, split and configuration. Test: {s.n_test:,} other `model_iii` images "
              f"(data seed 2), used for nothing else; macro AUC with 95% percentile bootstrap intervals ({s.n_boot:,} "
              f"resamples of the test images; the difference and the means resample the same images for every network). "
              f"'pre-trained only' is the model_ii network applied to model_iii without fine-tuning. `val AUC` is the best "
              f"epoch's on the validation images (60 at the `cpu` scale): the only figure used to choose between "
              f"fine-tuning settings. One torch thread per run (two runs side by side), CPU minutes per thread; load "
              f"averages (1/5/15 min) before the first and after the last training of a row.")
    footer = ("The bar (issue #20): fine-tuned macro AUC at least 0.03 above the network trained from scratch on the same "
              "images. Rows 'mean of' average the seeds' macro AUCs (the interval from the same bootstrap).")
    write_tables(rows, out, f"finetune_{scale}", f"Fine-tuning from model_ii to model_iii, `{scale}` scale", note, method,
                         COLUMNS, footer)


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=SCALES, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (pre-training, fine-tuning and scratch)")
    p.add_argument("--finetune-lr", type=float, default=None, help="peak learning rate of fine-tuning (default: the base 2e-3)")
    p.add_argument("--freeze-backbone", action="store_true", help="fine-tune the output layer alone")
    p.add_argument("--pretrain-augment", type=json.loads, default=None, metavar="JSON",
                   help=f"pre-training's augmentation, e.g. '{{\"dihedral\": true, \"zoom\": 1.3}}' (default {json.dumps(BASE_AUGMENT)})")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps, ...; default: CUDA, then MPS, then CPU")
    p.add_argument("--work", type=Path, default=Path("finetune_work"), help="simulated data and runs (reused)")
    p.add_argument("--out", type=Path, default=RESULTS / "finetune", help="where finetune_SCALE.csv and .md go")
    p.add_argument("--note", default=None, help="a remark printed above the table (e.g. the machine was shared)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device = get_device(a.device)
    command = command_line("finetune", argv)
    print(f"{a.scale} scale, {torch.get_num_threads()} threads, {device}; load {load()}", flush=True)
    rows = []
    for seed in a.seeds:
        row = run_seed(a.scale, seed, a.finetune_lr, a.freeze_backbone, a.work, device, command, a.pretrain_augment)
        rows.append(row)
        print(f"seed {seed} {row['variant']:<14} scratch {row['scratch_auc']:.4f}  fine-tuned {row['finetune_auc']:.4f}  "
              f"difference {row['diff']:+.4f} [{row['diff_lo']:+.4f}, {row['diff_hi']:+.4f}]  (val {row['scratch_val_auc']:.3f} "
              f"/ {row['finetune_val_auc']:.3f})  load {row['load_before']} -> {row['load_after']}", flush=True)
    done = sorted((json.loads(r.read_text()) for r in (a.work / "runs" / a.scale).glob("seed*/row-*.json")),
                  key=lambda r: (r["variant"] != "default", r["variant"], r["seed"]))
    write_table(done + mean_rows(done, a.scale, a.work), a.out, a.scale, hardware(device), a.note)
    return rows


if __name__ == "__main__":
    main()

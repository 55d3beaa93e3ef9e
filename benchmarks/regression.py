"""Regress the axion mass of vortex lenses on Models I, II and III with a ResNet, and write one table (CSV, Markdown, PNG).

Issue #7's point estimates: for each data set (`model_i`, `model_ii`, `model_iii`, the presets at their native
resolution with the preset's vortex, class `axion` only, log10 m_a log-uniform on [1e-24, 1e-22] eV), the package's
public pipeline runs: `simulate_to_h5` (cached between runs) -> `fit_h5(..., targets=["log10_axion_mass"])` (80/10/10
split, one-cycle AdamW on the mean squared error of the standardised target, dihedral augmentation) -> `predict` on
the held-out test rows. The table gives the mean absolute error (MAE) of log10 m_a in dex, the RMSE and the
correlation, beside what a guess without information scores (the prior's centre: 0.5 dex on a 2-dex uniform prior)
and DeepLense's regression results (0.27 / 0.22 / 0.13 dex on their own Models I / II / III). On top, unless
`--no-npe`, sbi's neural posterior estimation reuses each trained regressor as its frozen embedding network
(`deeplense.inference.posterior_from_regressor`, a flow fitted on a fresh simulated set) and the table reports the
posterior median's MAE and the coverage of the 68% and 95% credible intervals on the test rows.
The Cramer-Rao bound on log10 m_a (every other parameter known) at 1e-23.5, 1e-23 and 1e-22.5 eV says how much the
images themselves can tell (`cramer_rao`). `NAME_deeplensesim` data sets are the presets' variants that simulate as
DeepLenseSim made DeepLense's data (`deeplense.simulate.DEEPLENSESIM_PRESETS`), for the comparison with their figures on
images made like theirs.

Training follows benchmarks/results.py (with the pieces of benchmarks/common.py): a time budget per data set, the epochs planned
from a one-epoch trial of the training pipeline so that the one-cycle schedule ends with the budget, a callback stopping
at the first epoch boundary past it; `--budget-clock cpu` counts CPU time per thread, which other jobs on a shared
machine disturb much less. Finished runs are cached in `--work` (row.json and the test predictions per run).

    python -m benchmarks.regression --scale test                                    # about a minute: the pipeline's test
    python -m benchmarks.regression --scale cpu --threads 1 --budget-clock cpu   # about 2.2 CPU-hours
    python -m benchmarks.regression --scale gpu                                     # DeepLense's sizes, full ResNet-18
    python -m benchmarks.regression --scale cpu --threads 1 --budget-clock cpu --datasets model_ii_deeplensesim
                                                             # the preset simulated as DeepLenseSim made DeepLense's data
    python -m benchmarks.regression --scale cpu --threads 1 --budget-clock cpu --datasets model_i_deeplensesim \
        --train-images 30000 --width 16 --bin 2 --budget-minutes 100       # Model I's 0.260 dex: pixels binned by 2
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
from deeplense.core import DEFAULT_FRACTIONS, get_device, hardware, make_generator
from deeplense.formats import read_history, read_info
from deeplense.inference import expected_coverage, posterior_from_regressor, posterior_ranks
from deeplense.models import count_parameters
from deeplense.simulate import DEEPLENSESIM_PRESETS, preset, render_images, sample_params
from deeplense.train import TrainConfig, fit_h5, load_checkpoint, predict

from benchmarks.common import (CLOCKS, Budget, BudgetReached, add_run_arguments, command_line, hardware_sentence, load,
                               planned_epochs, run_name, simulated_file, write_tables)

TARGET = "log10_axion_mass"
LOW, HIGH = -24.0, -22.0 # the presets' prior: m_a log-uniform on [1e-24, 1e-22] eV
DEEPLENSE_MAE = {"model_i": 0.27, "model_ii": 0.22, "model_iii": 0.13} # DeepLense's regression (XResNet18), their data


# data set -> its preset's name (the key of the scales' sizes and of DeepLense's figures): the presets, then the presets
# as DeepLenseSim made DeepLense's data
DATASETS = {**{name: name for name in DEEPLENSE_MAE}, **{v: name for v, name in DEEPLENSESIM_PRESETS.items()}}
MODEL = "resnet18"


@dataclass
class Scale:
    "The sizes of one scale of the benchmark, per data set where they differ."
    n_train: dict # preset -> training images (its DeepLenseSim variant alike)
    budget_minutes: dict # preset -> training time
    batch_size: int
    max_epochs: int # an upper bound on the planned epochs
    n_flow: int # fresh simulations on which the posterior's flow is fitted
    overrides: dict = field(default_factory=dict) # simulation overrides of every preset (e.g. a smaller image)
    model_kwargs: dict = field(default_factory=dict) # build_model arguments of the ResNet-18
    timing_s: float = 10.0 # about how long the planning trial trains [s]
    n_samples: int = 1000 # posterior samples per test lens

    def n_images(self, dataset: str) -> int:
        "Images to simulate so that the training split has `n_train` of `dataset`'s preset."
        return round(self.n_train[DATASETS[dataset]] / DEFAULT_FRACTIONS[0])


SCALES = {
    "test": Scale(n_train=dict.fromkeys(DEEPLENSE_MAE, 48), budget_minutes=dict.fromkeys(DEEPLENSE_MAE, 0.05), batch_size=16,
                  max_epochs=2, n_flow=200, overrides={"n_pix": 32}, model_kwargs={"width": 4}, timing_s=0.5,
                  n_samples=100),
    # one CPU core per data set, about 2.2 CPU-hours in all: the regressors learn nothing for their first
    # 50,000-100,000 images seen (the loss stays at the prior's), so shorter budgets measure the plateau, not the network; model_i's
    # 150x150 images cost 4-5x the 64x64 ones per training step, so it gets fewer images and a longer budget;
    # ResNet-18 at width 11 has 0.33 M parameters
    "cpu": Scale(n_train={"model_i": 12_000, "model_ii": 30_000, "model_iii": 30_000},
                 budget_minutes={"model_i": 60.0, "model_ii": 35.0, "model_iii": 35.0}, batch_size=64, max_epochs=100,
                 n_flow=3000, model_kwargs={"width": 11}),
    # DeepLense's sizes (tens of thousands of axion images per set), the full-width ResNet-18
    "gpu": Scale(n_train=dict.fromkeys(DEEPLENSE_MAE, 30_000), budget_minutes=dict.fromkeys(DEEPLENSE_MAE, 30.0), batch_size=128,
                 max_epochs=100, n_flow=20_000),
}


def simulation(dataset: str, s: Scale) -> object:
    "The simulation of `dataset` (a key of `DATASETS`) with its axion class only, and the scale's overrides."
    return preset(dataset, {"classes": ["axion"], **s.overrides})


def dataset_files(dataset: str, scale: str, s: Scale, work: Path, seed: int, device: torch.device, flow: bool) -> tuple:
    "The training file (train/validation/test rows) and, if `flow`, the fresh file of the posterior's flow (seed + 1)."
    config = simulation(dataset, s)
    n = s.n_images(dataset)
    data = simulated_file(config, n, work, f"{dataset}-axion-{scale}", seed, device)
    return data, simulated_file(config, s.n_flow, work, f"{dataset}-axion-{scale}", seed + 1, device) if flow else None


def read_rows(path: Path, rows: np.ndarray) -> tuple:
    "Images (float32 tensor) and log10 m_a (float64 array) of the increasing `rows` of a simulated file."
    with h5py.File(path) as f: return torch.from_numpy(f["images"][rows]), f[f"params/{TARGET}"][rows]


def scores(truth: np.ndarray, estimate: np.ndarray) -> dict:
    "MAE and RMSE [dex], Pearson r, and the MAE of lenses lighter / heavier than 1e-23 eV."
    err = estimate - truth
    light = truth < -23.0
    return dict(mae=float(np.abs(err).mean()), rmse=float(np.sqrt((err ** 2).mean())),
                r=float(np.corrcoef(estimate, truth)[0, 1]), mae_light=float(np.abs(err[light]).mean()),
                mae_heavy=float(np.abs(err[~light]).mean()))


def npe_scores(checkpoint: Path, flow_path: Path, images: torch.Tensor, truth: np.ndarray, n_samples: int,
               seed: int, device: torch.device) -> dict:
    "Posterior median MAE and 68% / 95% coverage on the test rows, the regressor as sbi's embedding network."
    net, meta = load_checkpoint(checkpoint, device)
    with h5py.File(flow_path) as f: flow_images, flow_theta = torch.from_numpy(f["images"][:]), f[f"params/{TARGET}"][:]
    torch.manual_seed(seed)
    start = time.process_time()
    posterior = posterior_from_regressor(net, meta, flow_images, torch.from_numpy(flow_theta)[:, None], [LOW], [HIGH],
                                         device=device)
    fit_s = (time.process_time() - start) / torch.get_num_threads()
    samples = posterior.sample(images, n_samples).cpu() # (S, B, 1)
    t = torch.as_tensor(truth, dtype=samples.dtype)[:, None]
    c68, c95 = expected_coverage(posterior_ranks(samples, t), torch.tensor([0.68, 0.95], dtype=samples.dtype))[:, 0].tolist()
    median = samples.median(0).values[:, 0].double().numpy()
    return dict(npe_mae=float(np.abs(median - truth).mean()), coverage68=c68, coverage95=c95,
                npe_fit_cpu_min_per_thread=round(fit_s / 60, 2), npe_median=median)


CR_MASSES = (-23.5, -23.0, -22.5) # log10 m_a [eV] at which the Cramer-Rao bound is reported


def cramer_rao(dataset: str, s: Scale, n: int = 64, step: float = 0.05) -> dict:
    "Median over `n` lenses of the Cramer-Rao bound on log10 m_a [dex], all other parameters known, at `CR_MASSES`."
    config = simulation(dataset, s)
    if not config.noise: return {f"cr_sigma_{m:+.1f}": 0.0 for m in CR_MASSES} # noise-free images: no bound
    labels = torch.zeros(n, dtype=torch.long)
    params, extra = sample_params(config, labels, make_generator(0))
    def image(log_mass: float) -> torch.Tensor: # noise-free (n, H, W) [counts/s]
        p = params | {TARGET: torch.full((n,), log_mass, dtype=torch.float64)}
        p["vortex_half_length"] = config.vortex.length_scale * 10.0 ** (-22.0 - p[TARGET])
        return render_images(config, p, extra, labels, None, torch.float64)[:, 0]
    t, rms = (params[k][:, None, None] for k in ("exposure_time", "background_rms"))
    out = {}
    for m in CR_MASSES:
        variance = rms ** 2 + image(m).clamp_min(0) / t # the noise model: background and Poisson
        derivative = (image(m + step) - image(m - step)) / (2 * step)
        out[f"cr_sigma_{m:+.1f}"] = round(float((derivative ** 2 / variance).sum((1, 2)).rsqrt().median()), 4)
    return out


def run_dir(work: Path, scale: str, dataset: str, model_kwargs: dict, threads: int, train_images: int, budget_minutes: float,
            clock: str, bin_factor: int = 1) -> Path:
    "A run's directory: work/runs/SCALE/DATASET/resnet18-ARGUMENTS-threadsN-trainN-BUDGETmin-CLOCK[-binF] (one per setting)."
    return (work / "runs" / scale / dataset /
            (f"{run_name(MODEL, model_kwargs)}-threads{threads}-train{train_images}-{budget_minutes:g}min-{clock}"
             + (f"-bin{bin_factor}" if bin_factor > 1 else "")))


def run_one(dataset: str, scale: str, s: Scale, work: Path, seed: int, budget_minutes: float, clock: str, device: torch.device,
            model_kwargs: dict, npe: bool, command: str, bin_factor: int = 1) -> dict:
    "Train, predict and score the regressor of `dataset` on pixels binned by `bin_factor`; returns the table's row (row.json)."
    run = run_dir(work, scale, dataset, model_kwargs, torch.get_num_threads(), s.n_train[DATASETS[dataset]], budget_minutes,
                  clock, bin_factor)
    if (run / "row.json").exists():
        row = json.loads((run / "row.json").read_text())
        if (row["npe_mae"] is not None or not npe) and "cr_sigma_-23.0" in row: return row
    path, flow_path = dataset_files(dataset, scale, s, work, seed, device, npe)
    info = read_info(path)
    if not (run / "row.json").exists():
        budget_s = 60 * budget_minutes
        preprocess = {"name": "standardize"} | ({"bin": bin_factor} if bin_factor > 1 else {})
        config = TrainConfig(task="regression", batch_size=s.batch_size, lr=2e-3, preprocess=preprocess,
                             augment={"dihedral": True}, seed=seed, device=str(device), progress=False)
        epochs, step_rate = planned_epochs(MODEL, model_kwargs, path, s, budget_s, device, clock, config, [TARGET])
        config = replace(config, epochs=epochs)
        load_before, stopped = load(), False
        start, cpu_start = time.perf_counter(), time.process_time()
        try: fit_h5(path, MODEL, run, config, model_kwargs, targets=[TARGET], fractions=DEFAULT_FRACTIONS,
                    callback=Budget(budget_s, CLOCKS[clock]))
        except BudgetReached: stopped = True
        train_s, train_cpu_s = time.perf_counter() - start, (time.process_time() - cpu_start) / torch.get_num_threads()
        net, meta = load_checkpoint(run / "best.pt", device)
        rows = np.sort(meta["test_indices"].numpy())
        images, truth = read_rows(path, rows)
        estimate = predict(net, images, meta, batch_size=256, device=device)[:, 0].double().cpu().numpy()
        row = dict(dataset=dataset, model=MODEL, params=count_parameters(net), model_kwargs=json.dumps(model_kwargs),
                   image_shape="x".join(map(str, info.image_shape)), bin=bin_factor, pixel_scale=info.config["simulation"]["pixel_scale"],
                   vortex_mass=info.config["simulation"]["vortex"]["mass"], train_images=round(info.n * DEFAULT_FRACTIONS[0]),
                   test_images=len(rows), epochs=len(read_history(run / "history.csv")["epoch"]), planned_epochs=epochs,
                   budget_min=budget_minutes, budget_clock=clock, stopped_by_budget=stopped,
                   train_min=round(train_s / 60, 2), train_cpu_min_per_thread=round(train_cpu_s / 60, 2),
                   train_img_s=round(step_rate, 1), **{k: round(v, 4) for k, v in scores(truth, estimate).items()},
                   prior_mae=round(float(np.abs(truth - (LOW + HIGH) / 2).mean()), 4), deeplense_mae=DEEPLENSE_MAE[DATASETS[dataset]],
                   npe_mae=None, coverage68=None, coverage95=None, npe_fit_cpu_min_per_thread=None, flow_images=None,
                   data_seed=seed, train_seed=seed, load_before=load_before, load_after=load(),
                   threads=torch.get_num_threads(), command=command,
                   finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        np.savez(run / "test_predictions.npz", rows=rows, truth=truth, estimate=estimate)
    if "cr_sigma_-23.0" not in row: row |= cramer_rao(dataset, s)
    if npe and row["npe_mae"] is None:
        saved = dict(np.load(run / "test_predictions.npz"))
        images, truth = read_rows(path, saved["rows"])
        extra = npe_scores(run / "best.pt", flow_path, images, truth, s.n_samples, seed, device)
        np.savez(run / "test_predictions.npz", **saved, npe_median=extra.pop("npe_median"))
        row |= {k: round(v, 4) for k, v in extra.items()} | dict(flow_images=s.n_flow)
    (run / "row.json").write_text(json.dumps(row, indent=1))
    return row


COLUMNS = { # column -> (Markdown header, format)
    "dataset": ("data set", "{}"), "image_shape": ("image", "{}"), "vortex_mass": ("vortex [Msun]", "{:.0e}"),
    "bin": ("binned by", "{}"), "model": ("network", "{}"), "model_kwargs": ("arguments", "{}"), "params": ("parameters", "{:,}"),
    "train_images": ("training images", "{:,}"), "test_images": ("test images", "{:,}"),
    "budget_min": ("budget [min]", "{:g}"), "budget_clock": ("budget clock", "{}"), "epochs": ("epochs", "{}"),
    "train_min": ("training [min]", "{:.1f}"), "train_cpu_min_per_thread": ("CPU [min/thread]", "{:.1f}"),
    "mae": ("MAE [dex]", "{:.3f}"), "rmse": ("RMSE [dex]", "{:.3f}"), "r": ("r", "{:.3f}"),
    "mae_light": ("MAE, m_a < 1e-23", "{:.3f}"), "mae_heavy": ("MAE, m_a > 1e-23", "{:.3f}"),
    "prior_mae": ("no-information MAE", "{:.3f}"), "deeplense_mae": ("DeepLense MAE (their data)", "{:.2f}"),
    "npe_mae": ("NPE median MAE", "{:.3f}"), "coverage68": ("coverage 68%", "{:.2f}"),
    "coverage95": ("coverage 95%", "{:.2f}"),
    **{f"cr_sigma_{m:+.1f}": (f"Cramer-Rao bound at {m:g} [dex]", "{:.3f}") for m in CR_MASSES},
    "load_before": ("load before", "{}"), "load_after": ("load after", "{}")}

NOTES = """\
- **No information** is the MAE of always answering the prior's centre, log10 m_a = -23: 0.5 dex in expectation on
  a 2-dex uniform prior (the figure above is on these test rows). A regressor is worth something only below it.
- **DeepLense's figures are on their own data sets**, made by their simulator (DeepLenseSim, lenstronomy), which
  differs from ours in ways that matter here: their Model II images are noise-free (`image + image`), Model I's shot
  noise is applied twice, Model III never sets its HST instrument, and their Einstein radii come from luminosity
  distances (1e12 Msun gives 1.28" instead of 1.66"). Their vortex is their own mass model; ours is a uniform line
  mass of half-length 0.03" x (1e-22 eV / m_a) through the host centre. The comparison is of pipelines on similar
  tasks, not on the same images.
- **`NAME_deeplensesim` rows** are the presets' variants that simulate as DeepLenseSim made DeepLense's data
  (`deeplense.simulate.DEEPLENSESIM_PRESETS`: Einstein radii from luminosity distances as its `mass_to_radius`, host
  1.28" instead of 1.66" and the vortex alike, no noise on Models II and III, Model I's Poisson variance doubled),
  with the same network, budget and seeds: the comparison with DeepLense's figures on images made like theirs. Rows
  whose vortex mass is 1.778e10 (2e+10 in the table) were simulated before those presets, with overrides of the presets to the same effect
  (host theta_E 1.2815" fixed, the vortex's mass scaled by (1.28 / 1.66)^2: the same Einstein radii to 1e-4").
  Their Model III instrument is not in their published simulator (`set_instrument('hst')` does nothing there); these
  rows keep our HST preset's pixel and PSF. Noise-free images have no Cramer-Rao bound (0 in the table).
- **Binned rows** (`binned by` above 1, `--bin`): the network sees the means of blocks of pixels
  (`deeplense.preprocess.bin_pixels`, kept in the checkpoint's preprocessing spec, so the posterior and `predict` bin
  alike), 4x fewer pixels per step at 2; the simulated images, the test rows and the Cramer-Rao columns are the
  native ones.
- Only the vortex's length carries m_a: at m_a = 1e-22 eV its half-length is 0.03", below a pixel of
  every preset (0.05", 0.101", 0.08"), and there it acts as a point mass at the host's centre whatever m_a is; the
  half-length reaches a pixel at m_a of about 6e-23 (Model I), 3e-23 (Model II) and 4e-23 eV (Model III). The columns
  m_a < 1e-23 and m_a > 1e-23 split the test lenses at the prior's centre.
- The Cramer-Rao columns say how much a noisy image can tell about log10 m_a: the bound 1 / sqrt(Fisher information)
  on its standard deviation, with every other parameter (source position, vortex angle, exposure) known, from
  noise-free images at log10 m_a +- 0.05 and the presets' noise model (background and Poisson), median over 64
  lenses. It holds under those assumptions only (source position, vortex angle and exposure known, the host fixed
  as the presets fix it) and bounds unbiased estimators only: the test images leave the nuisance parameters unknown,
  which can only raise it, and a biased estimator (a regressor pulled towards the prior's centre) can go below it
  where the images say little. Above the prior's 2-dex width the images say little about log10 m_a.
- NPE: sbi's neural spline flow on the frozen regressor's output, fitted on a fresh simulated set (`flow_images` in
  the CSV) that the regressor never saw; coverage is the fraction of test lenses whose central 68% / 95% credible
  interval contains the truth (calibrated: 0.68 / 0.95). It is a binomial fraction: one standard error is
  sqrt(p (1 - p) / n), 0.012 / 0.006 on 1,500 test lenses, 0.008 / 0.004 on 3,750 and 0.005 / 0.003 on 7,500 (not
  0.02 / 0.01 as an earlier version of this note said). At 95% six of the ten rows measured (these and
  regression_model_i*/) are 1.9-2.8 standard errors low (0.934-0.944): the NPE tails are slightly overconfident.
  A single widening (`fit_widening`) cannot mend that shape (cores slightly wide, tails light); recalibrated
  credibility levels (`fit_levels`, deeplense.inference) fitted on a separate calibration set bring 68% and 95%
  within two standard errors on a fresh test set (measured in benchmarks/results/inference/, not on these rows).
"""


def write_table(rows: list, out: Path, scale: str, env: dict, note: str | None):
    "regression_{scale}.csv (every field), regression_{scale}.md (the main columns and notes); the layout of results.py."
    s = SCALES[scale]
    method = (hardware_sentence(env) + f" Each data set is the preset's axion class at its native resolution, "
              f"log10 m_a uniform on [-24, -22]. A ResNet-18 regressor trains for "
              f"its budget (epochs planned from a one-epoch trial of the training pipeline; on the `cpu` clock the budget is "
              f"CPU time per thread), batch {s.batch_size}, one-cycle AdamW (peak learning rate 2e-3) on the mean "
              f"squared error of the standardised target, per-image standardisation (of the block means of the `binned by` "
              f"column), random dihedral augmentation; "
              f"the checkpoint of the lowest validation loss is scored; data and training seed {rows[0]['data_seed']} "
              f"(flow set: seed {rows[0]['data_seed'] + 1}); split 80/10/10; scores on the held-out test rows. Load "
              f"averages (1/5/15 min) before and after each training run are in the table.")
    write_tables(rows, out, f"regression_{scale}", f"Axion-mass regression, `{scale}` scale", note, method,
                         COLUMNS, NOTES)


def plot_predictions(rows: list, work: Path, out: Path, scale: str):
    "regression_{scale}.png: predicted against true log10 m_a on the test rows, one panel per data set, three a row."
    from matplotlib.figure import Figure # no pyplot: drawing must not switch the backend of a notebook that runs this
    columns = min(len(rows), 3)
    fig = Figure(figsize=(3.6 * columns, 3.7 * -(-len(rows) // columns)))
    axes = fig.subplots(-(-len(rows) // columns), columns, squeeze=False)
    for ax in axes.flat[len(rows):]: ax.set_visible(False)
    for ax, r in zip(axes.flat, rows):
        p = np.load(run_dir(work, scale, r["dataset"], json.loads(r["model_kwargs"]), r["threads"], r["train_images"],
                         r["budget_min"], r["budget_clock"], r["bin"]) / "test_predictions.npz")
        ax.plot(p["truth"], p["estimate"], ".", ms=2, alpha=0.4, label="regressor")
        edges = np.linspace(LOW, HIGH, 11)
        which = np.digitize(p["truth"], edges[1:-1])
        centres = (edges[1:] + edges[:-1]) / 2
        ax.plot(centres, [np.median(p["estimate"][which == i]) if (which == i).any() else np.nan for i in range(10)],
                "o-", color="tab:red", ms=3, label="median per bin")
        ax.plot([LOW, HIGH], [LOW, HIGH], "k--", lw=1)
        binned = f", binned by {r['bin']}" if r["bin"] > 1 else ""
        ax.axhline((LOW + HIGH) / 2, color="grey", lw=0.8, ls=":", label="no information")
        ax.set(xlim=(LOW - 0.1, HIGH + 0.1), ylim=(LOW - 0.3, HIGH + 0.3), aspect="equal", xlabel="true log10 m_a [eV]",
               title=f"{r['dataset']} ({r['image_shape']}{binned})\n"
                     f"{r['train_images']:,} training images, {r['params'] / 1e6:.2f} M parameters\n"
                     f"MAE {r['mae']:.3f} dex (no information {r['prior_mae']:.2f})\n"
                     f"DeepLense, their data: {r['deeplense_mae']:.2f}")
        ax.title.set_fontsize(8)
    axes[0][0].set_ylabel("predicted log10 m_a [eV]")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / f"regression_{scale}.png", dpi=110)


def finished_rows(work: Path, scale: str) -> list:
    "The rows of every finished run of `scale` in `work` (this and earlier invocations), by data set."
    rows = [{"bin": 1} | json.loads(p.read_text()) for p in (work / "runs" / scale).glob("*/*/row.json")] # older rows: unbinned
    return sorted(rows, key=lambda r: (list(DATASETS).index(r["dataset"]), r["params"], r["threads"], r["train_images"],
                                       r["budget_min"], r["bin"]))


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=SCALES, required=True)
    p.add_argument("--datasets", nargs="+", default=list(DEEPLENSE_MAE), choices=DATASETS,
                   help="data sets (default: the three presets; NAME_deeplensesim: as DeepLenseSim made them)")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="training time per data set (default: the scale's, which depends on the data set)")
    p.add_argument("--width", type=int, default=None, help="ResNet-18 width (default: the scale's)")
    p.add_argument("--train-images", type=int, default=None,
                   help="training images of every data set (default: the scale's, which depends on the data set)")
    p.add_argument("--bin", type=int, default=1, help="average blocks of BIN x BIN pixels before the network (default 1: none)")
    p.add_argument("--no-npe", action="store_true", help="skip the posterior (flow) on top of each regressor")
    add_run_arguments(p, "regression")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device, s = get_device(a.device), SCALES[a.scale]
    if a.train_images: s = replace(s, n_train=dict.fromkeys(s.n_train, a.train_images))
    kwargs = s.model_kwargs | ({"width": a.width} if a.width else {})
    env = hardware(device)
    print(f"{a.scale} scale on {env['cpu']} ({env['cores']} cores, {env['torch_threads']} threads), {device}; "
          f"load {load()}", flush=True)
    command = command_line("regression", argv)
    rows = []
    for dataset in a.datasets:
        budget = a.budget_minutes if a.budget_minutes is not None else s.budget_minutes[DATASETS[dataset]]
        row = run_one(dataset, a.scale, s, a.work, a.seed, budget, a.budget_clock, device, kwargs, not a.no_npe, command,
                      a.bin)
        rows.append(row)
        print(f"{dataset:<10}{row['params']:>9,} params {row['train_images']:>7,} images {row['epochs']:>3} epochs "
              f"{row['train_min']:>6.2f} min  MAE {row['mae']:.3f} dex (no information {row['prior_mae']:.3f}, "
              f"DeepLense {row['deeplense_mae']:.2f})  r {row['r']:.3f}"
              + (f"  NPE MAE {row['npe_mae']:.3f} coverage {row['coverage68']:.2f}/{row['coverage95']:.2f}"
                 if row["npe_mae"] is not None else "") + f"  load {row['load_before']} -> {row['load_after']}", flush=True)
    done = finished_rows(a.work, a.scale)
    write_table(done, a.out, a.scale, env, a.note)
    plot_predictions(done, a.work, a.out, a.scale)
    return rows


if __name__ == "__main__":
    main()

"""Calibration of DeepLense's inference, measured at a scale the test mode of nbs/10_inference.ipynb cannot reach.

Three parts, each writable on its own (run them side by side as separate processes, one torch thread each):

- `npe`: an NPE posterior for log10 m_a and the source position (`train_posterior`), its coverage on fresh test
  lenses before and after a widening (`fit_widening`) fitted on separate calibration lenses, with
  binomial standard errors; then the axion mass shared by a population: coverage of the synthetic-likelihood
  interval (`population_log_posterior`) over repeated populations, each with its own true mass drawn from the prior.
- `abundance`: the same population check for the mean subhalo abundance `shmf_norm` of CDM lenses.
- `bayes`: a CDM-vs-axion classifier, temperature-scaled on a validation set, and the distribution of ln B
  (axion against CDM) under each class, for single lenses and for samples of 10 lenses of one class; and the coverage
  of the axion fraction's interval (`fraction_log_likelihood`) over mock samples drawn from the test lenses.

    python benchmarks/inference_calibration.py --scale cpu --part npe --out benchmarks/results/inference --set n_sims=8000 epochs=6
    python benchmarks/inference_calibration.py --scale cpu --part abundance --out benchmarks/results/inference
    python benchmarks/inference_calibration.py --scale cpu --part bayes --out benchmarks/results/inference
    python benchmarks/inference_calibration.py --scale cpu --report --out benchmarks/results/inference

Each part writes PART_SCALE.json (every number) and PART_SCALE.png; `--report` writes inference_SCALE.md from the
JSON files present. Imports only deeplense, the standard library, numpy and torch.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from deeplense.cli import FullNameParser
from deeplense.core import make_generator
from deeplense.inference import (bayes_factor_reliability, binomial_standard_error, fraction_log_likelihood, grid_posterior, grid_rank, calibrated_probabilities,
                                 class_log_likelihoods, expected_coverage, fit_levels, fit_temperature, fit_widening,
                                 plot_bayes_factors, plot_coverage, population_ranks, posterior_ranks, train_posterior,
                                 widen_samples)
from deeplense.metrics import bootstrap, roc_auc
from deeplense.models import build_model
from deeplense.preprocess import make_preprocess
from deeplense.simulate import preset, simulate_batch
from deeplense.train import TrainConfig, fit


@dataclass
class Scale:
    n_pix: int = 32 # Model II's field of view at half its resolution
    pixel_scale: float = 0.202 # [arcsec]
    vortex_mass: float = 3e11 # [Msun] of the NPE and population parts (ten times the preset's, as the test mode)
    classifier_vortex_mass: float = 3e10 # [Msun] of the Bayes-factor part: the preset's, so that the classes overlap
    n_sims: int = 12_000 # simulations per posterior (half train the CNN, half the flow)
    epochs: int = 8 # CNN epochs
    width: int = 8 # ResNet-18 width
    n_calibration: int = 2000 # lenses the widening is fitted on
    n_test: int = 3000 # lenses the coverage is measured on
    n_samples: int = 500 # posterior samples per lens
    n_values: int = 41 # reference values of the shared parameter (population part)
    n_per_value: int = 300 # reference simulations per value
    n_populations: int = 200 # repeated populations
    population_sizes: tuple = (10, 100) # lenses per population
    n_classifier: int = 12_000 # classifier training images
    n_validation: int = 2000 # temperature fit
    n_bayes_test: int = 4000 # test lenses (half of each class) for ln B
    lenses_per_sample: int = 10 # lenses of one class per sample, for the sample's ln B
    fraction_samples: int = 200 # mock samples for the coverage of the axion fraction's interval
    fraction_sample_size: int = 200 # lenses per mock sample (drawn from the test lenses)


SCALES = {"test": Scale(n_pix=32, n_sims=600, epochs=1, width=4, n_calibration=100, n_test=200, n_samples=100, n_values=11,
                        n_per_value=20, n_populations=12, population_sizes=(5, 20), n_classifier=400, n_validation=100,
                        n_bayes_test=200),
          "cpu": Scale()}
LEVELS = torch.linspace(0, 1, 21)


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def log(message: str):
    "A progress line with the CPU time so far and the load."
    print(f"{datetime.now(timezone.utc):%H:%M:%S} cpu {time.process_time() / 60:.1f} min, load {load()}: {message}", flush=True)


def axion_config(s: Scale, mass: float, more: dict | None = None):
    return preset("model_ii", {"n_pix": s.n_pix, "pixel_scale": s.pixel_scale, "classes": ["axion"], "vortex.mass": mass} | (more or {}))


def cdm_config(s: Scale, more: dict | None = None):
    return preset("model_ii", {"n_pix": s.n_pix, "pixel_scale": s.pixel_scale, "classes": ["cdm"], "subhalos.m_min": 1e8} | (more or {}))


def simulate_theta(config, n: int, seed: int, names: list) -> tuple:
    images, _, params = simulate_batch(config, n, make_generator(seed))
    return images, torch.stack([params[k] for k in names], 1).float()


def coverage_summary(ranks: torch.Tensor, n: int, level_map: dict | None = None) -> dict:
    "Coverage at LEVELS and at 68 / 95% (of the recalibrated levels when given), with the binomial standard error at the nominal level."
    level_map = level_map or {}
    at = expected_coverage(ranks, level_map.get("at", torch.tensor([0.68, 0.95])))
    return dict(curve=expected_coverage(ranks, level_map.get("curve", LEVELS)).T.tolist(), c68=at[0].tolist(), c95=at[1].tolist(), n=n,
                se68=binomial_standard_error(0.68, n), se95=binomial_standard_error(0.95, n))


def population_check(posterior, s: Scale, config_at, values: torch.Tensor, seed: int) -> dict:
    "Coverage of the population interval over s.n_populations populations, their true values drawn uniformly."
    t0 = time.process_time()
    sims = torch.stack([posterior.summaries(simulate_theta(config_at(v.item()), s.n_per_value, seed + i, posterior.param_names)[0])
                        for i, v in enumerate(values)]).cpu()
    g = torch.Generator().manual_seed(seed)
    truths = values[0] + (values[-1] - values[0]) * torch.rand(s.n_populations, generator=g, dtype=torch.float64)
    pops = torch.stack([posterior.summaries(simulate_theta(config_at(t.item()), max(s.population_sizes), seed + 10_000 + j,
                                                           posterior.param_names)[0]) for j, t in enumerate(truths)]).cpu()
    log("population summaries")
    grid = torch.linspace(values[0].item(), values[-1].item(), 801, dtype=torch.float64)
    out = {}
    for n in s.population_sizes:
        ranks = population_ranks(pops[:, :n], truths, sims, values.to(torch.float64), grid)
        out[str(n)] = coverage_summary(ranks, s.n_populations)
    return dict(sizes=out, n_values=len(values), n_per_value=s.n_per_value, cpu_min=(time.process_time() - t0) / 60)


def plot_population_coverage(ax, result: dict, s: Scale, name: str):
    "Coverage of the population intervals of the parameter `name` shared by N lenses, one curve per N."
    pop = result["population"]["sizes"]
    plot_coverage(LEVELS, torch.tensor([pop[str(n)]["curve"][0] for n in s.population_sizes]).T,
                  [f"N = {n} lenses" for n in s.population_sizes], ax, n=s.n_populations)
    ax.set_title(f"{name} shared by N lenses: {s.n_populations} populations", fontsize=9)


def part_npe(s: Scale, out: Path, scale: str) -> dict:
    names, low, high = ["log10_axion_mass", "source_x", "source_y"], [-24.0, -0.35, -0.35], [-22.0, 0.35, 0.35]
    config = axion_config(s, s.vortex_mass)
    t0, c0 = time.time(), time.process_time()
    images, theta = simulate_theta(config, s.n_sims, 0, names)
    post, history = train_posterior(images, theta, names, low, high, model_kwargs={"width": s.width},
                                    config=TrainConfig(task="regression", epochs=s.epochs, lr=3e-3, progress=False))
    train_min = (time.process_time() - c0) / 60
    log("trained")
    cal_images, cal_theta = simulate_theta(config, s.n_calibration, 1, names)
    test_images, test_theta = simulate_theta(config, s.n_test, 2, names)
    cal_samples, test_samples = post.sample(cal_images, s.n_samples), post.sample(test_images, s.n_samples)
    log("sampled")
    factor = fit_widening(cal_samples, cal_theta)
    cal_ranks = posterior_ranks(cal_samples, cal_theta)
    level_map = dict(curve=fit_levels(cal_ranks, LEVELS), at=fit_levels(cal_ranks, torch.tensor([0.68, 0.95])))
    raw, widened = posterior_ranks(test_samples, test_theta), posterior_ranks(widen_samples(test_samples, factor), test_theta)
    median = test_samples.median(0).values
    mae = lambda m, t: (m[:, 0] - t[:, 0]).abs().mean()
    lo, hi = bootstrap(mae, median, test_theta)[1:3]
    result = dict(part="npe", scale=scale, names=names, scale_params=asdict(s), train_cpu_min=train_min,
                  flow_images=s.n_sims - s.n_sims // 2, factor=factor.tolist(),
                  calibration_raw=coverage_summary(posterior_ranks(cal_samples, cal_theta), s.n_calibration),
                  test_raw=coverage_summary(raw, s.n_test), test_widened=coverage_summary(widened, s.n_test),
                  test_recalibrated=coverage_summary(raw, s.n_test, level_map), level_map=level_map["at"].T.tolist(),
                  mae=mae(median, test_theta).item(), mae_interval=[lo.item(), hi.item()],
                  prior_mae=(test_theta[:, 0] + 23).abs().mean().item(), levels=LEVELS.tolist())
    values = torch.linspace(-24, -22, s.n_values)
    result["population"] = population_check(post, s, lambda v: axion_config(s, s.vortex_mass, {"vortex.axion_mass": 10 ** v}), values, 100)
    result["wall_min"], result["load_after"] = (time.time() - t0) / 60, load()
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6), layout="constrained")
    for ax, key, title in ((axes[0], "test_raw", "NPE as trained"), (axes[1], "test_widened", f"widened by {', '.join(f'{f:.2f}' for f in factor.tolist())}"),
                           (axes[3], "test_recalibrated", "recalibrated levels")):
        plot_coverage(LEVELS, torch.tensor(result[key]["curve"]).T, names, ax, n=s.n_test)
        ax.set_title(f"{title}: {s.n_test} test lenses", fontsize=9)
    plot_population_coverage(axes[2], result, s, "log10 m_a")
    fig.savefig(out / f"npe_{scale}.png", dpi=100)
    plt.close(fig)
    return result


def part_abundance(s: Scale, out: Path, scale: str) -> dict:
    names, low, high = ["shmf_norm", "source_x", "source_y"], [1.0, -0.35, -0.35], [40.0, 0.35, 0.35]
    t0, c0 = time.time(), time.process_time()
    images, theta = simulate_theta(cdm_config(s, {"subhalos.mean": {"uniform": [1.0, 40.0]}}), s.n_sims, 3, names)
    post, _ = train_posterior(images, theta, names, low, high, model_kwargs={"width": s.width},
                              config=TrainConfig(task="regression", epochs=s.epochs, lr=3e-3, progress=False))
    train_min = (time.process_time() - c0) / 60
    log("trained")
    test_images, test_theta = simulate_theta(cdm_config(s, {"subhalos.mean": {"uniform": [1.0, 40.0]}}), s.n_test, 4, names)
    test_samples = post.sample(test_images, s.n_samples)
    r = torch.corrcoef(torch.stack([test_samples.mean(0)[:, 0], test_theta[:, 0]]))[0, 1].item()
    result = dict(part="abundance", scale=scale, names=names, scale_params=asdict(s), train_cpu_min=train_min, r=r,
                  test_raw=coverage_summary(posterior_ranks(test_samples, test_theta), s.n_test), levels=LEVELS.tolist())
    values = torch.linspace(1, 40, s.n_values)
    result["population"] = population_check(post, s, lambda v: cdm_config(s, {"subhalos.mean": v}), values, 200)
    result["wall_min"], result["load_after"] = (time.time() - t0) / 60, load()
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6), layout="constrained")
    plot_coverage(LEVELS, torch.tensor(result["test_raw"]["curve"]).T, names, axes[0], n=s.n_test)
    axes[0].set_title(f"NPE, {s.n_test} test lenses", fontsize=9)
    plot_population_coverage(axes[1], result, s, "shmf_norm")
    fig.savefig(out / f"abundance_{scale}.png", dpi=100)
    plt.close(fig)
    return result


def part_bayes(s: Scale, out: Path, scale: str) -> dict:
    config = preset("model_ii", {"n_pix": s.n_pix, "pixel_scale": s.pixel_scale, "classes": ["cdm", "axion"],
                                 "vortex.mass": s.classifier_vortex_mass})
    standardize = make_preprocess({"name": "standardize"})
    t0, c0 = time.time(), time.process_time()
    images, labels, _ = simulate_batch(config, s.n_classifier, make_generator(5))
    val_images, val_labels, _ = simulate_batch(config, s.n_validation, make_generator(6))
    torch.manual_seed(0)
    net = build_model("resnet18", 1, 1, width=s.width)
    fit(net, TensorDataset(standardize(images), labels), None, TrainConfig(task="binary", epochs=s.epochs, lr=3e-3, progress=False))
    net.eval()
    logits_of = lambda x: torch.cat([net(standardize(x[i:i + 512])) for i in range(0, len(x), 512)])
    with torch.no_grad(): val_logits = logits_of(val_images)
    T = fit_temperature(val_logits, val_labels)
    log("trained")
    half = s.n_bayes_test // 2
    test_labels = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(half, dtype=torch.long)])
    test_images, _, _ = simulate_batch(config, 2 * half, make_generator(7), labels=test_labels)
    with torch.no_grad(): logits = logits_of(test_images).reshape(-1)
    ll = class_log_likelihoods(calibrated_probabilities(logits, T).double(), torch.tensor([0.5, 0.5], dtype=torch.float64))
    log_b = ll[:, 1] - ll[:, 0] # per lens, axion against CDM
    is_axion = test_labels == 1
    k = s.lenses_per_sample # samples of k lenses of one class, disjoint
    sample_b = torch.cat([log_b[:half].reshape(-1, k).sum(1), log_b[half:].reshape(-1, k).sum(1)])
    sample_axion = torch.cat([torch.zeros(half // k, dtype=torch.bool), torch.ones(half // k, dtype=torch.bool)])
    def describe(b, pos, edges):
        r = {key: v.tolist() for key, v in bayes_factor_reliability(b, pos, edges).items()}
        return dict(n=len(b), frac_positive_under_axion=(b[pos] > 0).double().mean().item(),
                    frac_positive_under_cdm=(b[~pos] > 0).double().mean().item(),
                    median_under_axion=b[pos].median().item(), median_under_cdm=b[~pos].median().item(), bins=r,
                    edges=edges.tolist())
    auc = roc_auc(is_axion.numpy(), logits.double().numpy())
    lo, hi = bootstrap(lambda y, z: roc_auc(y.numpy(), z.numpy()), is_axion, logits.double())[1:3]
    single_edges, sample_edges = torch.linspace(-6, 6, 13, dtype=torch.float64), torch.linspace(-40, 40, 17, dtype=torch.float64)
    # the fraction of axion lenses: mock samples with f drawn uniformly, their lenses drawn from the test lenses by class
    g = torch.Generator().manual_seed(11)
    f_true = torch.rand(s.fraction_samples, generator=g, dtype=torch.float64)
    f_grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    f_ranks = []
    for f in f_true:
        axion = torch.rand(s.fraction_sample_size, generator=g, dtype=torch.float64) < f
        rows = torch.where(axion, half + torch.randint(half, axion.shape, generator=g), torch.randint(half, axion.shape, generator=g))
        f_ranks.append(grid_rank(f_grid, grid_posterior(fraction_log_likelihood(ll[rows], f_grid, 1, 0)), f))
    fraction = coverage_summary(torch.stack(f_ranks)[:, None], s.fraction_samples)
    result = dict(part="bayes", scale=scale, scale_params=asdict(s), temperature=T, auc=auc, auc_interval=[lo.item(), hi.item()],
                  fraction=fraction,
                  single=describe(log_b, is_axion, single_edges), samples=describe(sample_b, sample_axion, sample_edges),
                  cpu_min=(time.process_time() - c0) / 60, wall_min=(time.time() - t0) / 60, load_after=load())
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(10, 8.5), layout="constrained")
    plot_bayes_factors(log_b, is_axion, single_edges, axes[0], ("cdm", "axion"))
    plot_bayes_factors(sample_b, sample_axion, sample_edges, axes[1], ("cdm", "axion"))
    axes[0, 0].set_title(f"one lens: {2 * half} test lenses, AUC {auc:.3f}, T = {T:.2f}", fontsize=9)
    axes[1, 0].set_title(f"samples of {k} lenses of one class: {len(sample_b)} samples", fontsize=9)
    fig.savefig(out / f"bayes_{scale}.png", dpi=100)
    plt.close(fig)
    return result


PARTS = {"npe": part_npe, "abundance": part_abundance, "bayes": part_bayes}


def fmt_cov(c: dict, p: int = 0) -> str:
    return f"{c['c68'][p]:.3f} / {c['c95'][p]:.3f} (s.e. {c['se68']:.3f} / {c['se95']:.3f}, n = {c['n']:,})"


def write_report(out: Path, scale: str) -> Path:
    "inference_SCALE.md from the parts' JSON files present."
    res = {p: json.loads((out / f"{p}_{scale}.json").read_text()) for p in PARTS if (out / f"{p}_{scale}.json").exists()}
    lines = [f"# Inference calibration, `{scale}` scale", "",
             f"Made with `python benchmarks/inference_calibration.py --scale {scale} --part PART` for the parts "
             f"{', '.join(res)}, one process per part, one torch thread each, side by side on a 2-core machine shared "
             f"with other jobs (load after each part below).", ""]
    lines += [f"- {key}: `{r['command']}` (finished {r['finished']}; scale {json.dumps(r['scale_params'])})" for key, r in res.items()]
    lines += ["",
             "Coverage is the fraction of test lenses (or populations) whose central credible interval holds the truth; "
             "its standard error is binomial, sqrt(p (1 - p) / n) at the nominal p.", ""]
    if "npe" in res:
        r = res["npe"]
        lines += ["## Per-lens NPE posterior of log10 m_a (and the source position)", "",
                  f"CNN + flow trained in {r['train_cpu_min']:.1f} CPU-minutes on {r['scale_params']['n_sims']:,} simulations. "
                  f"MAE of the posterior median {r['mae']:.3f} dex (95% bootstrap interval {r['mae_interval'][0]:.3f}-"
                  f"{r['mae_interval'][1]:.3f}; no information {r['prior_mae']:.3f}).", "",
                  "| parameter | widening (fitted on the calibration set) | calibration set, as trained: 68% / 95% | test, as trained | test, widened | levels for 68% / 95% (fitted on the calibration set) | test, recalibrated levels |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {name} | {r['factor'][p]:.3f} | {fmt_cov(r['calibration_raw'], p)} | {fmt_cov(r['test_raw'], p)} | "
                  f"{fmt_cov(r['test_widened'], p)} | {r['level_map'][p][0]:.3f} / {r['level_map'][p][1]:.3f} | "
                  f"{fmt_cov(r['test_recalibrated'], p)} |" for p, name in enumerate(r["names"])]
    for key, name in (("npe", "log10 m_a"), ("abundance", "shmf_norm")):
        if key not in res: continue
        pop = res[key]["population"]
        lines += ["", f"## {name} shared by a population: coverage over repeated populations", "",
                  f"{pop['n_values']} reference values x {pop['n_per_value']} simulations; each population's true value drawn "
                  f"uniformly from the prior; synthetic likelihood of the CNN's summaries ({pop['cpu_min']:.1f} CPU-minutes).", "",
                  "| lenses per population | coverage 68% / 95% |", "|---|---|"]
        lines += [f"| {n} | {fmt_cov(c)} |" for n, c in pop["sizes"].items()]
    if "abundance" in res:
        r = res["abundance"]
        lines += ["", f"Per-lens NPE of shmf_norm: r(posterior mean, truth) = {r['r']:.2f}, coverage {fmt_cov(r['test_raw'])}."]
    if "bayes" in res:
        r = res["bayes"]
        lines += ["", "## ln B of axion against CDM", "",
                  f"Classifier AUC {r['auc']:.3f} (95% bootstrap {r['auc_interval'][0]:.3f}-{r['auc_interval'][1]:.3f}), "
                  f"temperature {r['temperature']:.2f} fitted on {r['scale_params']['n_validation']:,} validation lenses; "
                  f"{r['cpu_min']:.1f} CPU-minutes.", "",
                  "| | n | ln B > 0 under axion | ln B > 0 under CDM | median ln B under axion / CDM |", "|---|---|---|---|---|"]
        for key, label in (("single", "one lens"), ("samples", f"{r['scale_params']['lenses_per_sample']} lenses of one class")):
            d = r[key]
            lines.append(f"| {label} | {d['n']:,} | {d['frac_positive_under_axion']:.3f} | {d['frac_positive_under_cdm']:.3f} | "
                         f"{d['median_under_axion']:.2f} / {d['median_under_cdm']:.2f} |")
        if "fraction" in r:
            lines += ["", f"Axion fraction of {r['scale_params']['fraction_sample_size']} lenses (f drawn uniformly, "
                      f"{r['scale_params']['fraction_samples']} mock samples from the test lenses): coverage {fmt_cov(r['fraction'])}."]
        lines += ["", "Reliability (bins of ln B: mean sigmoid(ln B) against the fraction of axion, with its binomial s.e.):", ""]
        for key in ("single", "samples"):
            b = r[key]["bins"]
            lines.append(f"- {key}: " + "; ".join(f"{i:.2f} vs {o:.2f} +- {e:.2f} (n {int(c)})" for i, o, e, c in
                                                  zip(b["implied"], b["observed"], b["se"], b["count"]) if c > 0))
    for key in res: lines.append(f"\nPart {key}: {res[key]['wall_min']:.1f} wall-minutes, load after {res[key]['load_after']}.")
    lines.append(f"\nHardware: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}.")
    lines += ["", "Figures: PART_SCALE.png beside this file (npe: coverage as trained, widened, recalibrated levels, and the "
              "population intervals of log10 m_a; abundance: the NPE's and the population intervals' coverage; bayes: ln B "
              "under each class and its reliability, for one lens and for samples). The shaded bands are two binomial "
              "standard errors about the diagonal."]
    path = out / f"inference_{scale}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list | None = None) -> dict | Path:
    p = FullNameParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=list(SCALES), default="test")
    p.add_argument("--part", choices=list(PARTS))
    p.add_argument("--report", action="store_true", help="write inference_SCALE.md from the parts' JSON files")
    p.add_argument("--out", default="benchmarks/results/inference")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON", help="change a field of the scale, e.g. n_sims=8000")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.report: return write_report(out, a.scale)
    if not a.part: p.error("give --part or --report")
    torch.set_num_threads(a.threads)
    import matplotlib
    matplotlib.use("Agg")
    scale = SCALES[a.scale]
    for item in a.set:
        field, _, value = item.partition("=")
        if field not in asdict(scale): p.error(f"--set {item}: the scale has no field {field!r} (it has {', '.join(asdict(scale))})")
        scale = replace(scale, **{field: json.loads(value)})
    result = PARTS[a.part](scale, out, a.scale)
    result["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result["command"] = (f"python benchmarks/inference_calibration.py --scale {a.scale} --part {a.part} --out {a.out}"
                         + (f" --set {' '.join(a.set)}" if a.set else ""))
    (out / f"{a.part}_{a.scale}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

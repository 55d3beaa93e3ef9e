"""How lens finders trained on a lens-finding preset score when the test stamps depart from the preset the way real
stamps might: a wider PSF, less depth, another flux calibration, shot noise, more or no masks, more stars, more disk
galaxies, brighter lens galaxies.

The outside check of issue #20 scores networks trained on our simulations on the challenge's real stamps. Until those
are at hand, this says which departures from the preset would cost AUC, and how much: each shift is one override of
the preset (applied to every band where a band field changes), simulated into its own test file with the same seed and
size as the unshifted one, and every network given with `--runs` (folders holding best.pt, e.g. the runs of
benchmarks/lens_finding.py) is scored on each: AUC, TPR0 and TPR10 with 95% bootstrap intervals over the test stamps,
and the change against the unshifted file. Runs that differ only in their seed (`_seedN` in the folder name) form one
group, reported as mean [min, max] over the seeds. All on our emulation of the challenge, not on its stamps.

    python -m benchmarks.lens_finding_shift --preset lens_finding --runs WORK/full/lens_finding/resnet18_w11_seed*
    python -m benchmarks.lens_finding_shift --preset lens_finding --scale test --runs RUN   # seconds: the script's check
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from deeplense.cli import FullNameParser
from deeplense.core import hardware
from deeplense.simconfig import SimulationConfig, preset

from benchmarks.common import HERE, RESULTS, command_line, hardware_sentence, load, simulated_file, write_csv
from benchmarks.lens_finding import TEST_SEED, metrics_row, scores_on


def _per_band(field: str, scale: float) -> Callable:
    "The overrides that multiply `field` (a number or a {'uniform'|'log_uniform': [a, b]} range) of every band by `scale`."
    def overrides(config: SimulationConfig) -> dict:
        out = {}
        for i, band in enumerate(config.to_dict()["bands"]):
            v = band[field]
            out[f"bands.{i}.{field}"] = v * scale if isinstance(v, (int, float)) else {k: [x * scale for x in r] for k, r in v.items()}
        return out
    return overrides


def _shifted_range(field: str, offset: float) -> Callable:
    "The override that moves the {'uniform': [a, b]} range at `field` (a dotted path) by `offset`."
    def overrides(config: SimulationConfig) -> dict:
        node = config.to_dict()
        for part in field.split("."): node = node[part]
        return {field: {k: [x + offset for x in r] for k, r in node.items()}}
    return overrides


SHIFTS = { # name -> (what it stands for, config -> overrides)
    "none": ("the preset itself", lambda c: {}),
    "psf x1.3": ("every band's PSF FWHM range 1.3x wider (worse seeing)", _per_band("psf_fwhm", 1.3)),
    "exposure x0.5": ("half the exposure time: noise 1.4x higher relative to the light (0.38 mag shallower)", _per_band("exposure_time", 0.5)),
    "exposure x2": ("twice the exposure time: noise 1.4x lower relative to the light", _per_band("exposure_time", 2.0)),
    "flux unit x2": ("pixel values twice as large (another flux calibration: light and noise alike)", _per_band("flux_unit", 2.0)),
    "shot noise": ("the sources' Poisson noise added to the background noise", lambda c: {"shot_noise": True}),
    "masks x2": ("masked discs twice as frequent", lambda c: {"mask.mean": 2 * c.mask.mean}),
    "no masks": ("no masked pixels", lambda c: {"mask.mean": 0.0}),
    "stars x3": ("three times as many stars", lambda c: {"survey.stars": 3 * c.survey.stars}),
    "disks 40%": ("galaxies 50% ellipticals, 40% disks, 10% mergers (the preset: 80/10/10)",
                  lambda c: {"survey.kinds": {"elliptical": 0.5, "spiral": 0.4, "merger": 0.1}}),
    "lens light -0.5 mag": ("lens galaxies 0.5 magnitude brighter", _shifted_range("lens_light.magnitude", -0.5)),
}


def run_groups(runs: list) -> dict:
    "Run folders grouped by their name without `_seedN`: {group: [(seed, folder), ...]}."
    groups = {}
    for run in map(Path, runs):
        if not (run / "best.pt").exists(): raise FileNotFoundError(f"no best.pt in {run}")
        seed = re.search(r"_seed(\d+)", run.name)
        groups.setdefault(re.sub(r"_seed\d+", "", run.name), []).append((int(seed.group(1)) if seed else None, run))
    return groups


def summary(rows: list, shifts: list, groups: dict) -> list:
    "Markdown lines: one row per shift, per group the mean AUC [min, max] over seeds and its change against `none`."
    values = lambda key, shift, group: np.array([r[key] for r in rows if r["shift"] == shift and r["group"] == group])
    head = ["shift", "what it stands for"] + [f"{g} ({len(runs)} seed{'s' * (len(runs) > 1)}): AUC, change; TPR10" for g, runs in groups.items()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shift in shifts:
        cells = [f"`{shift}`", SHIFTS[shift][0]]
        for g in groups:
            a, base, t = values("auc", shift, g), values("auc", "none", g).mean(), values("tpr10", shift, g)
            cells.append(f"{a.mean():.3f} [{a.min():.3f}, {a.max():.3f}], {a.mean() - base:+.3f}; {t.mean():.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="lens_finding", help="the preset the runs were trained on")
    p.add_argument("--runs", nargs="+", required=True, help="run folders (each with best.pt)")
    p.add_argument("--shifts", nargs="+", choices=list(SHIFTS), default=list(SHIFTS), help="shifts to test (none is always included)")
    p.add_argument("--scale", choices=("full", "test"), default="full", help="test: 64 stamps of 32x32 pixels, the script's check")
    p.add_argument("--n-test", type=int, default=2000, help="test stamps per shift (full scale)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--work", type=Path, default=HERE / "work" / "lens_finding_shift", help="the shifted test files (cached)")
    p.add_argument("--out", type=Path, default=RESULTS / "lens_finding", help="where the table goes")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    shifts = ["none"] + [s for s in args.shifts if s != "none"]
    base = {} if args.scale == "full" else {"n_pix": 32}
    n = args.n_test if args.scale == "full" else 64
    groups, rows, command = run_groups(args.runs), [], command_line("lens_finding_shift", argv)
    for shift in shifts:
        config = preset(args.preset, base)
        config = preset(args.preset, base | SHIFTS[shift][1](config))
        path = simulated_file(config, n, args.work, f"{args.preset}-{args.scale}-{shift.replace(' ', '_')}", TEST_SEED, progress=False)
        for group, runs in groups.items():
            for seed, run in runs:
                before = load()
                row = dict(preset=args.preset, shift=shift, group=group, seed=seed, run=str(run), n_test=n)
                row |= metrics_row(*scores_on(run / "best.pt", path))
                rows.append(row | dict(load_before=before, load_after=load(), command=command,
                                       finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
                print(f"{shift:<20} {group:<40} seed {seed}: AUC {row['auc']:.4f} [{row['auc_low']:.4f}, {row['auc_high']:.4f}] "
                      f"TPR10 {row['tpr10']:.3f}", flush=True)
    stem = f"lens_finding_shift_{args.preset}" + ("" if args.scale == "full" else "_test")
    write_csv(rows, args.out / f"{stem}.csv")
    loads = sorted({r["load_before"] for r in rows} | {r["load_after"] for r in rows})
    text = [f"# Lens finders trained on `{args.preset}`, tested on shifted simulations", "",
            f"Made with `{command}` (finished {rows[-1]['finished']}; load averages {loads[0]} to {loads[-1]}).", "",
            hardware_sentence(hardware(torch.device("cpu"))) + f" Test files: {n:,} stamps each, simulation seed "
            f"{TEST_SEED}, one override of the preset each. Per group: AUC mean [min, max] over the seeds, its "
            "change against the unshifted file (`none`), and the mean TPR10. Every run's AUC, TPR0 and TPR10 with 95% "
            "bootstrap intervals are in the CSV. All on our emulation of the challenge, not on its stamps.", ""]
    (args.out / f"{stem}.md").write_text("\n".join(text + summary(rows, shifts, groups)) + "\n")
    return rows


if __name__ == "__main__":
    main()

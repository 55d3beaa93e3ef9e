"""The lens-finding presets' lenses against the challenge's catalogue: the percentiles (10/25/50/75/90) of the lensed
pixels and of the lensed flux in noise units of simulated lenses, and the random search that fitted the presets'
ranges to the catalogue's (`deeplense.simconfig`, 2026-12-06).

How the committed ranges were found: a search over all six ranges (Einstein radius, source magnitude and source
half-light radius, each [low, high]) on `lens_finding`, rounded, then for `lens_finding_space` a search over its
source magnitudes alone, keeping the ground's Einstein radii and sizes (one population of lenses for both sets).
The misfit is the sum of the squared log-ratios of the ten percentiles. Only the lensed source is rendered, so a
trial of 2,048 lenses takes a few seconds.

    python -m benchmarks.lens_population                                          # the presets against the catalogue
    python -m benchmarks.lens_population --search 200 --preset lens_finding --seed 0
    python -m benchmarks.lens_population --search 100 --preset lens_finding_space --magnitudes-only
"""
from __future__ import annotations

import argparse
import json
import math
import random

import torch

from deeplense.cli import FullNameParser
from deeplense.simconfig import CHALLENGE_CATALOGUE, preset
from deeplense.simulate import lens_visibility_percentiles

STATS = ("lensed_pixels", "lensed_flux_sigma")
RANGES = ("host.theta_E", "source.magnitude", "source.R_sersic") # what the search fits, each as [low, high]
BOX = ((0.2, 0.7), (2.0, 4.0), (21.5, 24.0), (25.0, 27.5), (0.03, 0.2), (0.5, 2.0)) # where the first half of the trials look
STEP = (0.05, 0.3, 0.3, 0.3, 0.02, 0.15) # the second half's Gaussian steps around the best so far


def lens_percentiles(name: str, overrides: dict | None = None, n: int = 2048, seed: int = 1000) -> dict:
    "`lens_visibility_percentiles` of `n` lenses of preset `name` with `overrides` (its percentiles: the catalogue's 10/25/50/75/90)."
    return lens_visibility_percentiles(preset(name, overrides), n, seed)


def misfit(ours: dict, target: dict) -> float:
    "Sum over both statistics' percentiles of the squared log-ratio, ours (at least 1) over the catalogue's."
    return sum(math.log(max(a, 1.0) / b) ** 2 for k in STATS for a, b in zip(ours[k], target[k]))


def as_overrides(v: list) -> dict:
    "Six numbers (theta_E, magnitude and R_sersic, each low and high) as the presets' distributions."
    kinds = ("log_uniform", "uniform", "log_uniform")
    return {path: {kind: [round(v[2 * i], 3), round(v[2 * i + 1], 3)]} for i, (path, kind) in enumerate(zip(RANGES, kinds))}


def search(name: str, n_iter: int, seed: int, n: int, magnitudes_only: bool = False) -> tuple:
    "(misfit, the six numbers) of the best of `n_iter` trials: random in `BOX`, then around the best so far."
    config, rng = preset(name), random.Random(seed)
    spec = lambda path: getattr(getattr(config, path.split(".")[0]), path.split(".")[1]) # e.g. {"uniform": [a, b]}
    start = [x for path in RANGES for x in next(iter(spec(path).values()))] # the preset's own ranges
    free = [2, 3] if magnitudes_only else list(range(6))
    target = CHALLENGE_CATALOGUE[name]
    best = (misfit(lens_percentiles(name, as_overrides(start), n), target), start)
    print(json.dumps(dict(trial=0, ranges=as_overrides(start), misfit=round(best[0], 3))), flush=True)
    for i in range(1, n_iter):
        v = list(best[1])
        for j in free:
            v[j] = rng.uniform(*BOX[j]) if i < n_iter // 2 else best[1][j] + rng.gauss(0, STEP[j])
        if not (0 < v[0] < v[1] and v[2] < v[3] and 0 < v[4] < v[5]): continue
        score = misfit(lens_percentiles(name, as_overrides(v), n), target)
        print(json.dumps(dict(trial=i, ranges=as_overrides(v), misfit=round(score, 3))), flush=True)
        if score < best[0]: best = (score, v)
    return best


def main(argv: list | None = None) -> dict:
    p = FullNameParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(CHALLENGE_CATALOGUE), help="one preset (default: both)")
    p.add_argument("--n", type=int, default=4096, help="simulated lenses per preset (per trial: half of it)")
    p.add_argument("--search", type=int, default=0, metavar="TRIALS", help="fit the preset's ranges by a random search")
    p.add_argument("--magnitudes-only", action="store_true", help="search the source magnitudes alone")
    p.add_argument("--seed", type=int, default=0, help="the search's seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [args.preset] if args.preset else sorted(CHALLENGE_CATALOGUE)
    if args.search:
        if not args.preset: p.error("--search needs --preset")
        score, v = search(args.preset, args.search, args.seed, args.n // 2, args.magnitudes_only)
        print(f"best: misfit {score:.3f}, --set " + " --set ".join(f"'{k}={json.dumps(d)}'" for k, d in as_overrides(v).items()))
        return {"misfit": score, "overrides": as_overrides(v)}
    results = {}
    for name in names:
        ours, target = lens_percentiles(name, n=args.n, seed=5000), CHALLENGE_CATALOGUE[name]
        results[name] = ours | {"misfit": misfit(ours, target)}
        for k in STATS:
            print(f"{name:<19} {k:<18} ours {[round(x) for x in ours[k]]}  catalogue {list(target[k])}")
        print(f"{name:<19} no lensed pixel    ours {ours['none']:.3f}  catalogue {target['none']}; misfit {results[name]['misfit']:.3f}")
    return results


if __name__ == "__main__":
    main()

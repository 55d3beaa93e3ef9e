"""Does a classifier trained on DeepLense's `model_ii` keep its macro AUC on lenstronomy-made images of the same spec?

Issue 20's check ("gap <= 0.02, AUC >= 0.98"), done here before an outside party does it with lenstronomy:

1. `compare`: DeepLense and lenstronomy render the same noise-free images (parameters drawn once by
   `deeplense.simulate.sample_params`, 8 per class), and the script reports their pixel-level agreement (relative
   difference to the peak, flux sums, the amplitude of magnitude 20, the noise level), and how the line-mass
   emulation converges with its number of points.
2. `make`: lenstronomy (SimAPI: its grid, its Gaussian PSF, its magnitude-to-amplitude conversion, its
   `noise_for_model`) renders N images of the `model_ii` spec, read from `deeplense.simulate.preset("model_ii")`,
   with every per-image parameter drawn independently by numpy (not by DeepLense's sampler), into DeepLense's HDF5
   layout (`deeplense.formats.H5Writer`), classes no_sub / cdm / axion. The masses become Einstein radii with
   lenstronomy's `LensCosmo` in DeepLense's cosmology (flat LambdaCDM, H0 70, Omega_m 0.3, Omega_b 0.05). lenstronomy
   has no uniform line-mass profile, so the axion vortex is emulated by `--vortex-points` equal point masses at the
   midpoints of equal pieces of the segment (total mass the vortex's).
3. `fit`, `test`: a ResNet-18 of width 11 (as `benchmarks/results.py --scale cpu`) trains with `fit_h5` on a DeepLense
   `model_ii` file (`--train-images` for training, a quarter of that for validation) for `--epochs` epochs per seed,
   and is scored on a held-out DeepLense `model_ii` file (another seed) and on the lenstronomy file: macro AUC with
   a bootstrap 95% interval (rows resampled per file, `--bootstrap` times), and the gap with its interval.

Besides the spec's file, `--variants` makes lenstronomy files the way an outside party might depart from the spec
(`VARIANTS`: 5x5 supersampling, lenstronomy's default cosmology, a coarser vortex), and `--train-set FIELD=JSON` trains
on a variant of the preset (e.g. a host mass that varies) while the tests stay the same. Steps, files and runs are
cached in `--work`, so the table adds up over invocations (each row keeps its test command).

    python -m benchmarks.lenstronomy_model_ii --threads 1                     # everything, 2 seeds of 12 epochs: ~10 min
    python -m benchmarks.lenstronomy_model_ii --steps compare --threads 1     # the agreement only, a minute

The committed tables (benchmarks/results/lenstronomy_model_ii/, see its README.md) were made with

    V="spec supersampling5 planck18 points50 host_planck18"
    python -m benchmarks.lenstronomy_model_ii --threads 1 --steps compare make fit --seeds 0 1 2 --variants $V
    python -m benchmarks.lenstronomy_model_ii --threads 1 --steps fit --seeds 0 1 --epochs 40
    python -m benchmarks.lenstronomy_model_ii --threads 1 --steps fit --seeds 0 1 --epochs 40 \
        --train-set 'host.mass={"log_uniform": [8e11, 1.25e12]}'
    python -m benchmarks.lenstronomy_model_ii --threads 1 --steps test --seeds 0 1 2 --variants $V
    python -m benchmarks.lenstronomy_model_ii --threads 1 --steps test --seeds 0 1 --epochs 40 --variants $V
    python -m benchmarks.lenstronomy_model_ii --threads 1 --steps test --seeds 0 1 --epochs 40 --variants $V \
        --train-set 'host.mass={"log_uniform": [8e11, 1.25e12]}'
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch

from deeplense.cli import FullNameParser

from benchmarks.common import RESULTS, command_line, load, write_csv
PRESET = "model_ii"
CLASSES = ("no_sub", "cdm", "axion")


# ---------------------------------------------------------------------------------------------------------------
# the spec, read from the preset

def read_spec(config) -> dict:
    "The numbers of a one-band, no-lens-light, no-mask substructure configuration that this lenstronomy emulation uses."
    if len(config.bands) != 1 or config.lens_light is not None or config.mask is not None:
        raise ValueError(f"{config.preset}: the lenstronomy emulation handles one band, no lens light, no mask")
    if list(config.classes) != list(CLASSES) or config.subhalos.mean is not None or config.distances != "angular_diameter":
        raise ValueError(f"{config.preset}: expected classes {CLASSES}, a fixed number of subhalos, angular-diameter distances")
    band, h, s, sub, v = config.bands[0], config.host, config.source, config.subhalos, config.vortex
    if band.background_rms is not None or s.magnitude is None or h.mass is None:
        raise ValueError(f"{config.preset}: expected a sky/zero-point noise model, a source magnitude and a host mass")
    return dict(n_pix=config.n_pix, pixel_scale=config.pixel_scale, supersampling=config.supersampling,
                z_lens=config.z_lens, z_source=config.z_source, noise=config.noise,
                band=dict(psf_fwhm=band.psf_fwhm, exposure_time=band.exposure_time, num_exposures=band.num_exposures,
                          sky_brightness=band.sky_brightness, zero_point=band.zero_point, read_noise=band.read_noise,
                          ccd_gain=band.ccd_gain),
                host={k: getattr(h, k) for k in ("mass", "e1", "e2", "center_x", "center_y", "gamma1", "gamma2")},
                source={k: getattr(s, k) for k in ("magnitude", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")},
                subhalos={k: getattr(sub, k) for k in ("n", "m_min", "m_max", "shmf_slope", "r_min", "r_max")},
                vortex={k: getattr(v, k) for k in ("mass", "axion_mass", "length_scale")})


def np_draw(spec, rng: np.random.Generator) -> float:
    "One draw of a DeepLense spec (a number, or {'uniform'|'log_uniform'|'normal': [a, b]}) with numpy."
    if not isinstance(spec, dict): return float(spec)
    (kind, (a, b)), = spec.items()
    if kind == "uniform": return float(rng.uniform(a, b))
    if kind == "log_uniform": return float(np.exp(rng.uniform(np.log(a), np.log(b))))
    if kind == "normal": return float(rng.normal(a, b))
    raise ValueError(f"unknown distribution {kind!r}")


def cosmology():
    "DeepLense's cosmology (deeplense.lensing.DEFAULT_COSMOLOGY), written out: flat LambdaCDM, H0 70, Om0 0.3, Ob0 0.05."
    from astropy.cosmology import FlatLambdaCDM
    return FlatLambdaCDM(H0=70, Om0=0.3, Ob0=0.05)


def theta_E_of_mass(mass, spec: dict, cosmo=None):
    """Einstein radius [arcsec] of a point mass [Msun] by lenstronomy's LensCosmo: M = pi theta_E^2 Sigma_crit; in
    DeepLense's cosmology, or lenstronomy's default (astropy's, Planck18) when spec["cosmology"] is "lenstronomy_default"."""
    from lenstronomy.Cosmo.lens_cosmo import LensCosmo
    if cosmo is None: cosmo = None if spec.get("cosmology") == "lenstronomy_default" else cosmology()
    lc = LensCosmo(spec["z_lens"], spec["z_source"], cosmo=cosmo)
    return np.sqrt(np.asarray(mass, dtype=np.float64) / (np.pi * lc.sigma_crit_angle))


def draw_image_params(spec: dict, label: int, rng: np.random.Generator) -> dict:
    "One image's parameters, drawn with numpy from the spec (DeepLense's names; per-subhalo arrays; vortex geometry)."
    h, s, sub, v = spec["host"], spec["source"], spec["subhalos"], spec["vortex"]
    p = dict(label=label, host_mass=np_draw(h["mass"], rng))
    p["theta_E"] = float(theta_E_of_mass(p["host_mass"], spec | {"cosmology": spec.get("host_cosmology", spec.get("cosmology"))}))
    for k in ("e1", "e2", "center_x", "center_y"): p[f"host_{k}"] = np_draw(h[k], rng)
    p["gamma1"], p["gamma2"] = np_draw(h["gamma1"], rng), np_draw(h["gamma2"], rng)
    for k in ("R_sersic", "n_sersic", "e1", "e2"): p[f"source_{k}"] = np_draw(s[k], rng)
    p["source_x"], p["source_y"] = np_draw(s["center_x"], rng), np_draw(s["center_y"], rng)
    p["source_magnitude"] = np_draw(s["magnitude"], rng)
    empty = np.zeros(0)
    p.update(subhalo_mass=empty, subhalo_x=empty, subhalo_y=empty)
    if CLASSES[label] == "cdm": # dN/dm ~ m^slope on [m_min, m_max] (inverse CDF), radius and angle uniform
        a = np_draw(sub["shmf_slope"], rng) + 1
        u = rng.uniform(size=sub["n"])
        lo, hi = sub["m_min"], sub["m_max"]
        m = np.exp(np.log(lo) + u * np.log(hi / lo)) if abs(a) < 1e-6 else (lo ** a + u * (hi ** a - lo ** a)) ** (1 / a)
        r, phi = rng.uniform(sub["r_min"], sub["r_max"], sub["n"]), rng.uniform(0, 2 * np.pi, sub["n"])
        p.update(subhalo_mass=m, subhalo_x=p["host_center_x"] + r * np.cos(phi), subhalo_y=p["host_center_y"] + r * np.sin(phi),
                 shmf_slope=a - 1)
    if CLASSES[label] == "axion": # a uniform line mass through the host centre
        p["vortex_mass"] = np_draw(v["mass"], rng)
        m_a = np_draw(v["axion_mass"], rng)
        p["log10_axion_mass"] = float(np.log10(m_a))
        p["vortex_half_length"] = v["length_scale"] * 1e-22 / m_a
        p["vortex_angle"] = float(rng.uniform(0, np.pi))
    p["noise_seed"] = int(rng.integers(2**31 - 1))
    return p


# ---------------------------------------------------------------------------------------------------------------
# lenstronomy

class LenstronomyModelII:
    "lenstronomy's SimAPI set up with the spec's band; renders one image of `draw_image_params`'s parameters."
    def __init__(self, spec: dict, vortex_points: int = 200, supersampling: int | None = None):
        from lenstronomy.SimulationAPI.sim_api import SimAPI
        self.spec, self.vortex_points = spec, vortex_points
        b = spec["band"]
        if isinstance(b["exposure_time"], dict): raise ValueError("a fixed exposure time is expected")
        self.kwargs_band = dict(pixel_scale=spec["pixel_scale"], exposure_time=b["exposure_time"],
                                magnitude_zero_point=b["zero_point"], read_noise=b["read_noise"], ccd_gain=b["ccd_gain"],
                                sky_brightness=b["sky_brightness"], seeing=b["psf_fwhm"], num_exposures=b["num_exposures"],
                                psf_type="GAUSSIAN", truncation=5, data_count_unit="e-")
        self.kwargs_numerics = dict(supersampling_factor=supersampling or spec["supersampling"])
        self._sims = {}
        self.SimAPI = SimAPI

    def sim(self, n_points: int):
        "The SimAPI (and its ImageModel) of an SIE + shear + `n_points` point masses, Sersic source; made once."
        if n_points not in self._sims:
            model = dict(lens_model_list=["SIE", "SHEAR"] + ["POINT_MASS"] * n_points, source_light_model_list=["SERSIC_ELLIPSE"])
            sim = self.SimAPI(num_pix=self.spec["n_pix"], kwargs_single_band=self.kwargs_band, kwargs_model=model)
            self._sims[n_points] = (sim, sim.image_model_class(self.kwargs_numerics))
        return self._sims[n_points]

    def point_masses(self, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        "(theta_E, x, y) of the point masses: the subhalos, or the vortex cut into `vortex_points` equal pieces."
        if "vortex_mass" not in p or not np.isfinite(p.get("vortex_mass", np.nan)):
            return theta_E_of_mass(p["subhalo_mass"], self.spec), p["subhalo_x"], p["subhalo_y"]
        n, a, phi = self.vortex_points, p["vortex_half_length"], p["vortex_angle"]
        t = -a + (np.arange(n) + 0.5) * 2 * a / n # midpoints along the segment
        theta = np.full(n, float(theta_E_of_mass(p["vortex_mass"] / n, self.spec)))
        return theta, p["host_center_x"] + t * np.cos(phi), p["host_center_y"] + t * np.sin(phi)

    def kwargs(self, p: dict) -> tuple[list, list, dict]:
        "lenstronomy's kwargs_lens and kwargs_source (amplitude from the magnitude by SimAPI), and the point masses."
        theta, x, y = self.point_masses(p)
        sim, _ = self.sim(len(theta))
        lens = [dict(theta_E=p["theta_E"], e1=p["host_e1"], e2=p["host_e2"], center_x=p["host_center_x"],
                     center_y=p["host_center_y"]), dict(gamma1=p["gamma1"], gamma2=p["gamma2"], ra_0=0, dec_0=0)]
        lens += [dict(theta_E=float(t), center_x=float(cx), center_y=float(cy)) for t, cx, cy in zip(theta, x, y)]
        source_mag = [dict(magnitude=p["source_magnitude"], R_sersic=p["source_R_sersic"], n_sersic=p["source_n_sersic"],
                           e1=p["source_e1"], e2=p["source_e2"], center_x=p["source_x"], center_y=p["source_y"])]
        _, source, _ = sim.magnitude2amplitude(kwargs_source_mag=source_mag)
        return lens, source, len(theta)

    def image(self, p: dict) -> np.ndarray:
        "Noise-free image (n_pix, n_pix) [e-/s per pixel]."
        lens, source, n = self.kwargs(p)
        return self.sim(n)[1].image(kwargs_lens=lens, kwargs_source=source)

    def noisy(self, p: dict) -> np.ndarray:
        "The image with lenstronomy's noise (`noise_for_model`: background and Gaussian-approximated Poisson)."
        model = self.image(p)
        return model + self.sim(0)[0].noise_for_model(model, seed=p["noise_seed"]) if self.spec["noise"] else model

    @property
    def background_noise(self) -> float:
        return self.sim(0)[0].background_noise


# ---------------------------------------------------------------------------------------------------------------
# 1. agreement with DeepLense for identical parameters

def deeplense_draws(config, per_class: int, seed: int) -> tuple[list, np.ndarray, dict]:
    "Parameters drawn by DeepLense's sampler as `draw_image_params` dicts, their noise-free float64 images, params."
    from deeplense.core import make_generator
    from deeplense.simulate import render_images, sample_params
    labels = torch.arange(3 * per_class) % 3
    params, extra = sample_params(config, labels, make_generator(seed))
    images = render_images(config, params, extra, labels, None, dtype=torch.float64)[:, 0].numpy()
    out = []
    for i, label in enumerate(labels.tolist()):
        p = {k: float(v[i]) for k, v in params.items()} | dict(label=label)
        present = extra["subhalo_mass"][i] > 0
        p.update(subhalo_mass=extra["subhalo_mass"][i][present].numpy(), subhalo_x=extra["subhalo_x"][i][present].numpy(),
                 subhalo_y=extra["subhalo_y"][i][present].numpy(), noise_seed=i)
        out.append(p)
    return out, images, params


def agreement(config, per_class: int = 8, seed: int = 0, vortex_points=(50, 200, 800, 3200), main: int = 800) -> tuple[list, dict]:
    "Rows (one per image and vortex discretisation) of the DeepLense-lenstronomy comparison, and global figures."
    from deeplense.lensing import einstein_radius
    spec = read_spec(config)
    draws, dl_images, params = deeplense_draws(config, per_class, seed)
    rows, renderers = [], {n: LenstronomyModelII(spec, n) for n in sorted(set(vortex_points) | {main})}
    for i, (p, dl) in enumerate(zip(draws, dl_images)):
        for n in (sorted(renderers) if CLASSES[p["label"]] == "axion" else [main]):
            r = renderers[n]
            lens, source, _ = r.kwargs(p)
            ln = r.image(p)
            diff = ln - dl
            bright = dl > 0.1 * dl.max()
            rows.append(dict(image=i, cls=CLASSES[p["label"]], vortex_points=n if CLASSES[p["label"]] == "axion" else None,
                             peak=dl.max(), max_abs_diff_over_peak=np.abs(diff).max() / dl.max(),
                             rms_diff_over_peak=np.sqrt((diff ** 2).mean()) / dl.max(),
                             median_rel_diff_bright=np.median(np.abs(diff[bright]) / dl[bright]),
                             flux_ratio=ln.sum() / dl.sum(), amp_ratio=source[0]["amp"] / p["source_amp"],
                             diff_over_noise_max=np.abs(diff).max() / params["background_rms"][i].item(),
                             centroid_shift_x_pixels=float(((ln - dl) * np.arange(dl.shape[1])).sum() / dl.sum()),
                             vortex_half_length=p.get("vortex_half_length")))
    # the noise: lenstronomy's background sigma and total time against DeepLense's stored ones
    r = renderers[main]
    dl_rms, dl_t = params["background_rms"][0].item(), params["exposure_time"][0].item()
    sim = r.sim(0)[0]
    model = dl_images[0]
    ln_var = np.var([sim.noise_for_model(model, seed=k) for k in range(1000)], axis=0)
    from deeplense.lensing import add_noise
    from deeplense.core import make_generator
    g = make_generator(1)
    clean = torch.as_tensor(model)
    dl_var = (torch.stack([add_noise(clean, dl_t, dl_rms, g) for _ in range(1000)]) - clean).var(0).numpy()
    bright = model > 0.1 * model.max()
    # Einstein radius of the host in DeepLense, lenstronomy (DeepLense's cosmology) and lenstronomy's default cosmology
    from astropy.cosmology import default_cosmology
    mass = spec["host"]["mass"] if not isinstance(spec["host"]["mass"], dict) else 1e12
    figures = dict(background_rms_deeplense=dl_rms, background_rms_lenstronomy=r.background_noise,
                   exposure_deeplense=dl_t, exposure_lenstronomy=sim.exposure_time,
                   noise_variance_ratio_bright_pixels=float(ln_var[bright].sum() / dl_var[bright].sum()),
                   noise_variance_ratio_faint_pixels=float(ln_var[~bright].sum() / dl_var[~bright].sum()),
                   poisson_share_of_variance_at_peak=float(model.max() / dl_t / (model.max() / dl_t + dl_rms ** 2)),
                   theta_E_deeplense=einstein_radius(mass, spec["z_lens"], spec["z_source"]).item(),
                   theta_E_lenstronomy=float(theta_E_of_mass(mass, spec)),
                   theta_E_lenstronomy_default_cosmology=float(theta_E_of_mass(mass, spec, default_cosmology.get())),
                   default_cosmology=default_cosmology.get().name, host_mass=mass)
    # supersampling: how far the spec's images (1 ray per pixel) are from converged ones (5x5), per class, in lenstronomy
    fine = LenstronomyModelII(spec, main, supersampling=5)
    for c, name in enumerate(CLASSES):
        diffs = [fine.image(p) - r.image(p) for p in draws if p["label"] == c]
        peaks = [r.image(p).max() for p in draws if p["label"] == c]
        figures[f"{name}: supersampling 5 vs 1 (lenstronomy), max abs diff / peak, median"] = float(np.median(
            [np.abs(d).max() / m for d, m in zip(diffs, peaks)]))
        figures[f"{name}: supersampling 5 vs 1 (lenstronomy), max abs diff / noise sigma, median"] = float(np.median(
            [np.abs(d).max() / dl_rms for d in diffs]))
        figures[f"{name}: supersampling 5 vs 1 (lenstronomy), rms diff / noise sigma, median"] = float(np.median(
            [np.sqrt((d ** 2).mean()) / dl_rms for d in diffs]))
    from deeplense.simulate import SimulationConfig
    _, dl_images5, _ = deeplense_draws(SimulationConfig.from_dict(dict(config.to_dict(), supersampling=5)), per_class, seed)
    figures["supersampling 5: DeepLense vs lenstronomy, max abs diff / peak, median"] = float(np.median(
        [np.abs(fine.image(p) - d).max() / d.max() for p, d in zip(draws, dl_images5)]))
    return rows, figures


# ---------------------------------------------------------------------------------------------------------------
# 2. the lenstronomy file

PARAM_NAMES = ["background_rms", "exposure_time", "gamma1", "gamma2", "host_center_x", "host_center_y", "host_e1", "host_e2",
               "host_mass", "log10_axion_mass", "n_subhalos", "shmf_slope", "source_R_sersic", "source_amp", "source_e1",
               "source_e2", "source_magnitude", "source_n_sersic", "source_x", "source_y", "subhalo_mass_max",
               "subhalo_mass_total", "theta_E", "vortex_angle", "vortex_half_length", "vortex_mass"]


VARIANTS = { # name -> (spec changes, lenstronomy supersampling, vortex points); "spec" is the check, the others how an
             # outside party might differ from it
    "spec": ({}, None, None),
    "supersampling5": ({}, 5, None), # rays on a 5x5 sub-grid per pixel: converged images (the spec renders 1 ray per pixel)
    "planck18": ({"cosmology": "lenstronomy_default"}, None, None), # LensCosmo without a cosmology: astropy's, Planck18
    "points50": ({}, None, 50), # a coarser vortex: 50 point masses (spacing up to 0.12", more than a pixel)
    "host_planck18": ({"host_cosmology": "lenstronomy_default"}, None, None), # only the host's Einstein radius in Planck18
}


def make_lenstronomy_file(config, n: int, path: Path, seed: int, vortex_points: int, variant: str = "spec",
                          batch: int = 64) -> Path:
    "n lenstronomy images of the spec (classes in turn), numpy-drawn parameters, in DeepLense's HDF5 layout; resumable."
    from deeplense.formats import H5Writer
    changes, supersampling, points = VARIANTS[variant]
    spec, vortex_points = read_spec(config) | changes, points or vortex_points
    r = LenstronomyModelII(spec, vortex_points, supersampling)
    meta = dict(made_by="benchmarks/lenstronomy_model_ii.py", engine="lenstronomy", seed=seed, vortex_points=vortex_points,
                spec=spec, simulation_preset=config.preset, variant=variant, supersampling=supersampling or spec["supersampling"])
    if path.exists(): return path
    with H5Writer(path, n, (1, spec["n_pix"], spec["n_pix"]), list(CLASSES), PARAM_NAMES, meta) as w:
        todo = set(w.missing().tolist())
        for start in range(0, n, batch):
            rows = range(start, min(n, start + batch))
            if not todo & set(rows): continue
            images, labels, params = [], [], {k: [] for k in PARAM_NAMES}
            for i in rows:
                rng = np.random.default_rng([seed, i]) # a function of (seed, row): resuming gives the same images
                p = draw_image_params(spec, i % 3, rng)
                _, source, _ = r.kwargs(p)
                p["source_amp"] = source[0]["amp"]
                p["background_rms"], p["exposure_time"] = r.background_noise, r.sim(0)[0].exposure_time
                p["n_subhalos"] = float(len(p["subhalo_mass"]))
                if CLASSES[p["label"]] == "cdm":
                    p["subhalo_mass_max"], p["subhalo_mass_total"] = p["subhalo_mass"].max(), p["subhalo_mass"].sum()
                images.append(r.noisy(p)[None])
                labels.append(p["label"])
                for k in PARAM_NAMES: params[k].append(p.get(k, np.nan))
            w.write(start, np.stack(images), np.array(labels), {k: np.array(v, dtype=np.float64) for k, v in params.items()})
    return path


# ---------------------------------------------------------------------------------------------------------------
# 3. train on DeepLense, test on both

def train(train_path: Path, run: Path, seed: int, epochs: int, n_train: int, device, training_set: str = "preset") -> dict:
    "Train a width-11 ResNet-18 on `n_train` rows of train_path (fit_h5's stratified split; the rest validates); once per run."
    from deeplense.formats import read_info
    from deeplense.train import TrainConfig, fit_h5
    if (run / "timing.json").exists(): return json.loads((run / "timing.json").read_text())
    n = read_info(train_path).n
    config = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, preprocess={"name": "standardize"},
                         augment={"dihedral": True}, seed=seed, device=str(device), progress=False)
    load_before, start, cpu = load(), time.perf_counter(), time.process_time()
    fit_h5(train_path, "resnet18", run, config, {"width": 11}, fractions=(n_train / n, 1 - n_train / n, 0.0), resume=True)
    timing = dict(training_set=training_set, train_seed=seed, epochs=epochs, train_images=n_train, train_min=round((time.perf_counter() - start) / 60, 2),
                  train_cpu_min=round((time.process_time() - cpu) / 60, 2), threads=torch.get_num_threads(),
                  load_before=load_before, load_after=load())
    (run / "timing.json").write_text(json.dumps(timing))
    return timing


def test(run: Path, tests: dict, n_boot: int, seed: int, device) -> dict:
    "Macro AUC, bootstrap interval and accuracy of run/best.pt on every test file, and the gap deeplense - lenstronomy."
    from deeplense.datasets import LensDataset
    from deeplense.metrics import accuracy, bootstrap, weighted_macro_auc
    from deeplense.train import load_checkpoint, predict
    model, meta = load_checkpoint(run / "best.pt", device)
    rng, row, reps = np.random.default_rng(seed), {}, {}
    for name, path in tests.items():
        data = LensDataset(path)
        probs = predict(model, data, meta, 256, device).double().cpu().numpy()
        auc, lo, hi, reps[name] = bootstrap(weighted_macro_auc, data.labels, probs, n_boot=n_boot, seed=rng, weighted=True)
        row |= {f"{name}_n": len(data), f"{name}_macro_auc": auc, f"{name}_lo": lo, f"{name}_hi": hi,
                f"{name}_accuracy": accuracy(data.labels, probs)}
    for name in [k for k in tests if k != "deeplense"]: # independent files: their replicates paired at random
        suffix = name.removeprefix("lenstronomy")
        lo, hi = np.percentile(reps["deeplense"] - reps[name], [2.5, 97.5])
        row |= {f"gap{suffix}": row["deeplense_macro_auc"] - row[f"{name}_macro_auc"], f"gap{suffix}_lo": lo, f"gap{suffix}_hi": hi}
    return row | dict(best_epoch=meta["epoch"])


# ---------------------------------------------------------------------------------------------------------------
# tables

def agreement_markdown(rows: list, figures: dict, command: str) -> str:
    "agreement.md: per class the median and worst pixel-level differences, then the global figures."
    lines = ["# DeepLense `model_ii` against lenstronomy 1.14: noise-free images of identical parameters", "",
             f"Made with `{command}` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}). Parameters drawn by DeepLense's "
             "`sample_params`; DeepLense renders in float64 (`render_images`), lenstronomy with SimAPI (amplitude from the "
             "magnitude by `magnitude2amplitude`, Einstein radii of the subhalos and the vortex pieces by `LensCosmo` in "
             "DeepLense's cosmology). Differences are relative to the DeepLense image's peak pixel; `bright` pixels are "
             "those above 10% of the peak; `diff/noise` is the largest pixel difference over the background sigma.", "",
             "| class | vortex points | images | max abs diff / peak (median, worst) | rms diff / peak (median) | "
             "median rel. diff, bright px | flux ratio lenstronomy/DeepLense (min, max) | amp ratio | max diff / noise sigma (worst) |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["cls"], r["vortex_points"] or 0) for r in rows}, key=lambda k: (CLASSES.index(k[0]), k[1]))
    for cls, n in keys:
        sel = [r for r in rows if r["cls"] == cls and (r["vortex_points"] or 0) == n]
        col = lambda k: np.array([r[k] for r in sel])
        lines.append(f"| {cls} | {n or ''} | {len(sel)} | {np.median(col('max_abs_diff_over_peak')):.2e}, "
                     f"{col('max_abs_diff_over_peak').max():.2e} | {np.median(col('rms_diff_over_peak')):.2e} | "
                     f"{np.median(col('median_rel_diff_bright')):.2e} | {col('flux_ratio').min():.6f}, {col('flux_ratio').max():.6f} | "
                     f"{np.median(col('amp_ratio')):.6f} | {col('diff_over_noise_max').max():.3f} |")
    lines += ["", "| figure | value |", "|---|---|"] + [f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |"
                                                       for k, v in figures.items()]
    return "\n".join(lines) + "\n"


def results_markdown(rows: list, commands: list, note: str, variants: list) -> str:
    lines = ["# A ResNet trained on DeepLense `model_ii`, tested on DeepLense and on lenstronomy-made images", "",
             "Made with " + ", then ".join(f"`{c}`" for c in commands) + f" ({datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}).",
             "", note, "",
             "| training set | train seed | epochs | training images | DeepLense test: macro AUC [95% CI] | lenstronomy test: macro AUC [95% CI] "
             "| gap [95% CI] | accuracy DeepLense / lenstronomy | pass (gap <= 0.02, AUC >= 0.98) | training [min] | load before -> after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = r["gap"] <= 0.02 and r["lenstronomy_macro_auc"] >= 0.98
        lines.append(f"| {r.get('training_set', 'preset')} | {r['train_seed']} | {r['epochs']} | {r['train_images']:,} | {r['deeplense_macro_auc']:.4f} "
                     f"[{r['deeplense_lo']:.4f}, {r['deeplense_hi']:.4f}] (n={r['deeplense_n']}) | {r['lenstronomy_macro_auc']:.4f} "
                     f"[{r['lenstronomy_lo']:.4f}, {r['lenstronomy_hi']:.4f}] (n={r['lenstronomy_n']}) | {r['gap']:+.4f} "
                     f"[{r['gap_lo']:+.4f}, {r['gap_hi']:+.4f}] | {r['deeplense_accuracy']:.3f} / {r['lenstronomy_accuracy']:.3f} | "
                     f"{'yes' if ok else 'no'} | {r['train_min']} | {r['load_before']} -> {r['load_after']} |")
    others = [v for v in variants if v != "spec"]
    if others:
        lines += ["", "How the same networks score on lenstronomy files made the way an outside party might differ from the "
                  "spec (same numpy draws, seed 1000): `supersampling5`, 5x5 rays per pixel (converged images; the spec "
                  "has 1); `planck18`, Einstein radii in lenstronomy's default cosmology (astropy's Planck18) instead of "
                  "DeepLense's; `points50`, the vortex as 50 point masses instead of 800; `host_planck18`, only the host's "
                  "Einstein radius in Planck18 (1.6369\" instead of 1.6645\"), subhalos and vortex in DeepLense's cosmology.", "", "| training set | train seed | epochs | " + " | ".join(f"{v}: macro AUC [95% CI] | {v}: gap [95% CI]"
                                                                               for v in others) + " |",
                  "|---|---|---|" + "---|---|" * len(others)]
        for r in rows:
            cells = [f"{r[f'lenstronomy_{v}_macro_auc']:.4f} [{r[f'lenstronomy_{v}_lo']:.4f}, {r[f'lenstronomy_{v}_hi']:.4f}] | "
                     f"{r[f'gap_{v}']:+.4f} [{r[f'gap_{v}_lo']:+.4f}, {r[f'gap_{v}_hi']:+.4f}]" for v in others]
            lines.append(f"| {r.get('training_set', 'preset')} | {r['train_seed']} | {r['epochs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list | None = None):
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", nargs="+", default=["compare", "make", "fit", "test"], choices=["compare", "make", "fit", "test"])
    p.add_argument("--n-lenstronomy", type=int, default=1500, help="lenstronomy test images (default 1500)")
    p.add_argument("--vortex-points", type=int, default=800, help="point masses emulating the vortex (default 800)")
    p.add_argument("--variants", nargs="+", default=["spec"], choices=list(VARIANTS),
                   help=f"lenstronomy test files: spec (the check), {', '.join(list(VARIANTS)[1:])} (default: spec)")
    p.add_argument("--compare-per-class", type=int, default=8, help="images per class of the agreement check")
    p.add_argument("--train-images", type=int, default=6000)
    p.add_argument("--test-images", type=int, default=1500, help="held-out DeepLense images")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--train-set", action="append", default=[], metavar="FIELD=JSON",
                   help="train on the preset with this field changed (repeatable), e.g. "
                        "host.mass='{\"log_uniform\": [9e11, 1.1e12]}'; the tests stay the preset's and lenstronomy's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates of the AUC intervals")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", type=Path, default=Path("lenstronomy_model_ii_work"), help="data and runs (reused)")
    p.add_argument("--out", type=Path, default=RESULTS / "lenstronomy_model_ii")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    from deeplense.core import get_device
    from deeplense.simulate import parse_override, preset, simulate_to_h5
    config, device = preset(PRESET), get_device(a.device)
    command = command_line("lenstronomy_model_ii", argv)
    data = a.work / "data"
    data.mkdir(parents=True, exist_ok=True)
    if "compare" in a.steps:
        start, before = time.perf_counter(), load()
        rows, figures = agreement(config, a.compare_per_class, main=a.vortex_points)
        write_csv(rows, a.out / "agreement.csv")
        (a.out / "agreement.md").write_text(agreement_markdown(rows, figures, command))
        print((a.out / "agreement.md").read_text())
        print(f"compare: {time.perf_counter() - start:.0f} s, load {before} -> {load()}", flush=True)
    lens_paths = {v: data / f"lenstronomy-{PRESET}-{v}-n{a.n_lenstronomy}-seed1000-points{VARIANTS[v][2] or a.vortex_points}.h5"
                  for v in a.variants}
    if "make" in a.steps:
        for v, path in lens_paths.items():
            start, before = time.perf_counter(), load()
            make_lenstronomy_file(config, a.n_lenstronomy, path, seed=1000, vortex_points=a.vortex_points, variant=v)
            print(f"make: {path} in {time.perf_counter() - start:.0f} s "
                  f"({a.n_lenstronomy / (time.perf_counter() - start):.1f} images/s, load {before} -> {load()})", flush=True)
    n_all = a.train_images + a.train_images // 4
    overrides = dict(parse_override(t) for t in a.train_set) # the training set: the preset, or a variant of it
    label = "".join("-" + re.sub(r"[^A-Za-z0-9.]+", "_", f"{k}={json.dumps(v)}").strip("_") for k, v in overrides.items())
    train_path = data / f"{PRESET}{label}-train-n{n_all}-seed0.h5"
    test_path = data / f"{PRESET}-test-n{a.test_images}-seed1.h5"
    runs = {seed: a.work / "runs" / f"resnet18-width11-seed{seed}-epochs{a.epochs}{label}" for seed in a.seeds}
    if "fit" in a.steps:
        for path, cfg, n, seed in ((train_path, preset(PRESET, overrides), n_all, 0), (test_path, config, a.test_images, 1)):
            if not path.exists(): simulate_to_h5(cfg, n, path, seed=seed, device=device, compile=False, progress=False)
        for seed, run in runs.items():
            print(train(train_path, run, seed, a.epochs, a.train_images, device,
                        ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items()) or "preset"), flush=True)
    if "test" in a.steps:
        tests = dict(deeplense=test_path) | {"lenstronomy" if v == "spec" else f"lenstronomy_{v}": path
                                             for v, path in lens_paths.items()}
        rows = []
        for seed, run in runs.items():
            cached = run / f"test-{'-'.join(a.variants)}.json" # a run's scores, so tables of several invocations add up
            if not cached.exists():
                cached.write_text(json.dumps(json.loads((run / "timing.json").read_text())
                                             | test(run, tests, a.bootstrap, seed, device) | dict(command=command)))
            rows.append(json.loads(cached.read_text()))
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
        note = (f"ResNet-18 of width 11 (0.33 M parameters, as `benchmarks/results.py --scale cpu`), {a.train_images:,} "
                f"training and {n_all - a.train_images:,} validation images of `deeplense simulate --preset {PRESET} --seed 0` "
                f"(with the change in the training-set column, if any), "
                f"batch 64, one-cycle AdamW (peak 2e-3), dihedral augmentation, standardised images, the epoch of best "
                f"validation AUC kept; {torch.get_num_threads()} torch thread(s); training minutes are wall-clock on a "
                f"2-core machine shared with other jobs (load averages 1/5/15 min in the table). Tests: {a.test_images:,} "
                f"DeepLense images (seed 1) and {a.n_lenstronomy:,} lenstronomy images (numpy-drawn parameters, seed "
                f"1000; vortex as {a.vortex_points} point masses; lenstronomy's `noise_for_model`). Intervals: "
                f"{a.bootstrap} bootstrap replicates of each test file's rows; the gap's interval pairs the two files' "
                f"replicates. Earlier invocations' rows (other epochs) are kept: the table is every run in --work.")
        rows = [json.loads(f.read_text()) for f in sorted((a.work / "runs").glob(f"*/test-{'-'.join(a.variants)}.json"))]
        rows.sort(key=lambda r: (r.get("training_set", "preset") != "preset", r["epochs"], r["train_seed"]))
        write_csv(rows, a.out / "lenstronomy_model_ii.csv")
        commands = list(dict.fromkeys(r["command"] for r in rows))
        (a.out / "lenstronomy_model_ii.md").write_text(results_markdown(rows, commands, note, a.variants))
        print((a.out / "lenstronomy_model_ii.md").read_text())

if __name__ == "__main__":
    main()

"""Speed of `deeplense.simulate` against lenstronomy and caustics, side by side, for the same images.

    python -m benchmarks.simulate            # from the repository's root: about 5 minutes on 2 cores
    python -m benchmarks.simulate --quick    # about 2 minutes
    python -m benchmarks.simulate --cases    # the whole command only, beside lenstronomy's loop: about 1 minute

Cases: `model_i` with 25 subhalos (150x150 px, 0.05"/px, Gaussian PSF) at supersampling 1 and 4, and `model_ii`
(64x64 px, 0.101"/px) with 25 subhalos. Every engine renders the same lenses (SIE + shear + 25 point masses, Sersic
source, Gaussian PSF): the parameters are drawn once by `deeplense.simulate.sample_params` and translated.
`model_i_varied` and `model_ii_varied`: their `cdm` images, with truncated-NFW subhalos (a Poisson number per image
for a mass fraction of 1%: about a hundred) and every macro parameter drawn; lenstronomy gets one `ImageModel` per
subhalo count, built once (caustics is not run on them).
`lens_finding` (4 bands, 101x101 px) and `lens_finding_space` (1 band): deeplense makes whole stamps, lenses and
non-lenses in turn, with their survey (field galaxies, stars, look-alike non-lenses), PSFs drawn per stamp, noise and
masks; lenstronomy renders only the lens system of each lens stamp (SIE + shear, Sersic source and lens light, each
band with its own PSF): the part of the work both do. caustics is not run on them.

- deeplense: `simulate_batch` end to end (drawing the parameters, rendering, noise), with torch.compile (its first
  call, the compilation, is timed separately) and, for reference, eagerly.
- lenstronomy: one `ImageModel` built once and reused, `image(kwargs_lens, kwargs_source)` per image (noise-free).
- caustics: one `LensSource` simulator whose per-image parameters (source position, subhalo positions and Einstein
  radii) are dynamic, batched with `torch.vmap` (noise-free).
- the whole command: `deeplense simulate --preset model_i --n 4000 --out FILE` run as a subprocess in an empty folder
  (start-up, drawing, rendering, noise and writing the HDF5 file included), beside lenstronomy's reused `ImageModel`
  loop on the same `model_i` lenses, and `deeplense --help` for the start-up alone (`--command-n 0` skips it); the
  median of `--command-runs` runs (default 3). `python -m benchmarks.simulate --cases` times only the command (and
  lenstronomy's loop, for the ratio).

The figures go to benchmarks/results/simulate/simulate_cpu.csv and .md (`--out` another folder), with the command that
made them and the load average beside each.

Each engine runs in its own process with `--threads` torch threads (default 1), so that its peak memory (the process's peak resident set size, `ru_maxrss`,
and its increase over the resident set after setup) is its own. The load average is printed beside every figure:
the cores may be shared.
"""
from __future__ import annotations

import math
import statistics
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deeplense.cli import FullNameParser

CASES = {"model_i, supersampling 1": ("model_i", 1, 64), "model_i, supersampling 4": ("model_i", 4, 8),
         "model_ii": ("model_ii", 1, 64), "lens_finding": ("lens_finding", 1, 64),
         "lens_finding_space": ("lens_finding_space", 1, 64), "model_i_varied": ("model_i_varied", 1, 64),
         "model_ii_varied": ("model_ii_varied", 1, 64)} # preset, supersampling, batch size (deeplense, caustics)


def rss_mb() -> float:
    "The current resident set size [MB]."
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def draw(preset: str, supersampling: int, n: int):
    "The configuration and n cdm images' parameters (params, extra) of a case."
    import torch
    from deeplense.core import make_generator
    from deeplense.simulate import preset as get_preset, sample_params
    config = get_preset(preset, {"supersampling": supersampling})
    labels = torch.full((n,), config.classes.index("cdm" if "cdm" in config.classes else "lens"))
    params, extra = sample_params(config, labels, make_generator(0))
    return config, params, extra


def timed(step, n_per_call: int, seconds: float) -> tuple[float, int]:
    "Images per second of `step()` (which makes n_per_call images) over about `seconds`, after one warm-up call."
    step()
    start, n = time.perf_counter(), 0
    while n == 0 or time.perf_counter() - start < seconds:
        step()
        n += n_per_call
    return n / (time.perf_counter() - start), n


def run_deeplense(case: str, seconds: float, compile: bool) -> dict:
    import torch
    from deeplense.core import make_generator
    from deeplense.simulate import preset as get_preset, simulate_batch
    name, s, batch = CASES[case]
    config = get_preset(name, {"supersampling": s})
    labels = torch.full((batch,), config.classes.index("cdm")) if "cdm" in config.classes else torch.arange(batch) % 2
    generator = make_generator(0)
    base = rss_mb()
    start = time.perf_counter()
    simulate_batch(config, batch, generator, labels, compile=compile) # compiles
    first = time.perf_counter() - start
    rate, n = timed(lambda: simulate_batch(config, batch, generator, labels, compile=compile), batch, seconds)
    return dict(rate=rate, n=n, first_call=first, base=base)


def gaussian_kernel(fwhm: float, pixel_scale: float):
    from deeplense.lensing import gaussian_psf_kernel
    return gaussian_psf_kernel(fwhm, pixel_scale)


def run_lenstronomy(case: str, seconds: float) -> dict:
    import numpy as np
    from lenstronomy.Data.pixel_grid import PixelGrid
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    name, s, _ = CASES[case]
    config, params, extra = draw(name, s, 16)
    if "lens" in config.classes: return lenstronomy_lens_system(config, params, s, seconds)
    n, d = config.n_pix, config.pixel_scale
    grid = PixelGrid(nx=n, ny=n, transform_pix2angle=np.eye(2) * d, ra_at_xy_0=-(n - 1) / 2 * d, dec_at_xy_0=-(n - 1) / 2 * d)
    tnfw = config.subhalos.profile == "tnfw"
    counts = (extra["subhalo_alpha_Rs" if tnfw else "subhalo_theta_E"] > 0).sum(1).tolist() # slots 0..count-1 of each image
    models = {K: ImageModel(grid, PSF(psf_type="GAUSSIAN", fwhm=config.bands[0].psf_fwhm, pixel_size=d),
                            lens_model_class=LensModel(["SIE", "SHEAR"] + ["TNFW" if tnfw else "POINT_MASS"] * K),
                            source_model_class=LightModel(["SERSIC_ELLIPSE"]), kwargs_numerics={"supersampling_factor": s})
              for K in set(counts)} # one per subhalo count, built once
    subhalo = (lambda i, k: {q: extra[f"subhalo_{q}"][i, k].item() for q in ("Rs", "alpha_Rs", "r_trunc")}) if tnfw else \
              (lambda i, k: dict(theta_E=extra["subhalo_theta_E"][i, k].item()))
    P = {k: v.tolist() for k, v in params.items()}
    amp = P["source_amp"]
    kwargs = []
    for i in range(16):
        lens = [dict(theta_E=P["theta_E"][i], e1=P["host_e1"][i], e2=P["host_e2"][i], center_x=P["host_center_x"][i],
                     center_y=P["host_center_y"][i]), dict(gamma1=P["gamma1"][i], gamma2=P["gamma2"][i])]
        lens += [subhalo(i, k) | dict(center_x=extra["subhalo_x"][i, k].item(), center_y=extra["subhalo_y"][i, k].item())
                 for k in range(counts[i])]
        source = [dict(amp=amp[i], R_sersic=P["source_R_sersic"][i], n_sersic=P["source_n_sersic"][i], e1=P["source_e1"][i],
                       e2=P["source_e2"][i], center_x=P["source_x"][i], center_y=P["source_y"][i])]
        kwargs.append((models[counts[i]], lens, source))
    base, i = rss_mb(), [0]
    def step():
        model, lens, source = kwargs[i[0] % 16]
        model.image(lens, source); i[0] += 1
    rate, count = timed(step, 1, seconds)
    return dict(rate=rate, n=count, base=base)


def lenstronomy_lens_system(config, params: dict, s: int, seconds: float) -> dict:
    "Stamps/s of lenstronomy rendering the lens system of 16 lens stamps (SIE + shear, Sersic source and lens light) in every band."
    import numpy as np
    from lenstronomy.Data.pixel_grid import PixelGrid
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from deeplense.simulate import band_key
    n, d = config.n_pix, config.pixel_scale
    grid = PixelGrid(nx=n, ny=n, transform_pix2angle=np.eye(2) * d, ra_at_xy_0=-(n - 1) / 2 * d, dec_at_xy_0=-(n - 1) / 2 * d)
    P = {k: v.tolist() for k, v in params.items()}
    models = [ImageModel(grid, PSF(psf_type="GAUSSIAN", fwhm=P[band_key("psf_fwhm", b, config)][0], pixel_size=d),
                         lens_model_class=LensModel(["SIE", "SHEAR"]), source_model_class=LightModel(["SERSIC_ELLIPSE"]),
                         lens_light_model_class=LightModel(["SERSIC_ELLIPSE"]), kwargs_numerics={"supersampling_factor": s})
              for b in config.bands]
    def light(prefix, i, b):
        return [dict(amp=P[band_key(f"{prefix}_amp", b, config)][i], R_sersic=P[f"{prefix}_R_sersic"][i], n_sersic=P[f"{prefix}_n_sersic"][i],
                     e1=P[f"{prefix}_e1"][i], e2=P[f"{prefix}_e2"][i], center_x=P[f"{prefix}_x"][i], center_y=P[f"{prefix}_y"][i])]
    kwargs = [([dict(theta_E=P["theta_E"][i], e1=P["host_e1"][i], e2=P["host_e2"][i], center_x=P["host_center_x"][i],
                     center_y=P["host_center_y"][i]), dict(gamma1=P["gamma1"][i], gamma2=P["gamma2"][i])], i) for i in range(16)]
    base, i = rss_mb(), [0]
    def step():
        lens, j = kwargs[i[0] % 16]
        for model, b in zip(models, config.bands): model.image(lens, light("source", j, b), light("lens", j, b))
        i[0] += 1
    rate, count = timed(step, 1, seconds)
    return dict(rate=rate, n=count, base=base)


def run_caustics(case: str, seconds: float) -> dict:
    import warnings
    import caustics
    import torch
    warnings.filterwarnings("ignore")
    name, s, batch = CASES[case]
    config, params, extra = draw(name, s, batch)
    if "lens" in config.classes or config.subhalos.profile == "tnfw": raise NotImplementedError("not run on this case")
    K, P = extra["subhalo_theta_E"].shape[1], {k: v[0].item() for k, v in params.items()}
    q_phi = lambda e1, e2: ((1 - math.hypot(e1, e2)) / (1 + math.hypot(e1, e2)), math.atan2(e2, e1) / 2)
    cosmo = caustics.FlatLambdaCDM(name="cosmo")
    q, phi = q_phi(P["host_e1"], P["host_e2"])
    sie = caustics.SIE(cosmology=cosmo, name="sie", x0=P["host_center_x"], y0=P["host_center_y"], q=q, phi=phi, Rein=P["theta_E"])
    shear = caustics.ExternalShear(cosmology=cosmo, name="shear", x0=0.0, y0=0.0, gamma_1=P["gamma1"], gamma_2=P["gamma2"])
    points = [caustics.Point(cosmology=cosmo, name=f"sub{k}", x0=0.0, y0=0.0, Rein=0.01) for k in range(K)]
    lens = caustics.SinglePlane(cosmology=cosmo, lenses=[sie, shear, *points], name="lens", z_l=config.z_lens, z_s=config.z_source)
    q, phi = q_phi(P["source_e1"], P["source_e2"])
    source = caustics.Sersic(name="source", x0=0.0, y0=0.0, q=q, phi=phi, n=P["source_n_sersic"], Re=P["source_R_sersic"],
                             Ie=P["source_amp"])
    psf = gaussian_kernel(config.bands[0].psf_fwhm, config.pixel_scale / s) # caustics convolves at the supersampled scale
    sim = caustics.LensSource(lens=lens, source=source, pixelscale=config.pixel_scale, pixels_x=config.n_pix,
                              upsample_factor=s, psf=psf, name="sim")
    sim.to_static()
    dynamic = [source.x0, source.y0] + [p for sub in points for p in (sub.x0, sub.y0, sub.Rein)]
    for p in dynamic: p.to_dynamic()
    columns = [params["source_x"], params["source_y"]]
    for k in range(K): columns += [extra["subhalo_x"][:, k], extra["subhalo_y"][:, k], extra["subhalo_theta_E"][:, k]]
    x = torch.stack(columns, 1).float()
    if x.shape[1] != sim.get_values().shape[-1]: raise RuntimeError("caustics parameter layout changed")
    batched = torch.vmap(sim)
    base = rss_mb()
    with torch.no_grad(): rate, n = timed(lambda: batched(x), batch, seconds)
    return dict(rate=rate, n=n, base=base)


def child(engine: str, case: str, seconds: float, threads: int, queue):
    "Run one measurement and report it with this process's peak memory."
    import torch
    torch.set_num_threads(threads)
    try:
        out = dict(eager=lambda: run_deeplense(case, seconds, False), compiled=lambda: run_deeplense(case, seconds, True),
                   lenstronomy=lambda: run_lenstronomy(case, seconds), caustics=lambda: run_caustics(case, seconds))[engine]()
        out.update(peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, load=os.getloadavg()[0])
    except Exception as e: out = dict(error=f"{type(e).__name__}: {e}")
    queue.put(out)


def measure(engine: str, case: str, seconds: float, threads: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=child, args=(engine, case, seconds, threads, queue))
    p.start()
    out = queue.get()
    p.join()
    return out


def time_command(args: list, threads: int) -> float:
    "Seconds of `deeplense *args` run as a user runs it, in a fresh process with `threads` OpenMP threads."
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from deeplense.cli import main; raise SystemExit(main())", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode: raise RuntimeError(f"deeplense {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def compare_command(n: int, seconds: float, threads: int, lenstronomy: float | None, runs: int) -> list:
    "Rows of the whole `deeplense simulate --preset model_i --n n` command (median of `runs`) beside lenstronomy's loop."
    rows = []
    if lenstronomy is None:
        out = measure("lenstronomy", "model_i, supersampling 1", seconds, threads)
        lenstronomy = out.get("rate")
        if lenstronomy: rows.append(dict(case="model_i, supersampling 1", engine="lenstronomy", rate=lenstronomy, peak=out["peak"],
                                         over_setup=out["peak"] - out["base"], load=f"{out['load']:.2f}"))
    loads, startups, tooks = [os.getloadavg()[0]], [], []
    for _ in range(runs):
        startups.append(time_command(["--help"], threads))
        with tempfile.TemporaryDirectory() as d:
            tooks.append(time_command(["simulate", "--preset", "model_i", "--n", str(n), "--out", f"{d}/model_i.h5"], threads))
            mb = os.path.getsize(f"{d}/model_i.h5") / 1e6
        loads.append(os.getloadavg()[0])
    took, startup = statistics.median(tooks), statistics.median(startups)
    load = f"{min(loads):.2f}-{max(loads):.2f}"
    print(f"whole command `deeplense simulate --preset model_i --n {n}`: {took:.1f} s (median of {', '.join(f'{t:.1f}' for t in tooks)}), "
          f"{n / took:.0f} images/s, {mb:.0f} MB written (start-up alone, `deeplense --help`: {startup:.1f} s; load {load})")
    ratio = n / took / lenstronomy if lenstronomy else None
    if ratio: print(f"{'':26s} whole command / lenstronomy's ImageModel loop ({lenstronomy:.0f} images/s): {ratio:.1f}x")
    return rows + [dict(case=f"whole command, model_i, n={n}", engine="deeplense simulate", rate=n / took, seconds=took,
                 runs=" ".join(f"{t:.2f}" for t in tooks), startup=startup, written_mb=mb, load=load, lenstronomy=lenstronomy,
                 ratio=ratio)]


COLUMNS = {"case": ("case", "{}"), "engine": ("engine", "{}"), "rate": ("images/s", "{:,.0f}"), "seconds": ("seconds", "{:.2f}"),
           "startup": ("start-up [s]", "{:.2f}"), "peak": ("peak RSS [MB]", "{:.0f}"), "ratio": ("vs lenstronomy", "{:.1f}x"),
           "load": ("load (1 min)", "{}")}


def write_results(rows: list, out: Path, threads: int, seconds: float, argv: list | None):
    "simulate_cpu.csv (every field) and simulate_cpu.md in `out`."
    from benchmarks.common import command_line, write_tables
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for r in rows: r.update(command=command_line("simulate", argv), finished=stamp)
    out.mkdir(parents=True, exist_ok=True)
    method = (f"{os.cpu_count()} CPUs, {threads} torch/OpenMP thread(s) per engine, timing windows of {seconds:.0f} s; each engine in "
              f"its own process. deeplense's figures include drawing the parameters and the noise, the others are noise-free; "
              f"the whole command includes Python's start-up, the imports and writing the HDF5 file. The load average is "
              f"the machine's: other jobs may share the cores.")
    write_tables(rows, out, "simulate_cpu", "Simulation speed: deeplense, lenstronomy, caustics", None, method, COLUMNS,
                 "See benchmarks/simulate.py for what each engine renders.")
    print(f"wrote {out / 'simulate_cpu.md'} and .csv")


def main(argv=None):
    parser = FullNameParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows, no eager deeplense run")
    parser.add_argument("--seconds", type=float, help="timing window per measurement (default 10, quick 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per engine (default 1: lenstronomy is single-threaded, and on a shared "
                             "2-core machine OpenMP threads fight the other processes)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES), metavar="CASE",
                        help="cases to time (default all; `--cases` alone: only the whole command)")
    parser.add_argument("--command-n", type=int, default=4000,
                        help="images of the timed `deeplense simulate --preset model_i` command (default 4000; 0: skip it)")
    parser.add_argument("--command-runs", type=int, default=3, help="runs of the command, of which the median is kept (default 3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "simulate",
                        help="folder of simulate_cpu.csv and .md (default benchmarks/results/simulate)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    engines = ["compiled", "lenstronomy", "caustics"] + ([] if args.quick else ["eager"])
    print(f"{os.cpu_count()} CPUs, {args.threads} torch thread(s) per engine; timing windows of {seconds:.0f} s; "
          f"deeplense noise included, the others noise-free")
    print(f"{'case':26s} {'engine':22s} {'images/s':>10s} {'peak RSS MB':>12s} {'(+ over setup)':>15s} {'load 1 min':>10s}")
    lenstronomy_model_i, rows = None, []
    for case in args.cases:
        rates = {}
        # the lens-finding stamps' survey has shapes that change from batch to batch: simulate_to_h5 renders it eagerly
        name = CASES[case][0]
        for engine in (["eager", "lenstronomy"] if name.startswith("lens_finding") else
                       ["compiled", "eager", "lenstronomy"] if name.endswith("_varied") else engines):
            out = measure(engine, case, seconds, args.threads)
            label = dict(compiled="deeplense (compiled)", eager="deeplense (eager)").get(engine, engine)
            if "error" in out:
                print(f"{case:26s} {label:22s} unavailable: {out['error']}")
                continue
            rates[engine] = out["rate"]
            extra = f"  (compiling: {out['first_call']:.0f} s)" if engine == "compiled" else ""
            print(f"{case:26s} {label:22s} {out['rate']:10.1f} {out['peak']:12.0f} {out['peak'] - out['base']:15.0f} "
                  f"{out['load']:10.2f}{extra}", flush=True)
            rows.append(dict(case=case, engine=label, rate=out["rate"], peak=out["peak"], over_setup=out["peak"] - out["base"],
                             load=f"{out['load']:.2f}", compile_seconds=out.get("first_call") if engine == "compiled" else None))
        ours = rates.get("compiled", rates.get("eager"))
        for other in ("lenstronomy", "caustics"):
            if ours and other in rates: print(f"{'':26s} deeplense / {other}: {ours / rates[other]:.1f}x")
        for r in rows:
            if r["case"] == case and r["engine"].startswith("deeplense") and "lenstronomy" in rates: r["ratio"] = r["rate"] / rates["lenstronomy"]
        if case == "model_i, supersampling 1": lenstronomy_model_i = rates.get("lenstronomy")
    if args.command_n > 0: rows += compare_command(args.command_n, seconds, args.threads, lenstronomy_model_i, args.command_runs)
    if rows: write_results(rows, args.out, args.threads, seconds, argv)


if __name__ == "__main__":
    main()

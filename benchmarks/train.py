"""Training and inference speed of every DeepLense model on this machine, side by side.

Times a training step (forward, cross-entropy, backward, Adam) and an inference step (eval mode, no_grad) on
random images, and prints images/s for each model of `deeplense.models.MODEL_NAMES`, the DeepLense reference
steerable CNN (C4 and C8), and our equivariant networks exported to plain torch, with the ratio of ours to the
reference of the same group. Beside the wall-clock rate it prints images per CPU-second of this process (all
threads), which other jobs on a shared machine disturb much less; the ratios to the reference use it. The load
average is printed beside every line.

    python -m benchmarks.train                      # full comparison, 64x64, batch 32, 1 band, 3 classes
    python -m benchmarks.train --quick              # a quick look: 2 timed steps, the reference 1 step of 8 images
    python -m benchmarks.train --threads 1          # per-CPU-second rates that a loaded machine disturbs least
    python -m benchmarks.train --models c4 c8 --no-reference --steps 10
"""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

from deeplense.cli import FullNameParser
from deeplense.core import get_device
from deeplense.models import MODEL_NAMES, build_model, deeplense_reference_equivariant, export_model


def images_per_second(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int,
                      train: bool) -> tuple[float, float]:
    "Images per wall-clock second and per CPU-second of training (or inference) steps, after a warm-up step."
    model.train(train)
    opt = torch.optim.Adam(model.parameters(), 1e-3) if train else None

    def step():
        if train:
            opt.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            opt.step()
        else:
            with torch.no_grad(): model(images)
        if images.device.type == "cuda": torch.cuda.synchronize(images.device)

    step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps): step()
    n = steps * len(images)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main(argv: list[str] | None = None):
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument("--size", type=int, default=64, help="image side [pixels]")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=1, help="image bands")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="timed steps per model (after one warm-up step)")
    p.add_argument("--reference-batch", type=int, default=None,
                   help="batch for the slow reference network (default: --batch)")
    p.add_argument("--reference-steps", type=int, default=None, help="timed steps of the reference (default: --steps)")
    p.add_argument("--no-reference", action="store_true", help="skip the DeepLense reference network")
    p.add_argument("--quick", action="store_true", help="2 timed steps; the reference: 1 step of 8 images")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); 1 makes the per-CPU-second rates robust to load")
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    if a.quick: a.steps, a.reference_steps, a.reference_batch = 2, a.reference_steps or 1, a.reference_batch or 8
    if a.threads: torch.set_num_threads(a.threads)
    device = get_device(a.device)
    gen = torch.Generator().manual_seed(0)

    def batch(n):
        x = torch.randn(n, a.channels, a.size, a.size, generator=gen).to(device)
        return x, torch.randint(0, a.classes, (n,), generator=gen).to(device)

    print(f"{a.size}x{a.size}, {a.channels} band(s), {a.classes} classes, batch {a.batch}, {a.steps} timed steps, "
          f"device {device}, {torch.get_num_threads()} threads")
    print("images/s, wall clock (per CPU-second); ratios to the reference per CPU-second")
    print(f"{'model':<16}{'train':>18}{'inference':>18}{'exported':>18}  {'vs reference: train, infer':<28}load")
    fmt = lambda r: f"{r[0]:>8.1f} ({r[1]:>7.1f})" if r else " " * 18
    reference = {}
    if not a.no_reference:
        for g in ("c4", "c8"):
            x, y = batch(a.reference_batch or a.batch)
            m = deeplense_reference_equivariant(g, a.channels, a.classes).to(device)
            steps = a.reference_steps or a.steps
            reference[g] = tr, inf = images_per_second(m, x, y, steps, True), images_per_second(m, x, y, steps, False)
            print(f"{'reference_' + g:<16}{fmt(tr)}{fmt(inf)}{fmt(None)}  {'':<28}{os.getloadavg()[0]:.2f}", flush=True)
    for name in a.models:
        x, y = batch(a.batch)
        m = build_model(name, a.channels, a.classes).to(device)
        tr, inf = images_per_second(m, x, y, a.steps, True), images_per_second(m, x, y, a.steps, False)
        ex = images_per_second(export_model(m), x, y, a.steps, False) if name in ("c4", "c8", "d4", "d8") else None
        ref = reference.get(name)
        ratio = f"{tr[1] / ref[0][1]:.0f}x, {max(inf[1], ex[1]) / ref[1][1]:.0f}x" if ref else ""
        print(f"{name:<16}{fmt(tr)}{fmt(inf)}{fmt(ex)}  {ratio:<28}{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()

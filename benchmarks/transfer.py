"""Cross-evaluate the networks of a `results.py` work folder: each finished network scored on the test rows of every data set
of the same classes, e.g. a network trained on `model_ii` (one host, one shear, one source size) on `model_ii_varied`
(all of them drawn per image, tNFW subhalos), and back.

    python -m benchmarks.transfer --work results_work --scale cpu --datasets model_ii model_ii_varied model_iii model_iii_varied

The rows (test set = the network's held-out test rows of its own file; the same row numbers of the other files,
which it never saw) go to transfer_{scale}.csv and .md in `--out`, beside `results.py`'s table.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import torch

from deeplense.cli import FullNameParser
from deeplense.core import hardware
from deeplense.formats import read_info
from deeplense.evaluate import evaluate

from benchmarks.common import RESULTS, command_line, hardware_sentence, load, write_tables
from benchmarks.results import SCALES

COLUMNS = {"trained_on": ("trained on", "{}"), "model": ("network", "{}"), "tested_on": ("tested on", "{}"),
           "test_images": ("test images", "{:,}"), "macro_auc": ("macro AUC", "{:.4f}"), "accuracy": ("accuracy", "{:.3f}"),
           "load": ("load", "{}")}


def data_file(work: Path, dataset: str, scale: str) -> Path:
    "The simulated file of `dataset` in `work` (made by results.py)."
    files = sorted((work / "data").glob(f"{dataset}-{scale}-n*-seed*.h5"))
    if len(files) != 1: raise FileNotFoundError(f"expected one {dataset}-{scale}-*.h5 in {work / 'data'}, found {files}")
    return files[0]


def main(argv: list | None = None) -> list:
    p = FullNameParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=SCALES, required=True)
    p.add_argument("--datasets", nargs="+", required=True, help="data sets whose networks and test rows to cross")
    p.add_argument("--work", type=Path, default=Path("results_work"), help="results.py's work folder")
    p.add_argument("--out", type=Path, default=RESULTS, help="where transfer_SCALE.csv and .md go")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--note", default=None, help="a remark printed above the table")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    command = command_line("transfer", argv)
    files = {d: data_file(a.work, d, a.scale) for d in a.datasets}
    rows = []
    for trained in a.datasets:
        for checkpoint in sorted(r.with_name("best.pt") for r in (a.work / "runs" / a.scale / trained).glob("*/row.json")):
            for tested, path in files.items():
                if read_info(path).class_names != read_info(files[trained]).class_names: continue
                before = load()
                metrics = evaluate(checkpoint, path, checkpoint.parent / "transfer" / tested, indices="test" if tested == trained else None,
                                   device="cpu",
                                   n_equivariance=2)
                rows.append(dict(trained_on=trained, model=checkpoint.parent.name, tested_on=tested, test_images=metrics["n"],
                                 macro_auc=round(metrics["auc_macro"], 4), accuracy=round(metrics["accuracy"], 4),
                                 load=before, command=command,
                                 finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
                print(f"{trained:<18} {checkpoint.parent.name:<28} on {tested:<18} macro AUC {rows[-1]['macro_auc']:.4f}  "
                      f"accuracy {rows[-1]['accuracy']:.3f}", flush=True)
    method = (hardware_sentence(hardware(torch.device("cpu"))) + " Each network of results.py's table (its best "
              "checkpoint) scores the test rows of every data set with the same classes: its own held-out rows, and the "
              "same row numbers of the other files, which it never saw.")
    write_tables(rows, a.out, f"transfer_{a.scale}", f"Transfer between data sets, `{a.scale}` scale", a.note, method,
                 COLUMNS, "")
    return rows


if __name__ == "__main__":
    main()

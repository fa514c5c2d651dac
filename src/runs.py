"""The runs table: every training run under logs/, and each recipe's mean and spread over seeds.

    python -m src.runs                       # all runs under logs/
    python -m src.runs --logs other/logs --markdown

Reads each run directory that `python -m src.train fit` wrote (config.yaml, environment.yaml and
results.yaml). One row per run: recipe, seed, epochs, precision, test accuracy, best validation
accuracy, fit time and the CPU or GPU it ran on. Then one row per recipe, epochs, precision and
hardware: mean ± sd of the test accuracy, its minimum, the mean best validation accuracy (the figure
that may choose between recipes: the test set never does) and the number of runs. Runs that were
interrupted or never tested are listed and marked, never averaged; a resumed run's accuracy counts
but its fit time (one session's) does not. Runs of one recipe whose saved settings differ (a config
file edited between them) are told apart by those settings: `default[model.weight_decay=0.0005]`.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

import yaml


def _yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {} if path.is_file() else {}
    except (OSError, yaml.YAMLError):
        return {}


# Settings that do not change what a run learns: where it reads and writes, and the columns the table
# shows anyway (seed, epochs, precision). Any other `--key value`, or saved config value, is part of the recipe.
NEUTRAL = ("config", "seed_everything", "ckpt_path", "trainer.max_epochs", "trainer.precision", "trainer.logger",
           "trainer.default_root_dir", "trainer.enable_progress_bar", "data.data_dir", "data.download")


def neutral(key: str) -> bool:
    """Whether a setting is, or lies under, a NEUTRAL key (as `trainer.logger.init_args.save_dir` does)."""
    return any(key == k or key.startswith(k + ".") for k in NEUTRAL)


def recipe_name(configs: list[str], command: str = "") -> str:
    """`--config configs/fast.yaml` -> "fast"; no --config -> "default" (configs/default.yaml alone). Other
    settings given on the command line follow it, so that such runs are not averaged with the recipe's:
    `fit --model.channels [8,16,32,64]` -> "default+model.channels=[8,16,32,64]"."""
    name = Path(configs[-1]).stem if configs else "default"
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = words[words.index("fit") + 1:] if "fit" in words else []
    overrides, i = [], 0
    while i < len(words):
        key, eq, value = words[i].partition("=")
        if key.startswith("--"):
            if not eq and i + 1 < len(words) and not words[i + 1].startswith("--"):
                value, i = words[i + 1], i + 1
            key = key[2:]
            if not neutral(key):
                overrides.append(f"{key}={value.replace(' ', '')}")
        i += 1
    return "+".join([name, *overrides])


def settings(config: dict, prefix: str = "") -> dict:
    """A run's saved config.yaml as flat `section.key` settings, without the NEUTRAL ones."""
    flat = {}
    for key, value in config.items():
        key = prefix + str(key)
        if neutral(key):
            continue
        if isinstance(value, dict):
            flat.update(settings(value, key + "."))
        else:
            flat[key] = value
    return flat


def tell_apart(rows: list[dict]) -> list[dict]:
    """Append, in brackets, the settings in which runs of one recipe name differ, so that they are not averaged.

    A recipe's runs share a name, but a config file edited between them (the default's weight decay,
    say) leaves runs of two recipes under it. A setting that a run did not save (an older version of
    this code) shows as `?`; one that every run saving it saved with the same value is no difference.
    """
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["recipe"], []).append(row)
    for members in by_name.values():
        keys = sorted({k for r in members for k in r["settings"]})
        differing = [k for k in keys if len({repr(r["settings"][k]) for r in members if k in r["settings"]}) > 1]
        if differing:
            for r in members:
                shown = (str(r["settings"].get(k, "?")).replace(" ", "") for k in differing)
                r["recipe"] += "[" + ",".join(f"{k}={v}" for k, v in zip(differing, shown)) + "]"
    return rows


def read_run(run_dir: Path) -> dict | None:
    """One row of the table, or None for a directory that no `fit` wrote (e.g. a `test` run)."""
    env = _yaml(run_dir / "environment.yaml")
    if not env:
        return None
    config, results = _yaml(run_dir / "config.yaml"), _yaml(run_dir / "results.yaml")
    status = "ok" if results else ("interrupted" if (run_dir / "checkpoints").is_dir() else "not tested")
    if results.get("resumed"):
        status = "resumed"
    return {
        "run": str(run_dir),
        "recipe": recipe_name(env.get("configs") or [], env.get("command") or ""),
        "seed": results.get("seed", config.get("seed_everything")),
        "epochs": results.get("epochs", config.get("trainer", {}).get("max_epochs")),
        "precision": str(results.get("precision", config.get("trainer", {}).get("precision", "?"))),
        "test_acc": results.get("test_acc"),
        "best_val_acc": results.get("best_val_acc"),
        "fit_seconds": results.get("fit_seconds"),
        "device": env.get("gpu") or env.get("cpu") or "?",
        "status": status,
        "settings": settings(config),
    }


def collect(logs: Path) -> list[dict]:
    dirs = sorted(logs.glob("*/*/"), key=lambda p: (p.parent.name, int(p.name.split("_")[-1]) if p.name.split("_")[-1].isdigit() else 0, p.name))
    return tell_apart([row for row in map(read_run, dirs) if row is not None])


def summarise(rows: list[dict]) -> list[dict]:
    """Per (recipe, epochs, precision, device): accuracy mean, sd, min, n over tested runs."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] in ("ok", "resumed") and row["test_acc"] is not None:
            groups.setdefault((row["recipe"], row["epochs"], row["precision"], row["device"]), []).append(row)
    out = []
    for (recipe, epochs, precision, device), members in groups.items():
        accs = [r["test_acc"] for r in members]
        vals = [r["best_val_acc"] for r in members if r["best_val_acc"] is not None]
        times = [r["fit_seconds"] for r in members if r["status"] == "ok" and r["fit_seconds"] is not None]
        out.append({
            "recipe": recipe, "epochs": epochs, "precision": precision, "device": device, "n": len(accs),
            "mean": statistics.fmean(accs), "min": min(accs),
            "sd": statistics.stdev(accs) if len(accs) > 1 else None,  # one run has no spread
            "val_mean": statistics.fmean(vals) if vals else None,
            "seeds": sorted(r["seed"] for r in members if r["seed"] is not None),
            "fit_seconds": statistics.fmean(times) if times else None,
            "fastest_fit_seconds": min(times) if times else None,  # on a shared machine, the closest to its speed
        })
    return out


def _pct(x, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%" if isinstance(x, (int, float)) else "-"


def _time(s) -> str:
    return "-" if s is None else f"{int(s // 60)}:{s % 60:04.1f}"


def render(rows: list[dict], summary: list[dict], markdown: bool = False) -> str:
    def table(header: list[str], body: list[list[str]]) -> list[str]:
        if markdown:
            return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]
        widths = [max(len(x) for x in col) for col in zip(header, *body)]
        return ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in [header, *body]]

    runs = table(["run", "recipe", "seed", "epochs", "precision", "test acc", "best val", "fit time", "device", "status"],
                 [[Path(r["run"]).name, r["recipe"], str(r["seed"]), str(r["epochs"]), r["precision"], _pct(r["test_acc"]),
                   _pct(r["best_val_acc"]), _time(r["fit_seconds"]), r["device"], r["status"]] for r in rows])
    recipes = table(["recipe", "epochs", "precision", "test acc mean ± sd", "min", "best val mean", "n", "seeds",
                     "mean fit time", "fastest fit", "device"],
                    [[s["recipe"], str(s["epochs"]), s["precision"],
                      _pct(s["mean"]) if s["sd"] is None else f"{100 * s['mean']:.2f} ± {100 * s['sd']:.2f}%",
                      _pct(s["min"]), _pct(s["val_mean"], 3), str(s["n"]), ",".join(map(str, s["seeds"])), _time(s["fit_seconds"]),
                      _time(s["fastest_fit_seconds"]), s["device"]]
                     for s in summary])
    return "\n".join([*runs, "", *recipes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"), help="where the runs are (default: %(default)s)")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables, to paste into a README")
    args = parser.parse_args(argv)
    rows = collect(args.logs)
    if not rows:
        print(f"error: no training runs under {args.logs}/: train one with `python -m src.train fit`", file=sys.stderr)
        return 1
    print(render(rows, summarise(rows), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())

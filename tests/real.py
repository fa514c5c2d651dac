"""Real photos and scans of handwritten digits, read by export/predict.py: accuracy per kind, ink and source.

    python -m tests.real ../shared/real-digits --model artifacts/mnist.onnx
    python -m tests.real ../shared/real-digits --model artifacts/mnist.onnx --markdown --explain /tmp/misses

The folder holds manifest.tsv: tab-separated, one header line, at least the columns file, label, kind,
background, ink and repo, `file` relative to the folder (as in ../shared/real-digits, see its README).
Single digits (a label of one character) are classified by DigitClassifier (one thread); "no digit found"
is a miss answered "none". Numbers (a label of several digits) are read only when the classifier has a
`read(path)` method returning a dict with a "number" key, compared as a string to the label; otherwise
they are counted and skipped. The table gives the accuracy overall and per kind, ink and source
repository, then every miss: file, label, answer (digit and confidence, or why none). --explain DIR
writes, for each single digit missed, export.predict's --explain picture of what the model saw,
DIR/<file name>.png. Exit status 0 once the table is printed (however many misses), 2 if the folder,
its manifest or the model cannot be used.

From tests: rows = evaluate(model, folder); summarise(rows) -> [(group, n, correct)]; misses(rows).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

COLUMNS = ("file", "label", "kind", "background", "ink", "repo")
GROUPS = ("kind", "ink", "repo")  # per-group accuracy, in this order, after the overall line


class ManifestError(Exception):
    """The folder or its manifest cannot be used; str() is the reason, one line."""


def load_manifest(folder) -> list[dict]:
    """manifest.tsv of `folder` -> one dict per line (its columns, and "path", the file's full path)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: no such folder")
    manifest = folder / "manifest.tsv"
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no manifest (manifest.tsv with columns {', '.join(COLUMNS)})")
    with open(manifest, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{manifest}: missing column(s) {', '.join(missing)}")
        entries = [dict(row) for row in reader if (row.get("file") or "").strip()]
    for e in entries:
        e["label"] = (e["label"] or "").strip()
        e["path"] = folder / e["file"]
    return entries


def evaluate(model, folder, explain=None) -> list[dict]:
    """Classify every entry of `folder`'s manifest -> one row per entry: its manifest columns, and
    "number" (several digits), "answer" (the digit or number read, "none" if none, None if not read),
    "confidence" (single digits), "error" (why none), "correct" (True, False, or None when not read)."""
    from export.predict import DigitClassifier, ImageError, explain_panel

    entries = load_manifest(folder)
    clf = DigitClassifier(model, threads=1)
    read = getattr(clf, "read", None)
    if explain is not None:
        Path(explain).mkdir(parents=True, exist_ok=True)
    rows = []
    for e in entries:
        row = {**e, "number": len(e["label"]) > 1, "answer": None, "confidence": None, "error": None, "correct": None}
        if row["number"]:
            if callable(read):
                try:
                    row["answer"] = str(read(e["path"])["number"])
                except ImageError as err:
                    row["answer"], row["error"] = "none", str(err)
                row["correct"] = row["answer"] == e["label"]
        else:
            try:
                p = clf.predict([e["path"]])[0]
                row["answer"], row["confidence"] = p.label, p.confidence
            except ImageError as err:
                row["answer"], row["error"] = "none", str(err)
            row["correct"] = row["answer"] == e["label"]
            if explain is not None and not row["correct"]:
                explain_panel(clf, e["path"], f"label {e['label']}").save(Path(explain) / f"{Path(e['file']).name}.png")
        rows.append(row)
    return rows


def summarise(rows) -> list[tuple[str, int, int]]:
    """(group, n, correct) over the single digits: all of them, then per kind, ink and repo (sorted);
    then ("numbers", n, correct) over the numbers read, if any were."""
    single = [r for r in rows if not r["number"]]
    out = [("all single digits", len(single), sum(r["correct"] for r in single))]
    for key in GROUPS:
        for value in sorted({r[key] for r in single}):
            group = [r for r in single if r[key] == value]
            out.append((f"{key}: {value}", len(group), sum(r["correct"] for r in group)))
    read = [r for r in rows if r["number"] and r["correct"] is not None]
    if read:
        out.append(("numbers", len(read), sum(r["correct"] for r in read)))
    return out


def misses(rows) -> list[dict]:
    """The rows read wrong (single digits, and numbers where they were read), in manifest order."""
    return [r for r in rows if r["correct"] is False]


def answer_text(row) -> str:
    if row["answer"] == "none":
        return f"none ({row['error']})"
    return row["answer"] if row["confidence"] is None else f"{row['answer']} ({row['confidence']:.2f})"


def report(rows, markdown: bool = False) -> str:
    """The accuracy table, the numbers line, and the misses, as text or markdown."""
    def table(header, body, right=()):
        if markdown:
            rule = ["---:" if i in right else "---" for i in range(len(header))]
            return ["| " + " | ".join(map(str, r)) + " |" for r in [header, rule, *body]]
        cells = [header] + [list(map(str, r)) for r in body]
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        pad = [str.rjust if i in right else str.ljust for i in range(len(header))]
        return ["  ".join(pad[i](c[i], widths[i]) for i in range(len(header))).rstrip() for c in cells]

    out = table(["group", "n", "correct", "accuracy"],
                [(g, n, ok, f"{100 * ok / n:.1f}%" if n else "-") for g, n, ok in summarise(rows)], right=(1, 2, 3))
    numbers = [r for r in rows if r["number"]]
    if numbers and all(r["correct"] is None for r in numbers):
        out += ["", f"numbers: {len(numbers)} file{'s' * (len(numbers) > 1)}, not read by the single-digit predictor"]
    wrong = misses(rows)
    out += ["", f"misses: {len(wrong)}"]
    if wrong:
        out += table(["file", "label", "answer"], [(r["file"], r["label"], answer_text(r)) for r in wrong])
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a folder with manifest.tsv, laid out like ../shared/real-digits")
    ap.add_argument("--model", required=True, help="an exported .onnx")
    ap.add_argument("--explain", type=Path, metavar="OUTDIR", help="write what the model saw for each miss here")
    ap.add_argument("--markdown", action="store_true", help="markdown tables")
    args = ap.parse_args(argv)
    from export import predict

    model_error = getattr(predict, "ModelError", ManifestError)
    try:
        rows = evaluate(args.model, args.folder, args.explain)
    except (ManifestError, model_error, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report(rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())

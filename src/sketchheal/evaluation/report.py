"""What an evaluation writes: markdown tables from the results, picture grids, strict JSON.

The tables are declared as lists of ``Column``s (a title, where the value sits in a row, how it is written), so a
new measure is one line in a list: ``Column("kept ink", "healing.kept_ink")``. A value missing from a row (an older
``results.json``) is written as "–".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sketchheal.evaluation.evalset import EvalSet, ModelRun, mask_label, safe_name
from sketchheal.sketch.render import corrupt, render_or_blank
from sketchheal.utils.fileio import atomic_write, write_png

DASH = "–"


# ----------------------------------------------------------------------------------------------------------------
# cells and columns


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def _pct(x: float | None) -> str:
    """A fraction as a percentage with 2 decimals ("–" when missing)."""
    return DASH if _missing(x) else f"{100 * x:.2f}"


def _g(x: float) -> str:
    return f"{x:g}"


def _f1(x: float) -> str:
    return f"{x:.1f}"


def _f3(x: float) -> str:
    return f"{x:.3f}"


def lookup(row: dict[str, Any], key: str | tuple[str, ...]) -> Any:
    """``row["a"]["b"]`` for key ``"a.b"`` (or ``("a", "b")``); None when any step is missing."""
    value: Any = row
    for part in key.split(".") if isinstance(key, str) else key:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(frozen=True)
class Column:
    """One table column: its ``title``, the ``key`` of its value in a row (dotted path, or a tuple of keys) and
    ``fmt``, which writes a present value (default: a fraction as a percentage). Missing, NaN or infinite: "–"."""

    title: str
    key: str | tuple[str, ...]
    fmt: Callable[[Any], str] = _pct

    def cell(self, row: dict[str, Any]) -> str:
        value = lookup(row, self.key)
        return DASH if _missing(value) else self.fmt(value)


def table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[str]:
    """A markdown table: header, separator, one line per row."""
    lines = ["| " + " | ".join(c.title for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(c.cell(r) for c in columns) + " |" for r in rows]
    return lines


MASK = Column("mask", "mask", _g)
MODEL = Column("model", "model", str)

# Rows: one per mask level x model (a results row of that model plus "model").
HEALED_TO_ORIGINAL = (
    MASK, MODEL,
    Column("top-1", "healed.healed_to_original.top1"),
    Column("top-10", "healed.healed_to_original.top10"),
    Column("top-50", "healed.healed_to_original.top50"),
    Column("top-10 (pub.)", "healed.healed_to_original.top10_published"),
    Column("acc", "healed.accuracy"),
    Column("floor top-1", "no_healing.corrupted_to_original.top1"),
    Column("floor top-10", "no_healing.corrupted_to_original.top10"),
    Column("floor top-50", "no_healing.corrupted_to_original.top50"),
    Column("floor top-10 (pub.)", "no_healing.corrupted_to_original.top10_published"),
    Column("floor acc", "no_healing.accuracy"),
)
ORIGINAL_TO_HEALED = (
    MASK, MODEL,
    Column("top-1", "healed.original_to_healed.top1"),
    Column("top-10", "healed.original_to_healed.top10"),
    Column("top-50", "healed.original_to_healed.top50"),
    Column("top-10 (pub.)", "healed.original_to_healed.top10_published"),
    Column("floor top-1", "no_healing.original_to_corrupted.top1"),
    Column("floor top-10", "no_healing.original_to_corrupted.top10"),
    Column("floor top-50", "no_healing.original_to_corrupted.top50"),
    Column("floor top-10 (pub.)", "no_healing.original_to_corrupted.top10_published"),
)
HEALED_SKETCHES = (
    MASK, MODEL,
    Column("erased", "erased_fraction"),
    Column("empty healed", "healed_sketches.empty", str),
    Column("mean points", "healed_sketches.mean_points", _f1),
)
# Rows: one per erase kind x mask level x model x mode (a "healing" entry plus "model" and "healing", the mode's
# name for people): the ink measures beside the published retrieval and recognition, the floor in the last row.
HEALING = (
    Column("erase", "erase", str),
    MASK, MODEL,
    Column("healing", "healing", str),
    Column("erased-ink recall", "ink.recall"),
    Column("added-ink precision", "ink.precision"),
    Column("kept ink", "ink.kept"),
    Column("top-1", "healed_to_original.top1"),
    Column("top-10", "healed_to_original.top10"),
    Column("top-10 (pub.)", "healed_to_original.top10_published"),
    Column("orig. -> healed top-1", "original_to_healed.top1"),
    Column("acc", "accuracy"),
    Column("ms / sketch", "seconds_per_sketch", lambda x: f"{1000 * x:.0f}"),
)
HEALING_NAMES = {"complete": "complete", "redraw": "redraw", "floor": "none (floor)"}
# Rows: one per model (its decoder_check plus "model").
DECODER_CHECK = (
    MODEL,
    Column("offset NLL, own code", "offset_nll_own", _f3),
    Column("offset NLL, other code", "offset_nll_other", _f3),
    Column("code gain", "code_gain", _f3),
    Column("pen lifts drawn", "lift_recall"),
    Column("ends drawn", "end_recall"),
)
# Rows: one per category x mask level of one model (a per_category entry plus "category", "mask", "ceiling").
PER_CATEGORY = (
    Column("category", "category", str),
    Column("n", "n", str),
    MASK,
    Column("top-1", "healed.top1"),
    Column("top-10", "healed.top10"),
    Column("top-50", "healed.top50"),
    Column("top-10 (pub.)", "healed.top10_published"),
    Column("acc", "healed.accuracy"),
    Column("floor top-1", "no_healing.top1"),
    Column("floor top-10", "no_healing.top10"),
    Column("floor acc", "no_healing.accuracy"),
    Column("ceiling acc", "ceiling"),
)


def _top1_top10(t: dict[str, Any] | None) -> str:
    t = t or {}
    return f"{_pct(t.get('top1'))} / {_pct(t.get('top10'))}"


# ----------------------------------------------------------------------------------------------------------------
# results.md and per_category.md


def _mask_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per mask level x model: the model's results row at that level, plus the model's name."""
    rows = []
    for p in results["settings"]["masks"]:
        for m in results["models"]:
            r = next((r for r in m["results"] if r["mask"] == p), None)
            if r is not None:
                rows.append({**r, "model": m["name"]})
    return rows


def _healing_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per erase kind x mask level x model x mode (floor last), from each model's ``healing`` list."""
    rows = []
    erase_kinds = results["settings"].get("erase") or sorted({h["erase"] for m in results["models"]
                                                              for h in m.get("healing") or []})
    for kind in erase_kinds:
        for p in results["settings"]["masks"]:
            for m in results["models"]:
                for h in m.get("healing") or []:
                    if h["erase"] == kind and h["mask"] == p:
                        rows.append({**h, "model": m["name"], "healing": HEALING_NAMES.get(h["mode"], h["mode"])})
    return rows


def _header(results: dict[str, Any]) -> list[str]:
    s, d = results["settings"], results["data"]
    n_cat = len(d["n_per_category"])
    lines = [
        "# Sketch-healing evaluation",
        "",
        f"Split `{d['split']}` of {n_cat} categor{'y' if n_cat == 1 else 'ies'}"
        f", {d['n_sketches']} sketches (<= {d['max_seq_len_filter']} points"
        + (f", first {d['max_per_category']} per category" if d["max_per_category"] else "") + "). "
        f"Masks: {', '.join(f'{p:g}' for p in s['masks'])} (patch candidates erased with probability p; fixed table "
        f"`{d['mask_table']['file']}`, nested across p). Healing: z = encoder mean of the corrupted image, "
        f"temperature {s['temperature']:g}{' (greedy)' if s['greedy'] else ''}, seed {s['seed']}"
        + (f"; best of {s['candidates']} candidates by ink agreement with the corrupted input"
           if s.get("candidates", 1) > 1 else "") + ".",
        "",
        "All numbers are percentages. **top-k**: the query's own counterpart is among its k nearest codes "
        "(Euclidean, encoder means). **top-10 (pub.)**: the published scripts' off-by-one top-10, which looks at "
        "the first 9 neighbours only. **acc**: recognition accuracy of the Sketch-a-Net classifier. "
        "**floor**: the same metric for the corrupted input without healing.",
        "",
    ]
    for m in results["models"]:
        ceiling = (m.get("classifier_ceiling") or {}).get("accuracy")
        n = max(1, m["n_evaluated"])
        lines.append(f"- `{m['name']}`: {m['n_evaluated']} sketches evaluated ({m['n_excluded_too_long']} longer than "
                     f"its max_seq_len {m['max_seq_len']} left out); image {m['image_size']} px, render "
                     f"`{m['render_mode']}`; chance top-1/10/50 = {_pct(1 / n)}/{_pct(min(1, 10 / n))}/"
                     f"{_pct(min(1, 50 / n))}"
                     + (f"; classifier on uncorrupted sketches (ceiling): {_pct(ceiling)}" if ceiling is not None
                        else ""))
    if results.get("classifier") is None:
        lines.append(f"- recognition accuracy: not computed ({results.get('accuracy_note', 'no classifier given')})")
    return lines


def results_markdown(results: dict[str, Any]) -> str:
    """The side-by-side tables of ``results.json`` as markdown (percentages)."""
    rows = _mask_rows(results)
    lines = _header(results)
    healing = _healing_rows(results)
    if healing:
        ink = results["settings"].get("ink") or {}
        lines += ["", "## Healing: completion, redraw and the floor", "",
                  "Ink measures at {} px in the original's frame, 1-px lines, tolerance {:g} px (docs/evaluation.md): "
                  "**erased-ink recall** = share of the original's ink that the erasure removed lying within the "
                  "tolerance of the healed ink; **added-ink precision** = share of the healed ink away from the "
                  "input's ink lying within the tolerance of the original's ink; **kept ink** = share of the input's "
                  "ink within the tolerance of the healed ink. Retrieval (top-k: healed -> originals; orig. -> "
                  "healed: the other direction) and **acc** re-encode the healed drawing rendered the published "
                  "way. **erase**: raster = the published patch masks on the image; vector = the same squares "
                  "erased from the strokes. **none (floor)**: the corrupted input itself (recall 0, kept 100, "
                  "nothing added).".format(ink.get("size", 128), ink.get("tolerance_px", 2.0)), ""]
        lines += table(HEALING, healing)
    if any("healed" in r for r in rows):
        lines += ["", "## The published protocol (raster masks, redraw)", "",
                  "### Healed -> originals (query: re-encoded healed sketch; gallery: uncorrupted sketches)", ""]
        lines += table(HEALED_TO_ORIGINAL, rows)
        lines += ["", "### Originals -> healed (query: uncorrupted sketch; gallery: re-encoded healed sketches)", ""]
        lines += table(ORIGINAL_TO_HEALED, rows)
        lines += ["", "Erased fraction of patch candidates and healed-sketch statistics:", ""]
        lines += table(HEALED_SKETCHES, rows)
    checks = [{**m["decoder_check"], "model": m["name"]} for m in results["models"] if m.get("decoder_check")]
    if checks:
        lines += ["", "Does the decoder read the code? Teacher forcing on the uncorrupted sketches: offset NLL "
                      "(nats per point) with each sketch's own code and with another sketch's code, and the share of "
                      "true pen lifts / sketch ends that the near-greedy sampler would draw (argmax pen state). "
                      "A code gain near 0 means healing cannot follow its input.", ""]
        lines += table(DECODER_CHECK, checks)
    stab = [m for m in results["models"] if m.get("code_stability")]
    if stab:
        names = [t["name"] for t in stab[0]["code_stability"]]
        columns = [MODEL] + [Column(name, ("tests", name), _top1_top10) for name in names]
        stab_rows = [{"model": m["name"], "tests": {t["name"]: t for t in m["code_stability"]}} for m in stab]
        lines += ["", "How stable are the codes? Each uncorrupted sketch slightly deformed (rotated, one axis "
                      "shrunk, its offsets wobbled), re-rendered and encoded, retrieving its own original: top-1 / "
                      "top-10. A healed sketch is never exact; codes that such small changes already move cannot "
                      "find the original from a good healing either.", ""]
        lines += table(columns, stab_rows)
    lines += ["", "These numbers follow the protocol of `docs/evaluation.md`; numbers from papers with other "
                  "protocols (patch size, mask order, random source, top-k definition, classifier) are not "
                  "directly comparable.", ""]
    return "\n".join(lines)


def per_category_markdown(results: dict[str, Any], per_category: dict[str, Any]) -> str:
    """Per category: healed top-1 / top-10 / acc and the floor, one table per model."""
    lines = ["# Per-category results", "", "Percentages; healed -> originals retrieval within the whole gallery, "
             "grouped by the query's category. floor = no healing.", ""]
    for m in results["models"]:
        ceiling = (m.get("classifier_ceiling") or {}).get("per_category") or {}
        rows = [{**e, "category": cat, "mask": p, "ceiling": ceiling.get(cat)}
                for cat, by_mask in per_category[m["name"]].items()
                for p in results["settings"]["masks"] if (e := by_mask.get(mask_label(p))) is not None]
        lines += [f"## {m['name']}", ""] + table(PER_CATEGORY, rows) + [""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# picture grids


def grid_image(corrupted: list[np.ndarray], healed: list[np.ndarray], clean: list[np.ndarray],
               pad: int = 2) -> np.ndarray:
    """Rows corrupted | healed | original, one column per sketch (each (N, N) in [-1, 1]) -> uint8 image,
    black ink on white, grey separators."""
    if not clean:
        raise ValueError("no sketches for the grid")
    n = clean[0].shape[0]
    cols = len(clean)
    h, w = 3 * n + 4 * pad, cols * n + (cols + 1) * pad
    out = np.full((h, w), 160, np.uint8)
    for r, row in enumerate((corrupted, healed, clean)):
        for c, img in enumerate(row):
            y, x = pad + r * (n + pad), pad + c * (n + pad)
            out[y:y + n, x:x + n] = np.clip((1 - (img + 1) / 2) * 255, 0, 255).astype(np.uint8)
    return out


def write_grids(out_dir: Path, name: str, run: ModelRun, ev: EvalSet, ps: Sequence[float], mode: str,
                size: int = 128) -> list[str]:
    """One PNG per category and mask level, ``grids/<model>/<p>/<category>.png``: rows corrupted | healed |
    original, drawn at ``size`` px with the model's render mode and the same masks. Returns the relative paths."""
    written: list[str] = []
    if not run.healed_grid:  # redraw on the raster masks not evaluated
        return written
    for c, positions in sorted(run.grid.items()):
        if not positions:  # grid_count 0
            continue
        sids = [int(run.ids[k]) for k in positions]
        clean = [render_or_blank(ev.sketches[sid], size, mode) for sid in sids]
        for j, p in enumerate(ps):
            corrupted = []
            for sid, img in zip(sids, clean):
                try:
                    corrupted.append(corrupt(ev.sketches[sid], ev.masks.uniforms(sid), p, size=size,
                                             mode=mode).corrupted)
                except ValueError:  # a sketch the renderer cannot draw: its (blank) clean image
                    corrupted.append(img)
            healed = [render_or_blank(s, size, mode) for s in run.healed_grid[j][c]]
            rel = Path("grids") / safe_name(name) / mask_label(p) / f"{safe_name(ev.categories[c])}.png"
            write_png(out_dir / rel, grid_image(corrupted, healed, clean))
            written.append(str(rel))
    return written


# ----------------------------------------------------------------------------------------------------------------
# files


def write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)

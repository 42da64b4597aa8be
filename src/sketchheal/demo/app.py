"""``sketchheal demo``: a local web page (Gradio) to draw or pick a sketch, erase parts of it, and heal it.

The page runs offline: analytics and version checks are switched off before Gradio is imported, and the theme uses
system fonts only. Gradio is an optional dependency (``pip install 'sketchheal[demo]'``) and is imported only
when the page is built, so ``sketchheal demo`` exists (and says what to install) without it.

The work is done by plain functions that need no browser and no Gradio:

- :func:`heal_sketch`: a canvas value (``gr.Sketchpad``'s dict with ``composite``, or an image array) and the
  page's settings -> :class:`DemoResult` (the healed SVG markup, SVG / PNG files, the model's input image).
- :func:`list_examples` / :func:`example_canvas`: the shipped examples and their pictures for the canvas.

:func:`build_app` wires them into a ``gr.Blocks`` page and :func:`launch_demo` serves it.
"""

from __future__ import annotations

import argparse
import atexit
import html
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from sketchheal.inference.candidates import DEFAULT_CANDIDATES
from sketchheal.sketch.image import load_image
from sketchheal.sketch.io import IMAGE_SUFFIXES, SKETCH_SUFFIXES
from sketchheal.sketch.viz import draw_strokes
from sketchheal.utils.paths import EXAMPLES_DIR

if TYPE_CHECKING:  # pragma: no cover
    from sketchheal.inference.heal import Healer, HealResult

__all__ = ["DemoResult", "heal_sketch", "canvas_to_image", "list_examples", "example_canvas", "build_app",
           "serve", "launch_demo", "configure_offline", "register", "INSTALL_HINT"]

INSTALL_HINT = "the demo needs Gradio: pip install 'sketchheal[demo]'"
# Environment set before Gradio (and huggingface_hub, which it imports) is loaded: no analytics, no version
# check, no telemetry, no hub requests.
OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
}
# Side of the square drawing canvas, in canvas pixels.
CANVAS_SIZE = 512
# Brush radius in canvas pixels: a ~8 px pen on the 512-px canvas (the model redraws every input with its own
# line width, so this only has to look right).
BRUSH_RADIUS = 4
# Black ink, plus white paint: Gradio 6.31's eraser removes strokes drawn on the canvas but not a loaded
# example, which can be painted over in white instead.
BRUSH_COLORS = ["#000000", "#ffffff"]
# Side of each healed SVG / PNG.
RESULT_SIZE = 256
MAX_SAMPLES = 8
# Most candidates per sample (best of K by ink agreement with the input, sketchheal.inference.candidates).
MAX_CANDIDATES = 16
# A loaded vector example counts as unchanged (and is healed from its strokes) while at most this fraction of the
# canvas pixels differ from its picture by more than DIFF_LEVEL grey levels.
UNCHANGED_FRACTION = 1e-4
DIFF_LEVEL = 96
# Per-call output folders kept on disk (older ones are removed).
KEEP_OUTPUTS = 64

CANVAS_ID = "sketchheal-canvas"
# Runs in the browser on page load: select the brush so that the user can draw at once (Gradio's canvas starts
# with no tool selected). Waits for the canvas toolbar; clicks the Brush button unless it is already active.
SELECT_BRUSH_JS = f"""
() => {{
  let tries = 0;
  const pick = () => {{
    const root = document.getElementById("{CANVAS_ID}");
    const brush = root && (root.querySelector('button[aria-label="Brush"]')
                           || root.querySelector('.toolbar-wrap button'));
    if (!brush) {{ if (tries++ < 200) setTimeout(pick, 50); return; }}
    if (!brush.classList.contains("highlight")) brush.click();
  }};
  pick();
}}
"""
CSS = """
.sh-results { display: flex; flex-wrap: wrap; gap: 12px; }
.sh-sample { margin: 0; text-align: center; }
.sh-sample svg { width: 256px; height: 256px; border: 1px solid #d0d0d0; border-radius: 6px; background: white; }
.sh-sample figcaption { font-size: 0.85em; color: #666; }
.sh-note { color: #666; }
"""
INTRO = (
    "Draw a sketch (or pick an example), erase parts of it with the eraser or the white brush, or let the "
    "published patch masking erase squares at random (probability *p*). Press **Heal**: the model completes it "
    "as a vector drawing."
)


# ============================================================================================== handlers


@dataclass
class DemoResult:
    """What one press of Heal produces.

    html: markup showing every healed sample as an inline SVG (for ``gr.HTML``).
    svgs: the SVG documents, one per sample.
    svg_paths / png_paths: the same drawings written as files (for download), one per sample.
    input_image: ``(N, N) uint8`` black-on-white picture of what the model saw (after masking).
    source: "canvas" (the drawing was healed as an image) or the example file healed from its strokes.
    points: the number of points of each healed sample (0 when the model ended the sketch at once).
    """

    html: str
    svgs: list[str]
    svg_paths: list[Path]
    png_paths: list[Path]
    input_image: np.ndarray
    source: str = "canvas"
    points: list[int] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """All downloadable files: the SVGs, then the PNGs."""
        return [*self.svg_paths, *self.png_paths]


def canvas_to_image(value: Any) -> np.ndarray | None:
    """A canvas value -> ``(H, W) uint8`` grey picture (white paper 255), or None when there is nothing drawn.

    ``value``: ``gr.Sketchpad``'s dict (``composite``, else ``background`` + ``layers``) or an image array
    ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (uint8, or floats in [0, 1]). Transparent pixels count as
    white paper, whatever colour they hold.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        image = value.get("composite")
        if image is None:
            image = _flatten(value.get("background"), value.get("layers") or [])
        if image is None:
            return None
    else:
        image = value
    return _to_gray(np.asarray(image))


def _flatten(background: Any, layers: list[Any]) -> np.ndarray | None:
    """Composite RGBA ``layers`` over ``background`` (both optional) onto white paper."""
    parts = [np.asarray(p) for p in [background, *layers] if p is not None]
    if not parts:
        return None
    h, w = parts[0].shape[:2]
    out = np.full((h, w), 255.0, np.float32)
    for p in parts:
        if p.shape[:2] != (h, w):
            continue
        rgba = _as_rgba(p)
        alpha = rgba[..., 3] / 255.0
        out = out * (1 - alpha) + _luma(rgba[..., :3]) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _as_rgba(a: np.ndarray) -> np.ndarray:
    """Any ``(H, W[, C])`` image -> ``(H, W, 4) float32`` in 0..255."""
    a = a.astype(np.float32)
    if a.size and a.max() <= 1.0:
        a = a * 255.0
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255.0, np.float32)], axis=2)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"a canvas image must have shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    return a


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"a canvas image must have shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    rgba = _as_rgba(image)
    alpha = rgba[..., 3] / 255.0
    gray = 255.0 * (1 - alpha) + _luma(rgba[..., :3]) * alpha
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)


def has_ink(gray: np.ndarray | None) -> bool:
    """Whether a grey picture (white paper 255) holds any dark mark."""
    return gray is not None and bool((gray < 128).any())


def list_examples(folder: str | os.PathLike | None = None) -> list[Path]:
    """The example sketches shipped with the package (images and vector files), sorted; [] when there are none."""
    folder = Path(folder) if folder is not None else EXAMPLES_DIR
    if not folder.is_dir():
        return []
    kinds = SKETCH_SUFFIXES + IMAGE_SUFFIXES
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in kinds)


def example_strokes(path: str | os.PathLike) -> np.ndarray | None:
    """The first sketch (stroke-3) of a vector example file, or None for an image file."""
    path = Path(path)
    if path.suffix.lower() not in SKETCH_SUFFIXES:
        return None
    from sketchheal.inference.heal import read_sketches

    return read_sketches(path, limit=1)[0]


def example_canvas(path: str | os.PathLike, size: int = CANVAS_SIZE) -> np.ndarray:
    """The picture of an example for the canvas: ``(size, size, 4) uint8`` RGBA, black ink on opaque white.

    Vector examples are drawn (fitted with a 5 % margin, a ~8 px pen at 512); images are scaled to fit and centred.
    """
    strokes = example_strokes(path)
    if strokes is not None:
        gray = draw_strokes(strokes, size, line_width=max(1, 2 * BRUSH_RADIUS * size // CANVAS_SIZE))
    else:
        gray = _letterbox(np.clip(load_image(path) * 255 + 0.5, 0, 255).astype(np.uint8), size)
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def _letterbox(gray: np.ndarray, size: int) -> np.ndarray:
    """Scale a grey picture to fit ``size`` x ``size`` (aspect kept) and centre it on white."""
    h, w = gray.shape
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.full((size, size), 255, np.uint8)
    y, x = (size - nh) // 2, (size - nw) // 2
    out[y:y + nh, x:x + nw] = small
    return out


def canvas_unchanged(gray: np.ndarray, example: str | os.PathLike) -> bool:
    """Whether the canvas still shows the vector example ``example`` as loaded (so it can be healed from its
    strokes, with the published patch candidates)."""
    if example_strokes(example) is None:
        return False
    h, w = gray.shape
    ref = example_canvas(example, CANVAS_SIZE)[..., 0]
    if (h, w) != ref.shape:
        ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
    differ = np.abs(gray.astype(np.int16) - ref.astype(np.int16)) > DIFF_LEVEL
    return float(differ.mean()) <= UNCHANGED_FRACTION


def heal_sketch(value: Any, *, healer: Healer, out_dir: str | os.PathLike, mask: float = 0.0, seed: int = 0,
                temperature: float = 0.1, samples: int = 1, example: str | os.PathLike | None = None,
                size: int = RESULT_SIZE, candidates: int = DEFAULT_CANDIDATES) -> DemoResult:
    """Heal what is on the canvas; write each sample as SVG and PNG into ``out_dir``.

    ``value``: a canvas value (see :func:`canvas_to_image`). ``mask``: patch-erase probability ``p`` (0 = heal the
    drawing as it is). ``example``: the vector example last loaded into the canvas; while the canvas still shows it
    unchanged (and it is not longer than the model's ``max_seq_len``), it is healed from its strokes (published
    rendering and patch candidates), else the picture on the canvas is. ``candidates``: best of K per sample
    (``sketchheal.inference.heal``'s ``candidates``).
    Raises ``ValueError`` when the canvas is empty or the settings are out of range.
    """
    from sketchheal.inference.heal import heal

    samples = int(samples)
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    candidates = int(candidates)
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ValueError(f"candidates must be between 1 and {MAX_CANDIDATES}, got {candidates}")
    if not 0.0 <= float(mask) <= 1.0:
        raise ValueError(f"the masking probability p must be in [0, 1], got {mask}")
    gray = canvas_to_image(value)
    if not has_ink(gray):
        raise ValueError("the canvas is empty: draw a sketch (or pick an example) first")
    source = "canvas"
    inputs: np.ndarray = gray
    if example is not None and canvas_unchanged(gray, example):
        strokes = example_strokes(example)
        if strokes is not None and len(strokes) <= healer.max_seq_len:  # else heal its picture
            inputs, source = strokes, str(example)
    result = heal([inputs], model=healer, mask=float(mask) or None, seed=int(seed), temperature=float(temperature),
                  samples=samples, candidates=candidates)[0]
    return _package(result, Path(out_dir), source, size)


def _package(result: HealResult, out_dir: Path, source: str, size: int) -> DemoResult:
    """Write the samples of ``result`` as ``healed[_sK].svg/.png`` and build the page's markup."""
    paths = result.save(out_dir, "healed", formats=("svg", "png"))
    svg_paths = [p for p in paths if p.suffix == ".svg"]
    png_paths = [p for p in paths if p.suffix == ".png"]
    svgs = [result.to_svg(k, size=size) for k in range(len(result.healed))]
    points = [len(s) for s in result.healed]
    return DemoResult(html=results_html(svgs, points), svgs=svgs, svg_paths=svg_paths, png_paths=png_paths,
                      input_image=model_image_to_u8(result.input_image, size), source=source, points=points)


def model_image_to_u8(image: np.ndarray, size: int = RESULT_SIZE) -> np.ndarray:
    """A model input ``(N, N)`` (ink +1, paper -1) -> ``(size, size) uint8`` black on white, pixels kept sharp."""
    u8 = np.clip((1.0 - np.asarray(image, np.float32)) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(u8, (size, size), interpolation=cv2.INTER_NEAREST)


def results_html(svgs: list[str], points: list[int]) -> str:
    """Markup that shows each SVG inline with a caption (sample number, strokes, points)."""
    figures = []
    for k, (svg, n) in enumerate(zip(svgs, points)):
        strokes = svg.count("<path")
        what = f"{strokes} stroke{'s' if strokes != 1 else ''}, {n} points" if n else "empty: the model stopped at once"
        figures.append(f'<figure class="sh-sample" data-sample="{k}">{svg}'
                       f"<figcaption>sample {k + 1}: {html.escape(what)}</figcaption></figure>")
    return f'<div class="sh-results">{"".join(figures)}</div>'


# ============================================================================================== output folders


class OutputFolders:
    """Fresh folders for each press of Heal under one temporary root, pruned to the newest ``keep``, removed at
    exit."""

    def __init__(self, root: str | os.PathLike | None = None, keep: int = KEEP_OUTPUTS) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="sketchheal-demo-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.count = 0
        if root is None:
            atexit.register(shutil.rmtree, self.root, True)

    def new(self) -> Path:
        self.count += 1
        path = Path(tempfile.mkdtemp(prefix=f"{self.count:06d}-", dir=self.root))
        old = sorted(p for p in self.root.iterdir() if p.is_dir())[:-self.keep]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
        return path


# ============================================================================================== the page


def configure_offline() -> None:
    """Switch off Gradio's analytics and version check and Hugging Face hub requests (before importing gradio)."""
    os.environ.update(OFFLINE_ENV)


def gradio_available() -> bool:
    return importlib.util.find_spec("gradio") is not None


def _import_gradio():
    configure_offline()
    try:
        import gradio as gr
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "gradio":
            raise ModuleNotFoundError(INSTALL_HINT, name="gradio") from None
        raise
    return gr


def theme():
    """A Gradio theme with system fonts only (the default theme would fetch web fonts)."""
    gr = _import_gradio()
    return gr.themes.Base(
        primary_hue="orange", neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def _model_line(healer: Healer) -> str:
    cats = ", ".join(healer.categories[:6]) + (" ..." if len(healer.categories) > 6 else "")
    return (f"Model: `{healer.source}` ({healer.image_size} px input"
            + (f"; trained on {cats}" if cats else "") + ")")


def build_app(healer: Healer, *, outputs: OutputFolders | None = None,
              examples_dir: str | os.PathLike | None = None):
    """The demo page as a ``gr.Blocks``, not yet served (see :func:`serve`).

    ``outputs``: where each press of Heal writes its files (default: a temporary folder removed at exit).
    ``examples_dir``: the examples to offer (default: the package's ``EXAMPLES_DIR``; none is fine).
    """
    gr = _import_gradio()
    outputs = outputs or OutputFolders()
    examples = list_examples(examples_dir)
    by_name = {p.name: p for p in examples}

    def on_heal(value, mask, seed, temperature, samples, example_name, runs, candidates=DEFAULT_CANDIDATES):
        example = by_name.get(example_name) if example_name else None
        run = int(runs or 0) + 1  # per browser session
        start = time.perf_counter()
        try:
            res = heal_sketch(value, healer=healer, out_dir=outputs.new(), mask=float(mask or 0), seed=int(seed or 0),
                              temperature=temperature, samples=int(samples), example=example,
                              candidates=int(candidates or DEFAULT_CANDIDATES))
        except ValueError as e:
            gr.Warning(str(e))
            return gr.update(), gr.update(), gr.update(), f"Run {run}: not healed: {e}", run
        what = f"the strokes of `{Path(res.source).name}`" if res.source != "canvas" else "the drawing"
        status = (f"Run {run}: healed {what} (p = {float(mask or 0):g}, seed {int(seed or 0)}, "
                  f"temperature {float(temperature):g}, best of {int(candidates or DEFAULT_CANDIDATES)}) in {time.perf_counter() - start:.1f} s")
        return res.input_image, res.html, [str(p) for p in res.files], status, run

    def on_example(name):
        if not name or name not in by_name:
            return gr.update(), None
        picture = example_canvas(by_name[name])
        return {"background": picture, "layers": [], "composite": picture}, name

    with gr.Blocks(title="sketchheal demo", analytics_enabled=False) as app:
        gr.Markdown(f"## Sketch healing\n{INTRO}\n\n{_model_line(healer)}")
        example_state = gr.State(None)
        runs = gr.State(0)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                canvas = gr.Sketchpad(
                    label="Your sketch", type="numpy", image_mode="RGBA", format="png", elem_id=CANVAS_ID,
                    canvas_size=(CANVAS_SIZE, CANVAS_SIZE), height=CANVAS_SIZE + 60, layers=False,
                    brush=gr.Brush(colors=BRUSH_COLORS, default_color=BRUSH_COLORS[0], color_mode="fixed",
                                   default_size=BRUSH_RADIUS),
                    eraser=gr.Eraser(default_size=3 * BRUSH_RADIUS))
                example_pick = gr.Dropdown(choices=[p.name for p in examples], value=None, label="Example",
                                           visible=bool(examples), elem_id="sketchheal-example")
                if not examples:
                    gr.Markdown("No examples are installed: draw your own.", elem_classes="sh-note")
                with gr.Row():
                    mask = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Patch masking p (0 = off)",
                                     info="erase each of up to 20 squares along the lines with probability p",
                                     elem_id="sketchheal-mask")
                    seed = gr.Number(value=0, precision=0, label="Seed", info="masks and sampling",
                                     elem_id="sketchheal-seed")
                with gr.Row():
                    temperature = gr.Slider(0.01, 1.0, value=0.1, step=0.01, label="Temperature",
                                            elem_id="sketchheal-temperature")
                    samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples",
                                        elem_id="sketchheal-samples")
                candidates = gr.Slider(1, MAX_CANDIDATES, value=DEFAULT_CANDIDATES, step=1, label="Candidates (best of K)",
                                       info="draw K per sample, keep the one that best keeps the visible strokes",
                                       elem_id="sketchheal-candidates")
                heal_button = gr.Button("Heal", variant="primary", elem_id="sketchheal-heal")
            with gr.Column(scale=1):
                model_input = gr.Image(label="What the model sees (after masking)", type="numpy",
                                       image_mode="L", interactive=False, height=RESULT_SIZE - 16,
                                       buttons=["download"], elem_id="sketchheal-input")
                status = gr.Markdown("Draw, then press **Heal**.", elem_id="sketchheal-status")
                healed = gr.HTML(label="Healed", elem_id="sketchheal-healed")
                files = gr.File(label="Download SVG / PNG", file_count="multiple", interactive=False,
                                elem_id="sketchheal-files")

        example_pick.input(on_example, example_pick, [canvas, example_state])
        heal_button.click(on_heal, [canvas, mask, seed, temperature, samples, example_state, runs, candidates],
                          [model_input, healed, files, status, runs])
    return app


def serve(app, host: str = "127.0.0.1", port: int = 7860, share: bool = False, *, block: bool = True) -> None:
    """Serve a page from :func:`build_app` on ``host:port`` with the offline theme and the brush preselected.

    ``block=False`` returns once the server runs (in background threads; ``app.close()`` stops it).
    """
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=int(port), share=share, inbrowser=False, show_error=True,
               prevent_thread_lock=not block, quiet=not block, theme=theme(), css=CSS, js=SELECT_BRUSH_JS,
               footer_links=["settings"], ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False)


def launch_demo(checkpoint: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 7860,
                share: bool = False, *, device: str | None = None, block: bool = True):
    """Load the model (``checkpoint`` or the bundled one) and serve the demo page on ``host:port``.

    Blocks until interrupted unless ``block=False``. Returns the ``gr.Blocks`` app. Raises
    ``ModuleNotFoundError`` (saying what to install) without Gradio, ``FileNotFoundError`` / ``ValueError`` for a
    bad checkpoint.
    """
    _import_gradio()  # before loading a model: fail fast without gradio
    from sketchheal.inference.heal import load_model

    app = build_app(load_model(checkpoint, device=device))
    serve(app, host, port, share, block=block)
    return app


# ============================================================================================== CLI


def register(subparsers) -> None:
    """Add ``sketchheal demo``."""
    p = subparsers.add_parser(
        "demo", help="draw or pick a sketch, erase parts, heal it in the browser (needs sketchheal[demo])",
        description="Serve a local web page to draw a sketch (or pick an example), erase parts of it or apply "
                    "the published patch masking, and heal it into a vector sketch. Works offline. "
                    "Needs Gradio: pip install 'sketchheal[demo]'.")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="release directory or training checkpoint (default: the bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs internet)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    if not gradio_available():
        print(f"sketchheal demo: {INSTALL_HINT}", file=sys.stderr)
        return 1
    launch_demo(args.checkpoint, host=args.host, port=args.port, share=args.share, device=args.device)
    return 0

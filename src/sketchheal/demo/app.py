"""The demo page (Gradio): draw or pick a sketch, erase parts of it, heal it. The work is done by
``sketchheal.demo.logic``; this module only builds and serves the page (``sketchheal demo`` is ``sketchheal.cli.demo``).

The page runs offline: analytics and version checks are switched off before Gradio is imported, and the theme uses
system fonts only. Gradio is an optional dependency (``pip install 'sketchheal[demo]'``) and is imported only
when the page is built, so ``sketchheal demo`` exists (and says what to install) without it.

A served page limits uploads to ``MAX_UPLOAD_MB`` and keeps every file it writes (each press of Heal, and Gradio's
own upload cache) under one temporary folder that is removed when the server stops, by Ctrl-C, SIGTERM or a normal
exit.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from sketchheal.demo.logic import (BRUSH_RADIUS, CANVAS_SIZE, MAX_CANDIDATES, MAX_SAMPLES, MAX_UPLOAD_MB,
                                   RESULT_SIZE, OutputFolders, example_canvas, heal_sketch, list_examples)
from sketchheal.inference.candidates import DEFAULT_CANDIDATES
from sketchheal.inference.loading import Healer, load_model

__all__ = ["build_app", "serve", "launch_demo", "theme", "configure_offline", "gradio_available", "check_port",
           "INSTALL_HINT"]

INSTALL_HINT = "the demo needs Gradio: pip install 'sketchheal[demo]'"
# Environment set before Gradio (and huggingface_hub, which it imports) is loaded: no analytics, no version
# check, no telemetry, no hub requests.
OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
}
# Black ink, plus white paint: Gradio 6.31's eraser removes strokes drawn on the canvas but not a loaded
# example, which can be painted over in white instead.
BRUSH_COLORS = ["#000000", "#ffffff"]

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


def configure_offline() -> None:
    """Switch off Gradio's analytics and version check and Hugging Face hub requests (before importing gradio)."""
    os.environ.update(OFFLINE_ENV)


def gradio_available() -> bool:
    return importlib.util.find_spec("gradio") is not None


def check_port(port: int) -> int:
    """``port`` as an int in 1..65535; ``ValueError`` (one line) otherwise."""
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"the port must be a number between 1 and 65535, got {port!r}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"the port must be between 1 and 65535, got {value}")
    return value


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
                  f"temperature {float(temperature):g}, best of {int(candidates or DEFAULT_CANDIDATES)}) "
                  f"in {time.perf_counter() - start:.1f} s")
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
                candidates = gr.Slider(1, MAX_CANDIDATES, value=DEFAULT_CANDIDATES, step=1,
                                       label="Candidates (best of K)",
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

    Uploads larger than ``MAX_UPLOAD_MB`` are refused by the server (HTTP 413). ``block=False`` returns once the
    server runs (in background threads; ``app.close()`` stops it).
    """
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=check_port(port), share=share, inbrowser=False, show_error=True,
               prevent_thread_lock=not block, quiet=not block, theme=theme(), css=CSS, js=SELECT_BRUSH_JS,
               footer_links=["settings"], ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
               max_file_size=f"{MAX_UPLOAD_MB}mb")


def _exit_on_signal(signum, frame) -> None:
    # Gradio's blocking loop closes the server on KeyboardInterrupt; the caller's `finally` and atexit then run.
    raise KeyboardInterrupt(f"signal {signum}")


def launch_demo(checkpoint: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 7860,
                share: bool = False, *, device: str | None = None, block: bool = True):
    """Load the model (``checkpoint`` or the bundled one) and serve the demo page on ``host:port``.

    Every file the page writes goes under one temporary folder (``sketchheal-demo-*``: the healed files, and
    Gradio's upload cache unless ``GRADIO_TEMP_DIR`` is set), removed when the server stops: on Ctrl-C, on SIGTERM
    (turned into the same clean stop while blocking in the main thread) and at interpreter exit.
    Blocks until interrupted unless ``block=False``. Returns the ``gr.Blocks`` app. Raises ``ValueError`` for a
    port outside 1..65535, ``ModuleNotFoundError`` (saying what to install) without Gradio,
    ``FileNotFoundError`` / ``ValueError`` for a bad checkpoint.
    """
    port = check_port(port)
    session = Path(tempfile.mkdtemp(prefix="sketchheal-demo-"))

    def cleanup() -> None:
        shutil.rmtree(session, ignore_errors=True)

    atexit.register(cleanup)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(session / "gradio"))  # read when gradio is imported
    handle_signals = block and threading.current_thread() is threading.main_thread()
    previous = {}
    if handle_signals:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, _exit_on_signal)
    try:
        _import_gradio()  # before loading a model: fail fast without gradio
        app = build_app(load_model(checkpoint, device=device), outputs=OutputFolders(session / "calls"))
        serve(app, host, port, share, block=block)
    except BaseException:
        cleanup()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if block:
        cleanup()
    return app


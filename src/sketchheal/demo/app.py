"""The demo page (Gradio): draw or pick a sketch, erase parts of it, heal it (complete it, or redraw it as published).
The work is done by ``sketchheal.demo.logic``; this module only builds and serves the page (``sketchheal demo`` is
``sketchheal.cli.demo``). At 1280 x 720 the whole working area, the Heal button included, is visible without
scrolling.

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

from sketchheal.demo.logic import (BRUSH_RADIUS, CANVAS_SIZE, MAX_CANDIDATES, MAX_SAMPLES, MAX_UPLOAD_MB, MODES,
                                   OutputFolders, erasure_preview, example_canvas, heal_sketch, list_examples,
                                   model_name)
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
.sh-complete svg { width: 100%; max-width: 420px; height: auto; max-height: 400px; }
.sh-sample figcaption { font-size: 0.85em; color: #555; }
.sh-swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; vertical-align: -0.1em; }
.sh-note { color: #666; }
.sh-warning { background: #fff4d6; border: 1px solid #e8c25a; border-radius: 6px; padding: 2px 10px; }
#sketchheal-header h2 { margin: 0 0 2px 0; }
#sketchheal-header p { margin: 0; }
"""
INTRO = ("Draw (the brush is ready) or pick an example, then press **Heal**: your strokes stay black, what is "
         "added is in colour.")
# Heights on the page (CSS px): the canvas component and the erasure preview.
CANVAS_HEIGHT = 480
PREVIEW_HEIGHT = 200


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
    return f"Model: **{model_name(healer)}**"


def build_app(healer: Healer, *, outputs: OutputFolders | None = None,
              examples_dir: str | os.PathLike | None = None):
    """The demo page as a ``gr.Blocks``, not yet served (see :func:`serve`).

    Three columns at 1280 x 720 (the Heal button above the fold): the canvas and the example picker | the mode,
    the erasing, Heal, the erasure preview and the "Advanced" settings | the status, the domain warning, the
    result and its files. ``outputs``: where each press of Heal writes its files (default: a temporary folder
    removed at exit). ``examples_dir``: the examples to offer (default: the package's ``EXAMPLES_DIR``).
    """
    gr = _import_gradio()
    outputs = outputs or OutputFolders()
    examples = list_examples(examples_dir)
    by_name = {p.name: p for p in examples}

    def on_heal(value, mode, mask, parts, seed, temperature, samples, candidates, example_name, runs):
        example = by_name.get(example_name) if example_name else None
        run = int(runs or 0) + 1  # per browser session
        mask, seed = float(mask or 0), int(seed or 0)
        start = time.perf_counter()
        try:
            res = heal_sketch(value, healer=healer, out_dir=outputs.new(), mode=mode, parts=bool(parts), mask=mask,
                              seed=seed, temperature=temperature, samples=int(samples), example=example,
                              candidates=int(candidates or DEFAULT_CANDIDATES))
            preview = _preview(value, mode, mask, seed, example)
        except ValueError as e:
            gr.Warning(str(e))
            return (gr.update(), gr.update(), f"Run {run}: not healed: {e}", gr.update(visible=False),
                    gr.update(), run)
        return (res.html, [str(p) for p in res.files], _status(run, res, mask, seed, time.perf_counter() - start),
                gr.update(value=res.warning or "", visible=bool(res.warning)), preview, run)

    def _preview(value, mode, mask, seed, example):
        picture = erasure_preview(value, healer=healer, mask=float(mask or 0), seed=int(seed or 0), mode=mode,
                                  example=example)
        return gr.update(value=picture, visible=picture is not None)

    def on_preview(value, mode, mask, seed, example_name):
        try:
            return _preview(value, mode, mask, seed, by_name.get(example_name) if example_name else None)
        except ValueError:
            return gr.update(visible=False)

    def on_example(name):
        if not name or name not in by_name:
            return gr.update(), None
        picture = example_canvas(by_name[name])
        return {"background": picture, "layers": [], "composite": picture}, name

    with gr.Blocks(title="sketchheal demo", analytics_enabled=False) as app:
        gr.Markdown(f"## Sketch healing\n{INTRO} {_model_line(healer)}", elem_id="sketchheal-header")
        example_state = gr.State(None)
        runs = gr.State(0)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380):
                canvas = gr.Sketchpad(
                    label="Your drawing", type="numpy", image_mode="RGBA", format="png", elem_id=CANVAS_ID,
                    canvas_size=(CANVAS_SIZE, CANVAS_SIZE), height=CANVAS_HEIGHT, layers=False,
                    brush=gr.Brush(colors=BRUSH_COLORS, default_color=BRUSH_COLORS[0], color_mode="fixed",
                                   default_size=BRUSH_RADIUS),
                    eraser=gr.Eraser(default_size=3 * BRUSH_RADIUS))
                example_pick = gr.Dropdown(choices=[p.name for p in examples], value=None, label="Example",
                                           visible=bool(examples), elem_id="sketchheal-example")
                if not examples:
                    gr.Markdown("No examples are installed: draw your own.", elem_classes="sh-note")
            with gr.Column(scale=4, min_width=280):
                mode = gr.Radio(choices=[(label, key) for key, label in MODES.items()], value="complete",
                                label="Healing", elem_id="sketchheal-mode")
                mask = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Erase parts before healing",
                                 info="0 = heal it as drawn",
                                 elem_id="sketchheal-mask")
                parts = gr.Checkbox(value=True, label="Also add missing parts (off: only fill gaps)",
                                    elem_id="sketchheal-parts")
                heal_button = gr.Button("Heal", variant="primary", size="lg", elem_id="sketchheal-heal")
                erased = gr.Image(label="What Heal erases (grey)", type="numpy", image_mode="RGB",
                                  interactive=False, visible=False, height=PREVIEW_HEIGHT, buttons=[],
                                  elem_id="sketchheal-erased")
                with gr.Accordion("Advanced", open=False, elem_id="sketchheal-advanced"):
                    seed = gr.Number(value=0, precision=0, label="Seed",
                                     info="which parts are erased; the redraw's sampling", elem_id="sketchheal-seed")
                    temperature = gr.Slider(0.01, 1.0, value=0.1, step=0.01, label="Temperature (redraw)",
                                            elem_id="sketchheal-temperature")
                    candidates = gr.Slider(1, MAX_CANDIDATES, value=DEFAULT_CANDIDATES, step=1,
                                           label="Candidates, best of K (redraw)",
                                           info="draw K per sample, keep the one closest to your strokes",
                                           elem_id="sketchheal-candidates")
                    samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples (redraw)",
                                        elem_id="sketchheal-samples")
            with gr.Column(scale=5, min_width=380):
                status = gr.Markdown("Draw, then press **Heal**.", elem_id="sketchheal-status")
                warning = gr.Markdown("", visible=False, elem_id="sketchheal-domain", elem_classes="sh-warning")
                healed = gr.HTML(label="Healed", elem_id="sketchheal-healed")
                files = gr.File(label="Download SVG / PNG", file_count="multiple", interactive=False,
                                elem_id="sketchheal-files")

        preview_in = [canvas, mode, mask, seed, example_state]
        quiet = dict(show_progress="hidden", trigger_mode="always_last", concurrency_id="preview")
        example_pick.input(on_example, example_pick, [canvas, example_state]).then(on_preview, preview_in, erased,
                                                                                   **quiet)
        for control in (mask, seed, mode, canvas):
            control.change(on_preview, preview_in, erased, **quiet)
        mode.change(lambda m: gr.update(visible=m == "complete"), mode, parts, show_progress="hidden")
        heal_button.click(on_heal, [canvas, mode, mask, parts, seed, temperature, samples, candidates,
                                    example_state, runs], [healed, files, status, warning, erased, runs])
    return app


def _status(run: int, res, mask: float, seed: int, seconds: float) -> str:
    """The status line after a press of Heal."""
    what = f"the strokes of `{Path(res.source).name}`" if res.source != "canvas" else "the drawing"
    erased = f"erase p = {mask:g}, seed {seed}; " if mask else ""
    if res.mode == "complete":
        r = res.result
        return (f"Run {run}: completed {what}: {len(r.input_lines)} strokes kept, {len(r.added_lines)} added "
                f"({erased}{seconds:.1f} s)")
    n = len(res.svgs)
    return f"Run {run}: redrew {what}: {n} sample{'s' if n != 1 else ''} ({erased}{seconds:.1f} s)"


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


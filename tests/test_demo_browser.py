"""The demo page in a real browser: Playwright drives Debian's Chromium against a local server with a tiny model.

Needs ``pip install playwright`` (no ``playwright install``: the browser is the system's ``chromium``, see
``scripts/install_browser.sh``) and Gradio; skips with the reason when one is missing.

Also a script that takes the screenshot for the docs (not done by the tests)::

    python tests/test_demo_browser.py --out docs/img/demo.png [--checkpoint PATH] [--examples DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import math
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin, urlparse

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 1000}
HEAL_TIMEOUT_MS = 60_000


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_requirement() -> str | None:
    """Why the browser test cannot run here, or None."""
    for module, hint in (("playwright", "pip install playwright"), ("gradio", "pip install 'sketchheal[demo]'")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({hint})"
    if chromium_path() is None:
        return "no chromium on PATH (run scripts/install_browser.sh)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def demo_server(model: str | Path | None, examples: str | Path | None) -> Iterator[str]:
    """Serve the demo page in background threads of this process; yields its URL."""
    from sketchheal.demo.app import build_app, serve
    from sketchheal.demo.logic import OutputFolders
    from sketchheal.inference.loading import load_model

    with tempfile.TemporaryDirectory(prefix="sketchheal-demo-test-") as out:
        app = build_app(load_model(model, device="cpu"), outputs=OutputFolders(out), examples_dir=examples)
        port = free_port()
        serve(app, "127.0.0.1", port, block=False)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            app.close()


@contextlib.contextmanager
def open_page(url: str):
    """A fresh Chromium page on ``url`` with the canvas ready; yields ``(page, external_requests)``."""
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on("request", lambda r: external.append(r.url) if _is_external(r.url) else None)
            page.goto(url)
            page.wait_for_selector("#sketchheal-canvas canvas", timeout=30_000)
            yield page, external
        finally:
            browser.close()


def _is_external(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in ("127.0.0.1", "localhost")


def canvas_frame(page) -> tuple[float, float, float]:
    """``(cx, cy, half)``: screen centre of the drawing square and half its side, in CSS pixels."""
    box = page.locator("#sketchheal-canvas canvas").first.bounding_box()
    side = 0.8 * min(box["width"], box["height"])
    zoom = page.locator("#sketchheal-canvas .zoom-number span")
    if zoom.count():
        with contextlib.suppress(ValueError):
            from sketchheal.demo.logic import CANVAS_SIZE

            side = min(side, CANVAS_SIZE * float(zoom.first.inner_text().strip().rstrip("%")) / 100)
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, side / 2


def drag(page, points: list[tuple[float, float]]) -> None:
    """Press the mouse at the first point, move through the others, release: one stroke on the canvas."""
    cx, cy, half = canvas_frame(page)
    xy = [(cx + x * half, cy + y * half) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for q in xy[1:]:
        page.mouse.move(*q)
    page.mouse.up()


def arc(x: float, y: float, rx: float, ry: float, a0: float, a1: float, n: int) -> list[tuple[float, float]]:
    """``n + 1`` points on an elliptical arc (angles in degrees, y downwards), in canvas units (-1..1)."""
    return [(x + rx * math.cos(math.radians(a0 + (a1 - a0) * i / n)),
             y + ry * math.sin(math.radians(a0 + (a1 - a0) * i / n))) for i in range(n + 1)]


def heal(page, run: int) -> str:
    """Press Heal and wait for run number ``run`` to be reported; returns the status line."""
    page.click("#sketchheal-heal")
    page.wait_for_function("(n) => document.querySelector('#sketchheal-status').innerText.includes(`Run ${n}:`)",
                           arg=run, timeout=HEAL_TIMEOUT_MS)
    return page.inner_text("#sketchheal-status")


def select_tool(page, label: str) -> None:
    button = page.locator(f'#sketchheal-canvas button[aria-label="{label}"]')
    if "highlight" not in (button.get_attribute("class") or ""):
        button.click()


def model_input_ink(page) -> int:
    """Ink pixels of the 'what the model sees' picture currently shown."""
    src = page.locator("#sketchheal-input img").first.get_attribute("src")
    if src.startswith("data:"):
        body = base64.b64decode(src.split(",", 1)[1])
    else:
        body = page.request.get(urljoin(page.url, src)).body()
    img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_GRAYSCALE)
    return int((img < 128).sum())


def canvas_ink(page) -> int:
    """Dark pixels the canvas shows (from a screenshot of the canvas element)."""
    png = page.locator("#sketchheal-canvas canvas").first.screenshot()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return int((img < 128).sum())


def set_number(page, elem_id: str, value: float) -> None:
    """Type a value into the number box of a Gradio slider / number field."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


# ============================================================================================== tests


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    from test_demo import make_tiny_model, sheep_strokes

    root = tmp_path_factory.mktemp("demo")
    model = make_tiny_model(root / "tiny")
    examples = root / "examples"
    examples.mkdir()
    np.savez(examples / "sheep.npz", strokes=sheep_strokes(40))
    with demo_server(model, examples) as url:
        yield url


def test_draw_erase_and_heal(server: str, tmp_path: Path):
    with open_page(server) as (page, external):
        # the brush is selected on load: drawing works at once
        page.wait_for_selector('#sketchheal-canvas button[aria-label="Brush"].highlight', timeout=10_000)
        drag(page, arc(0.0, -0.1, 0.45, 0.35, 0, 360, 12))
        drag(page, [(-0.5, 0.5), (0.0, 0.52), (0.5, 0.5)])
        status = heal(page, 1)
        assert "healed the drawing" in status
        paths = page.locator("#sketchheal-healed svg path")
        assert paths.count() > 0, "no healed SVG paths on the page"
        assert page.locator("#sketchheal-healed svg").count() == 1
        links = page.locator("#sketchheal-files a").evaluate_all("els => els.map(e => e.href)")
        assert {Path(urlparse(u).path).name for u in links} >= {"healed.svg", "healed.png"}, links
        svg = page.request.get(next(u for u in links if u.endswith(".svg"))).text()
        assert svg.lstrip().startswith("<svg") and "<path" in svg
        ink_before = model_input_ink(page)

        # the eraser takes out part of the circle (its box stays), the model sees less ink
        select_tool(page, "Erase")
        drag(page, arc(0.0, -0.1, 0.45, 0.35, 20, 70, 4))
        assert "healed the drawing" in heal(page, 2)
        assert model_input_ink(page) < ink_before

        # several samples at once
        set_number(page, "sketchheal-samples", 3)
        heal(page, 3)
        assert page.locator("#sketchheal-healed svg").count() == 3
        page.screenshot(path=str(tmp_path / "demo_draw.png"), full_page=True)
        assert external == [], f"the page fetched from the internet: {external}"


def test_example_with_patch_masking(server: str, tmp_path: Path):
    with open_page(server) as (page, external):
        page.click("#sketchheal-example input")
        page.get_by_role("option", name="sheep.npz").click()
        page.wait_for_timeout(1000)  # the picture is loaded into the canvas
        plain = heal(page, 1)
        assert "strokes of" in plain and "sheep.npz" in plain
        ink_plain = model_input_ink(page)
        set_number(page, "sketchheal-mask", 1.0)
        masked = heal(page, 2)
        assert "p = 1" in masked and "sheep.npz" in masked
        assert model_input_ink(page) < ink_plain
        assert page.locator("#sketchheal-healed svg path").count() > 0

        # the eraser cannot take out a loaded picture (Gradio 6.31); the white brush paints over it
        set_number(page, "sketchheal-mask", 0)
        page.click('#sketchheal-canvas button[aria-label="Color"]')
        page.locator("#sketchheal-canvas menu.swatch button.color").nth(1).click()
        ink_shown = canvas_ink(page)
        for x in (0.1, 0.13, 0.16):
            drag(page, [(x, -1.0), (x, 1.0)])
        assert canvas_ink(page) < ink_shown
        assert "healed the drawing" in heal(page, 3)  # the canvas no longer shows the example as loaded
        page.screenshot(path=str(tmp_path / "demo_example.png"), full_page=True)
        assert external == [], f"the page fetched from the internet: {external}"


# ============================================================================================== docs screenshot


def draw_sheep(page) -> None:
    """A sheep: woolly body, head, ear, eye, four legs (canvas units, y downwards)."""
    body = [(0.1 + 0.55 * math.cos(math.radians(a)) * (1 + 0.07 * math.sin(math.radians(8 * a))),
             0.0 + 0.35 * math.sin(math.radians(a)) * (1 + 0.07 * math.sin(math.radians(8 * a))))
            for a in range(-150, 211, 15)]
    drag(page, body)
    drag(page, arc(-0.55, -0.25, 0.17, 0.13, 0, 360, 12))
    drag(page, [(-0.45, -0.35), (-0.33, -0.42), (-0.4, -0.3)])
    drag(page, [(-0.6, -0.27), (-0.59, -0.25)])
    for x in (-0.2, -0.05, 0.25, 0.4):
        drag(page, [(x, 0.3), (x, 0.6)])


def take_screenshot(out: Path, checkpoint: str | None, examples: str | None) -> Path:
    """Draw a sheep, erase part of it, heal three samples; save the page as a small PNG (< 300 KB)."""
    from PIL import Image

    with demo_server(checkpoint, examples) as url, open_page(url) as (page, _):
        page.wait_for_selector('#sketchheal-canvas button[aria-label="Brush"].highlight', timeout=10_000)
        draw_sheep(page)
        select_tool(page, "Erase")
        drag(page, [(0.45, -0.35), (0.62, -0.1)])
        set_number(page, "sketchheal-samples", 3)
        set_number(page, "sketchheal-temperature", 0.3)
        heal(page, 1)
        page.mouse.move(5, 5)
        page.wait_for_timeout(500)
        raw = out.with_suffix(".raw.png")
        page.screenshot(path=str(raw), full_page=True)
    img = Image.open(raw).convert("RGB")
    img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS)
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    raw.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Screenshot of the demo page healing a drawn sketch (for docs/).")
    p.add_argument("--out", type=Path, default=Path("docs/img/demo.png"))
    p.add_argument("--checkpoint", default=None, help="model for the page (default: the bundled model)")
    p.add_argument("--examples", default=None, help="examples folder (default: the package's)")
    args = p.parse_args(argv)
    reason = missing_requirement()
    if reason:
        print(f"cannot take the screenshot: {reason}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = take_screenshot(args.out, args.checkpoint, args.examples)
    print(f"{path}: {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

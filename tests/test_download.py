"""Tests for sketchheal.sketch.download against a local http.server, and for sketchheal.sketch.categories."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from sketchheal.sketch import categories as C
from sketchheal.sketch import download as DL
from sketchheal.cli.main import main
from sketchheal.config import PAPER_CATEGORIES
from sketchheal.sketch.io import load_sketches, save_npz


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; ``cat.npz`` is cut short (Content-Length announces more than is sent)."""

    truncate = False

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.truncate and self.path.endswith("/cat.npz"):
            body = (Path(self.directory) / "sketchrnn" / "cat.npz").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("bucket")
    rng = np.random.default_rng(0)
    for name in ("cat", "The Great Wall of China", "apple"):
        sketches = [np.concatenate([rng.integers(-9, 10, (30, 2)), np.zeros((30, 1))], 1).astype(np.int16)
                    for _ in range(50)]
        for s in sketches:
            s[-1, 2] = 1
        save_npz(root / "sketchrnn" / f"{name}.npz", {"train": sketches, "valid": sketches[:5], "test": sketches[:5]})
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root / "sketchrnn", f"http://127.0.0.1:{httpd.server_address[1]}/sketchrnn"
    httpd.shutdown()
    httpd.server_close()


def _no_temp(folder: Path) -> bool:
    return not any(".tmp" in p.name for p in folder.iterdir())


def test_categories():
    assert len(C.QUICKDRAW_CATEGORIES) == 345 == len(set(C.QUICKDRAW_CATEGORIES))
    assert "zigzag" in C.QUICKDRAW_CATEGORIES and "The Great Wall of China" in C.QUICKDRAW_CATEGORIES
    assert set(PAPER_CATEGORIES) <= set(C.QUICKDRAW_CATEGORIES) and C.PAPER_CATEGORIES is PAPER_CATEGORIES
    assert C.resolve_category("the great wall of china ") == "The Great Wall of China"
    assert C.resolve_category("cat.npz") == "cat"
    with pytest.raises(ValueError, match="did you mean 'airplane'"):
        C.resolve_category("aeroplane")


def test_shared_folder_lacks_only_zigzag(data_dir):
    folder = data_dir / "quickdraw" / "simplified"
    if not folder.is_dir():
        pytest.skip("no QuickDraw samples")
    have = {p.stem for p in folder.glob("*.ndjson")}
    assert set(C.QUICKDRAW_CATEGORIES) - have == {"zigzag"} and have <= set(C.QUICKDRAW_CATEGORIES)


def test_url_quoting():
    assert DL.category_url("The Great Wall of China", "http://h/x/") == "http://h/x/The%20Great%20Wall%20of%20China.npz"


def test_download_and_skip_complete(server, tmp_path):
    bucket, url = server
    calls = []
    paths = DL.download(["cat", "the great wall of china"], tmp_path, base_url=url, progress=False,
                        on_file=lambda p, fetched: calls.append((p.name, fetched)))
    assert [p.name for p in paths] == ["cat.npz", "The Great Wall of China.npz"]
    assert calls == [("cat.npz", True), ("The Great Wall of China.npz", True)]
    assert (tmp_path / "cat.npz").read_bytes() == (bucket / "cat.npz").read_bytes()
    assert len(load_sketches(paths[1], split="valid")) == 5
    assert _no_temp(tmp_path)
    mtime = (tmp_path / "cat.npz").stat().st_mtime_ns
    calls.clear()
    DL.download(["cat"], tmp_path, base_url=url, progress=False, on_file=lambda p, f: calls.append(f))
    assert calls == [False] and (tmp_path / "cat.npz").stat().st_mtime_ns == mtime
    DL.download(["cat"], tmp_path, base_url=url, progress=False, force=True, on_file=lambda p, f: calls.append(f))
    assert calls == [False, True]


def test_partial_file_is_not_complete(server, tmp_path):
    bucket, url = server
    full = (bucket / "apple.npz").read_bytes()
    (tmp_path / "apple.npz").write_bytes(full[:100])  # left by an interrupted run of another tool
    path, fetched = DL.download_category("apple", tmp_path, base_url=url, progress=False)
    assert fetched and path.read_bytes() == full and _no_temp(tmp_path)


def test_interrupted_transfer_leaves_nothing(server, tmp_path, monkeypatch):
    _, url = server
    monkeypatch.setattr(_Handler, "truncate", True)
    with pytest.raises(DL.DownloadError, match="cat.npz: (incomplete download|the transfer broke off)"):
        DL.download(["cat"], tmp_path, base_url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_404_and_unreachable(server, tmp_path):
    _, url = server
    with pytest.raises(DL.DownloadError, match=r"ant.npz: HTTP 404 Not Found"):
        DL.download(["ant"], tmp_path, base_url=url, progress=False)
    with pytest.raises(DL.DownloadError, match="cannot reach 127.0.0.1:9"):
        DL.download(["ant"], tmp_path, base_url="http://127.0.0.1:9/x", progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_unknown_category_fails_before_downloading(server, tmp_path):
    _, url = server
    with pytest.raises(ValueError, match="unknown QuickDraw category 'catt'.*'cat'"):
        DL.download(["apple", "catt"], tmp_path, base_url=url, progress=False)
    assert not (tmp_path / "apple.npz").exists()
    with pytest.raises(ValueError, match="no categories"):
        DL.download([], tmp_path)


def test_cli_download(server, tmp_path, capsys):
    _, url = server
    args = ["download", "cat", "apple", "--to", str(tmp_path), "--base-url", url, "--quiet"]
    assert main(args) == 0
    assert "downloaded" in capsys.readouterr().out
    assert main(args) == 0
    assert "complete" in capsys.readouterr().out
    assert main(["download", "ant", "--to", str(tmp_path), "--base-url", url, "--quiet"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert main(["download", "--paper", "--to", str(tmp_path), "--base-url", "http://127.0.0.1:9", "--quiet"]) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert main(["download", "--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 345

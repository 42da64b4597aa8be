"""Download the sketch-rnn QuickDraw ``.npz`` files (one per category) from Google's public bucket.

``download(["cat", "The Great Wall of China"], "data/")`` fetches
``https://storage.googleapis.com/quickdraw_dataset/sketchrnn/<category>.npz`` (names URL-quoted), writes each file
under a temporary name and renames it when complete, and skips files whose size already equals the server's
``Content-Length``. ``sketchheal download --paper --to data/`` (:mod:`sketchheal.cli.download`) gets the paper's 17
categories.
"""

from __future__ import annotations

import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from sketchheal.sketch.categories import resolve_category
from sketchheal.utils.fileio import atomic_write

DEFAULT_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/sketchrnn"
CHUNK = 1 << 20
USER_AGENT = "sketchheal-download"


class DownloadError(OSError):
    """A file could not be downloaded: network failure, HTTP error or a truncated transfer."""


def category_url(category: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """URL of a category's ``.npz`` (the name is percent-quoted: spaces become ``%20``)."""
    return f"{base_url.rstrip('/')}/{urllib.parse.quote(category)}.npz"


def _describe(url: str, e: BaseException) -> str:
    """One clear sentence for a failed request."""
    host = urllib.parse.urlsplit(url).netloc or url
    if isinstance(e, urllib.error.HTTPError):
        if e.code == 404:
            return f"{url}: HTTP 404 Not Found: the server has no such file (check the category name and --base-url)"
        return f"{url}: HTTP {e.code} {e.reason}"
    reason = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"{url}: timed out waiting for {host}; try again later"
    return f"{url}: cannot reach {host} ({reason}); check the network connection or --base-url"


def _request(url: str, method: str, timeout: float):
    req = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http/https URL from the user)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DownloadError(_describe(url, e)) from e


def _length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def remote_size(url: str, timeout: float = 30.0) -> int | None:
    """The server's ``Content-Length`` for ``url`` (HEAD, falling back to GET without reading the body)."""
    try:
        with _request(url, "HEAD", timeout) as r:
            return _length(r)
    except DownloadError as e:
        cause = e.__cause__
        if not (isinstance(cause, urllib.error.HTTPError) and cause.code in (403, 405, 501)):
            raise
    with _request(url, "GET", timeout) as r:
        return _length(r)


def _fetch(url: str, dest: Path, timeout: float, progress: bool) -> None:
    """GET ``url`` into ``dest`` atomically; raise DownloadError if the body is shorter than announced."""
    with _request(url, "GET", timeout) as r:
        total = _length(r)
        received = 0
        with atomic_write(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                 desc=dest.name, disable=not progress, leave=False) as bar:
            try:
                while chunk := r.read(CHUNK):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as e:
                raise DownloadError(f"{url}: the transfer broke off after {received} bytes ({e}); run the "
                                    "command again") from e
            if total is not None and received != total:
                raise DownloadError(f"{url}: incomplete download, {received} of {total} bytes; run the command "
                                    "again")


def download_category(category: str, to: str | os.PathLike, base_url: str = DEFAULT_BASE_URL,
                      force: bool = False, progress: bool = True, timeout: float = 60.0) -> tuple[Path, bool]:
    """Fetch one category's ``.npz`` into folder ``to``; returns ``(path, downloaded)``.

    An existing file is kept (``downloaded=False``) when its size equals the server's ``Content-Length``,
    unless ``force``. Raises ``ValueError`` for an unknown category and ``DownloadError`` for network failures.
    """
    name = resolve_category(category)
    dest = Path(to) / f"{name}.npz"
    url = category_url(name, base_url)
    if dest.is_file() and not force:
        size = remote_size(url, timeout)
        if size is not None and dest.stat().st_size == size:
            return dest, False
    Path(to).mkdir(parents=True, exist_ok=True)
    _fetch(url, dest, timeout, progress)
    return dest, True


def download(categories: Iterable[str], to: str | os.PathLike, base_url: str = DEFAULT_BASE_URL,
             force: bool = False, progress: bool = True, timeout: float = 60.0,
             on_file: Callable[[Path, bool], None] | None = None) -> list[Path]:
    """Download the sketch-rnn ``.npz`` of each category into folder ``to``; returns the paths (input order).

    Every name is checked first (``ValueError`` with close matches for an unknown one), then each file is fetched
    with a progress bar, written atomically, and skipped when already complete (see :func:`download_category`).
    ``on_file(path, downloaded)`` is called after each file.
    """
    names = list(dict.fromkeys(resolve_category(c) for c in categories))
    if not names:
        raise ValueError("no categories given: name some, or use --paper (the paper's 17) or --all")
    paths = []
    for name in names:
        path, fetched = download_category(name, to, base_url, force=force, progress=progress, timeout=timeout)
        if on_file is not None:
            on_file(path, fetched)
        paths.append(path)
    return paths


__all__ = ["download", "download_category", "category_url", "remote_size", "DownloadError", "DEFAULT_BASE_URL"]

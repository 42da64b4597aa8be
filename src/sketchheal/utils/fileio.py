"""Atomic file writes: write to a temporary name in the same folder, then rename, so no half-written files."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import cv2
import numpy as np


def _umask_mode() -> int:
    """The mode a plainly created file would get (mkstemp always makes 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that want a file name; rename onto ``path`` on success.

    The temporary name keeps ``path``'s suffix so that libraries choosing a format by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` (BGR) image encoded as PNG: the one PNG encoder of the package."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 images
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 image as PNG, atomically (the one PNG writer of the package)."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(png_bytes(image))
    return path


def json_safe(obj: Any) -> Any:
    """``obj`` as strict JSON values: NaN and +-Infinity become None (null), numpy scalars and arrays Python
    numbers and lists, tuples lists; recursively through dicts and lists (the one home of strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def json_dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text (readers that reject ``NaN``/``Infinity`` read it): non-finite numbers become ``null``."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict, indented JSON, atomically."""
    path = Path(path)
    with atomic_write(path, "w") as f:
        f.write(json_dumps(obj, indent=2) + "\n")
    return path

"""Safe reading of numpy files (``.npz`` archives and ``.npy`` arrays) that may come from anyone.

``np.load(..., allow_pickle=True)`` runs whatever a pickle in the file asks for (``os.system`` included). The
sketch-rnn ``.npz`` files hold their sketches as *object* arrays, which numpy stores as pickles, so they cannot be
read with ``allow_pickle=False``. This module reads them without running anything:

- plain (numeric, string, bool) members are read by numpy itself with ``allow_pickle=False``;
- object members are unpickled by :class:`ArrayUnpickler`, which can build only numpy arrays and dtypes (exactly the
  handful of numpy functions a pickled array names: ``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``,
  ``_frombuffer``, plus ``_codecs.encode`` that protocol-2 pickles use for bytes). Any other name (``os.system``,
  ``builtins.eval``, ...) is refused before it is looked up, and what comes out must be an object array whose
  elements are arrays of numbers.

Python 2 pickles (Google's sketch-rnn files) are read with ``encoding="latin1"``, as numpy does for them.
The one ``np.load`` of the package is here (:func:`load_npy`, always ``allow_pickle=False``).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["NpzArchive", "open_npz", "load_npz", "load_npy", "ArrayUnpickler", "MAX_MEMBER_BYTES"]

# The largest array one archive member may unpack to (a zip can claim any size; sketch-rnn files are ~100 MB).
MAX_MEMBER_BYTES = 4 << 30
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NUMERIC_KINDS = "biuf"


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only globals a pickled numeric numpy array needs, under the module names numpy 1.x and 2.x write."""
    reconstruct = np.empty(0).__reduce__()[0]  # numpy.(_)core.multiarray._reconstruct
    scalar = np.float64(0).__reduce__()[0]  # numpy.(_)core.multiarray.scalar
    frombuffer = np.arange(1).__reduce_ex__(5)[0]  # numpy.(_)core.numeric._frombuffer (protocol 5)
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of bytes use it (only the latin-1 codec)."""
    if encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not used by numpy pickles")
    return text.encode("latin1")


_ALLOWED = _numpy_globals()


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and dtypes and nothing else (see the module doc)."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"persistent id {pid!r}")


def _refused(where: str, what: str) -> ValueError:
    return ValueError(f"{where} contains a pickled object of type {what} that sketchheal does not load; only "
                      "arrays of numbers are read")


def _read_header(fp) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fp)
    return np.lib.format._read_array_header(fp, version)  # 3.0 (utf-8 field names): no public reader


def read_npy_bytes(data: bytes, where: str) -> np.ndarray:
    """One ``.npy`` image (the bytes of an archive member) -> array; object arrays via :class:`ArrayUnpickler`."""
    fp = io.BytesIO(data)
    try:
        shape, fortran, dtype = _read_header(fp)
    except (ValueError, EOFError, SyntaxError, TypeError) as e:
        raise ValueError(f"{where}: not a readable .npy array ({e})") from None
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if not dtype.hasobject:
        if count * dtype.itemsize > len(data):
            raise ValueError(f"{where}: its header promises {count * dtype.itemsize} bytes of data, the file holds "
                             f"{len(data)}; the file is truncated or damaged")
        try:
            return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except (ValueError, EOFError, OSError) as e:
            raise ValueError(f"{where}: not a readable .npy array ({e})") from None
    if dtype != np.dtype(object):
        raise ValueError(f"{where}: a structured array with object fields; only arrays of numbers are read")
    try:
        arr = ArrayUnpickler(fp, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise _refused(where, str(e) or "unknown") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError, MemoryError,
            RecursionError) as e:
        raise ValueError(f"{where}: a damaged pickled array ({e.__class__.__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):
        raise _refused(where, type(arr).__name__)
    for item in arr.reshape(-1) if arr.dtype == object else ():
        if not isinstance(item, np.ndarray):
            raise _refused(where, type(item).__name__)
        if item.dtype.kind not in _NUMERIC_KINDS:
            raise _refused(where, f"array of {item.dtype}")
    return arr


class NpzArchive:
    """An opened ``.npz`` file: ``files`` (array names), ``keys()``, ``name in z``, ``z[name]`` (read on demand,
    safely), usable as a context manager. Raises ``ValueError`` naming the file for anything unreadable."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                magic = f.read(4)
        except IsADirectoryError:
            raise ValueError(f"{self.path}: is a folder, not an .npz file") from None
        if magic not in _ZIP_MAGIC:
            what = "empty (0 bytes)" if not magic else "not a zip archive"
            raise ValueError(f"{self.path}: not an .npz file ({what})")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
            raise ValueError(f"{self.path}: not a readable .npz file, truncated or damaged ({e})") from None
        self._members = {}
        for info in self._zip.infolist():
            if info.filename.endswith(".npy"):
                self._members[info.filename[:-4]] = info
        self.files = list(self._members)

    def keys(self) -> list[str]:
        return list(self.files)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of array ``key`` from its header alone (nothing else is read or unpickled)."""
        where = f"{self.path} (array {key!r})"
        try:
            with self._zip.open(self._members[key]) as fp:
                return tuple(_read_header(fp)[0])
        except (ValueError, EOFError, SyntaxError, TypeError, zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"{where}: not a readable .npy array ({e})") from None

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._members:
            raise KeyError(f"{key} is not a file in the archive")
        info = self._members[key]
        where = f"{self.path} (array {key!r})"
        if info.file_size > MAX_MEMBER_BYTES:
            raise ValueError(f"{where}: unpacks to {info.file_size} bytes, more than the {MAX_MEMBER_BYTES} "
                             "sketchheal reads (sketchheal.utils.npfile.MAX_MEMBER_BYTES)")
        try:
            data = self._zip.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise ValueError(f"{where}: cannot be read, the file is truncated or damaged ({e})") from None
        except Exception as e:  # zlib.error and friends from a damaged deflate stream
            raise ValueError(f"{where}: cannot be read, the file is damaged ({e.__class__.__name__}: {e})") from None
        return read_npy_bytes(data, where)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_npz(path: str | os.PathLike) -> NpzArchive:
    """Open an ``.npz`` file for safe reading (see :class:`NpzArchive`)."""
    return NpzArchive(path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read safely: ``{name: array}``."""
    with NpzArchive(path) as z:
        return {k: z[k] for k in z.files}


def load_npy(path: str | os.PathLike, mmap_mode: str | None = None) -> np.ndarray:
    """A ``.npy`` file of a plain (non-object) array; ``np.load`` with ``allow_pickle=False``, errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        arr = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array of numbers ({e})") from None
    if not isinstance(arr, np.ndarray):  # an .npz given where an .npy is expected
        arr.close()
        raise ValueError(f"{path}: an .npz archive, not a .npy array")
    return arr

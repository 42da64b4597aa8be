"""The run folder (``sketchheal train -o DIR``): one run per folder, one process writing, strict-JSON records.

- A new run refuses a folder that already holds files, unless it continues that run (``resume``) or replaces it
  (``overwrite``: the old run's checkpoints, metrics, samples and TensorBoard logs are deleted first; files that a
  run never writes are left alone).
- While a run writes, it holds an exclusive ``flock`` on ``DIR/.lock`` (the file records its PID). A second
  process that tries to write into the folder stops with one line naming the folder and that PID. The lock is the
  kernel's: it goes with the process, so a crash or ``kill -9`` never leaves a folder locked.
- Temporary files of a save that was killed half-way (``.ckpt_last.*.tmp.pt``, ``.summary.json.*.tmp``, ...)
  are removed by the next run that takes the lock.
- ``metrics.jsonl`` and ``summary.json`` are strict JSON: a non-finite number (a loss that is NaN, a best
  validation loss that is still infinite) is written as ``null``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"
# What a run writes into its folder (files, then folders); --overwrite deletes exactly these.
RUN_FILES = ("ckpt_last.pt", "config.json", "metrics.jsonl", "summary.json")
RUN_FILE_PATTERNS = (re.compile(r"^ckpt_step\d+\.pt$"), re.compile(r"^weights_rank\d+\.safetensors$"))
RUN_FOLDERS = ("samples", "tensorboard")
# Names of sketchheal.utils.fileio's temporaries: ".<name>.<random>.tmp" and ".<stem>.<random>.tmp<suffix>".
_TEMPORARY = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")


class RunFolderBusy(OSError):
    """Another process holds the folder's lock."""


class RunLock:
    """An exclusive ``flock`` on ``folder/.lock`` for as long as this object is open (or its process lives)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"PID {holder}" if holder else "another process"
                raise RunFolderBusy(f"{self.folder}: a training run ({who}) is writing into this folder; wait for it "
                                    "to end or choose another -o") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def is_run_file(name: str, is_dir: bool) -> bool:
    """True for what a run writes into its folder (see ``RUN_FILES``, ``RUN_FOLDERS``)."""
    if is_dir:
        return name in RUN_FOLDERS
    return name in RUN_FILES or any(p.match(name) for p in RUN_FILE_PATTERNS)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that killed atomic writes left in ``folder`` and ``folder/samples``."""
    removed = []
    for where in (folder, folder / "samples"):
        if not where.is_dir():
            continue
        for p in where.iterdir():
            if p.is_file() and _TEMPORARY.match(p.name):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def prepare_run_folder(folder: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Take ``folder``'s lock, clean what a killed run left, and check that this run may write there.

    Returns the held :class:`RunLock` (release it when the run ends). Raises :class:`RunFolderBusy` while
    another process holds the lock, and ``FileExistsError`` for a new run (neither ``resume`` nor ``overwrite``)
    in a folder that already holds files. ``overwrite`` deletes the files of the old run first.
    """
    if resume and overwrite:
        raise ValueError("--resume continues the run in the folder and --overwrite deletes it; pass one of them")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder}: exists and is not a folder; choose another -o")
    lock = RunLock(folder).acquire()
    try:
        remove_stale_temporaries(folder)
        present = sorted(p for p in folder.iterdir() if p.name != LOCK_NAME)
        if present and not resume:
            if not overwrite:
                shown = ", ".join(p.name for p in present[:4]) + (f" and {len(present) - 4} more" if len(present) > 4
                                                                   else "")
                raise FileExistsError(f"{folder}: not empty ({shown}); continue its run with --resume, replace it "
                                      "with --overwrite, or choose another -o")
            for p in present:
                if is_run_file(p.name, p.is_dir()):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
    except BaseException:
        lock.release()
        raise
    return lock


__all__ = ["LOCK_NAME", "RunFolderBusy", "RunLock", "is_run_file", "prepare_run_folder",
           "remove_stale_temporaries"]

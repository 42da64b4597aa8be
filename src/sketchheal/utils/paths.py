"""Where things live: the shared data folder, the bundled assets."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
ASSETS_DIR = PACKAGE_DIR / "assets"
# The bundled release model (model.safetensors + config.json).
BUNDLED_MODEL_DIR = ASSETS_DIR / "model"
# Example inputs the package can heal out of the box.
EXAMPLES_DIR = ASSETS_DIR / "examples"


def repo_root() -> Path:
    """The repository root when running from a source checkout (src layout)."""
    return PACKAGE_DIR.parent.parent


def shared_data_dir() -> Path:
    """Real sketch data for tests and benchmarks: $SKETCHHEAL_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("SKETCHHEAL_DATA")
    if env:
        return Path(env)
    return (repo_root().parent / "shared" / "data").resolve()

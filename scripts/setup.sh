#!/usr/bin/env bash
# The two set-up commands of the README, for a fresh clone (the Makefile's `make heal` / `make test` call this):
#
#   bash scripts/setup.sh heal   # a virtual environment in .venv, torch (CPU wheel) + sketchheal, heal the examples
#   bash scripts/setup.sh test   # the same environment with the test, demo and browser extras, then the test suite
#
# Settings (environment): PYTHON (>= 3.10, default python3), VENV (default .venv), TORCH (default torch==2.13.0),
# TORCH_INDEX (where the CPU wheel of torch comes from; default PyTorch's CPU index, empty = PyPI only), OUT (where
# `heal` writes, default healed/), PYTEST_ARGS (default "-q -n 2").
# Each step is skipped when already done, so running it again is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-}"
case "$what" in
    heal | test | install) ;;
    *) echo "usage: bash scripts/setup.sh heal|test|install" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH="${TORCH:-torch==2.13.0}"
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
OUT="${OUT:-healed/}"
PYTEST_ARGS="${PYTEST_ARGS:--q -n 2}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 GRADIO_ANALYTICS_ENABLED=False

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup: sketchheal needs Python >= 3.10 (PYTHON=$PYTHON is $("$PYTHON" --version 2>&1 || echo missing))" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install -q "$@"; }

# torch first, from the CPU index: a plain `pip install torch` on Linux pulls a multi-GB CUDA build. Only the
# torch wheel itself is looked up there (--no-deps; its dependencies come from PyPI), and an index that cannot be
# reached is skipped after a short timeout (PyPI's wheel is then used).
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "setup: installing $TORCH"
    if [ -n "$TORCH_INDEX" ]; then
        pip_install --no-deps --timeout 15 --retries 1 --extra-index-url "$TORCH_INDEX" "$TORCH"
    fi
    pip_install "$TORCH"
fi

# The package (editable), with the extras each command needs; a stamp per extras set, redone when
# pyproject.toml changes.
extras=""
[ "$what" = test ] && extras="[test,demo,browser]"
stamp="$VENV/.sketchheal-installed${extras:+-test}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing sketchheal$extras"
    pip_install -e ".$extras"
    touch "$stamp"
fi

case "$what" in
    heal)
        "$VENV/bin/sketchheal" heal --example -o "$OUT"
        ;;
    test)
        # Debian's Chromium for the demo's browser test (Playwright cannot download browsers everywhere).
        PYTHON="$PY" bash scripts/install_browser.sh
        # shellcheck disable=SC2086
        "$PY" -m pytest $PYTEST_ARGS
        ;;
esac

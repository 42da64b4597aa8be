"""Every config of the package, as dataclasses validated once before anything is built.

- ``run``: the three sections of a training run (``DataConfig``, ``ModelConfig``, ``TrainConfig``) and ``Config``.
- ``tasks``: ``HealConfig``, ``EvalConfig``, ``ClassifierConfig``.
- ``presets``: named presets (``paper``, ``cpu-small``, ``tiny``) and ``section.field=value`` overrides.
- ``checks``: the allowed values of string fields and the shared field checks.

There are no global mutable settings: pass a config (or one of its parts) to whatever needs it.
"""

from __future__ import annotations

from sketchheal.config.checks import (
    BF16_MODES, ENCODERS, GMLP_RESIDUALS, INIT_PARTS, PAPER_CATEGORIES, RENDER_MODES,
)
from sketchheal.config.presets import PRESETS, apply_overrides, preset
from sketchheal.config.run import Config, DataConfig, ModelConfig, TrainConfig, model_config_from_dict
from sketchheal.config.tasks import ClassifierConfig, EvalConfig, HealConfig

__all__ = [
    "Config", "DataConfig", "ModelConfig", "TrainConfig", "HealConfig", "EvalConfig", "ClassifierConfig",
    "preset", "PRESETS", "apply_overrides", "model_config_from_dict", "PAPER_CATEGORIES", "RENDER_MODES",
    "ENCODERS", "GMLP_RESIDUALS", "INIT_PARTS", "BF16_MODES",
]

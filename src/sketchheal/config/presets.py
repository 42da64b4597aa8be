"""Named presets and ``section.field=value`` overrides."""

from __future__ import annotations

import dataclasses
import json

from sketchheal.config.checks import PAPER_CATEGORIES
from sketchheal.config.run import Config, DataConfig, ModelConfig, TrainConfig


def preset(name: str) -> Config:
    """Named presets. ``paper``: the published settings. ``cpu-small``: learns visibly within an hour on 2 cores."""
    if name == "paper":
        return Config(
            data=DataConfig(paths=[f"{c}.npz" for c in PAPER_CATEGORIES]),
            model=ModelConfig(),
            train=TrainConfig(),
        )
    if name == "cpu-small":
        # Sized from measured step times on this 2-core CPU (benchmarks/bench_train.py; README "Presets"): the paper
        # model takes ~2-3 s a step here, this one ~0.4 s (batch 64) with one process on the machine. The encoder
        # keeps the paper's structure (64 tokens, 4 down + 4 up gMLP blocks, T = 2 loops) at half width; the LSTM
        # is halved (H 512 -> 256) because it dominates the step; batch 100 -> 64 buys more steps per hour. The
        # CNN ablation is narrowed (16 base channels) to stay near the gMLP encoder's size and cost. The learning
        # rate keeps the paper's 1e-3 but decays faster (0.9997 per step) so that a 5,000-step run ends low.
        return Config(
            data=DataConfig(image_size=128, render_mode="reference", num_workers=1),
            model=ModelConfig(d_model=64, d_ffn=256, z_size=64, dec_hidden=256, cnn_channels=16),
            train=TrainConfig(batch_size=64, steps=5000, lr=1e-3, lr_decay=0.9997, min_lr=5e-5, threads=1,
                              checkpoint_every=500, eval_every=250, eval_batches=5, sample_every=1000,
                              log_every=25),
        )
    if name == "tiny":
        # For tests: a model that builds and steps in milliseconds.
        return Config(
            data=DataConfig(image_size=32, render_mode="fast", num_workers=0, max_seq_len=64),
            model=ModelConfig(image_size=32, patch_size=8, d_model=16, d_ffn=32, z_size=8, dec_hidden=16,
                              num_mixtures=3, cnn_channels=4),
            train=TrainConfig(batch_size=8, steps=20, checkpoint_every=10, eval_every=10, eval_batches=1,
                              sample_every=0, log_every=5),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")


PRESETS = ("paper", "cpu-small", "tiny")


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.field=value`` strings (values parsed as JSON when they parse, else kept as strings)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.field=value, e.g. train.lr=3e-4")
        key, raw = item.split("=", 1)
        if "." not in key:
            raise ValueError(f"override {item!r}: name the section, e.g. train.{key}={raw}")
        section, name = key.split(".", 1)
        part = getattr(cfg, section, None)
        if part is None or not dataclasses.is_dataclass(part):
            raise ValueError(f"override {item!r}: unknown section {section!r} (data, model, train)")
        if name not in {f.name for f in dataclasses.fields(part)}:
            raise ValueError(f"override {item!r}: {section} has no field {name!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        current = getattr(part, name)
        if isinstance(current, list) and isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if isinstance(current, float) and isinstance(value, int):
            value = float(value)
        setattr(part, name, value)
    if cfg.model.image_size != cfg.data.image_size:
        cfg.model.image_size = cfg.data.image_size
    return cfg

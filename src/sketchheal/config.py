"""Configuration dataclasses, presets and command-line overrides.

Every field says what the Lmser-pix2seq paper (Li et al., CVIU 2024) and its published code used.
A run's full config is saved as JSON beside the run, inside every checkpoint and in every release directory.
There are no global mutable settings: pass a config (or one of its parts) to whatever needs it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

# The 17 QuickDraw categories of the paper (order as in the published HParams).
PAPER_CATEGORIES: tuple[str, ...] = (
    "airplane", "angel", "alarm clock", "apple", "butterfly", "belt", "bus", "cake", "cat", "clock",
    "eye", "fish", "pig", "sheep", "spider", "The Great Wall of China", "umbrella",
)


@dataclass
class DataConfig:
    # Sketch files: sketch-rnn .npz (one per category) or QuickDraw .ndjson. Paper: the 17 PAPER_CATEGORIES .npz.
    paths: list[str] = field(default_factory=list)
    # Keep sketches with 0 < points <= max_seq_len. Paper: 200.
    max_seq_len: int = 200
    # Offsets are clipped to +-clip before normalisation. Paper: 1000.
    clip: float = 1000.0
    # Side of the square input image. Paper: 128.
    image_size: int = 128
    # "reference" reproduces the published 640-px rendering pixel for pixel; "fast" draws at image_size directly.
    render_mode: str = "reference"
    # Probability that a patch candidate is erased during training. Paper: 0.1.
    mask_prob: float = 0.1
    # When above mask_prob, every training sketch draws its own erase probability uniformly from
    # [mask_prob, mask_prob_max] (the evaluation masks at 0.3 and 0.5 that a model trained at 0.1 never saw).
    # Paper: 0 (always mask_prob).
    mask_prob_max: float = 0.0
    # Deformed inputs (training split only): the input image is drawn from a randomly deformed copy of the sketch
    # (rotated by up to deform_rotate degrees, x and y scaled independently by 1 +- deform_scale, Gaussian noise
    # of deform_jitter x the longer side added to every offset), while the target stays the sketch as drawn, so
    # the encoder learns codes that a small rotation, stretch or wobble does not move (with the published
    # training a 5-degree rotation of a test sheep retrieves itself at top-1 only 24 % of the time). Paper: 0, 0, 0.
    deform_rotate: float = 0.0
    deform_scale: float = 0.0
    deform_jitter: float = 0.0
    # Patch candidates per sketch. Paper: 20.
    max_patches: int = 20
    # DataLoader workers that render and mask (0 = in the main process).
    num_workers: int = 2


@dataclass
class ModelConfig:
    # Encoder: "gmlp" (Lmser gMLP, the paper's model), "cnn" (Lmser CNN ablation); lmser_loops=0 is plain pix2seq.
    encoder: str = "gmlp"
    # Input image side; must match DataConfig.image_size. Paper: 128.
    image_size: int = 128
    # Patch side of the patch embedding (image_size / patch_size)^2 tokens. Paper: 16 -> 64 tokens.
    patch_size: int = 16
    # Token width of the gMLP encoder. Paper: 128.
    d_model: int = 128
    # Hidden width of each gMLP block (halved by the spatial gating unit). Paper: 768.
    d_ffn: int = 768
    # Lmser feedback loops T (weights shared across loops); 0 = no feedback (plain pix2seq ablation). Paper: 2.
    lmser_loops: int = 2
    # gMLP residual form: "paper" (x + f(LN(x))) or "reference" (f(x) + LN(x), as the published code; needed to
    # load the published weights).
    gmlp_residual: str = "paper"
    # Latent size Nz. Paper: 128.
    z_size: int = 128
    # Decoder LSTM hidden size H. Paper: 512 (1024 in the larger released model).
    dec_hidden: int = 512
    # Mixture components M of the bivariate Gaussian mixture over (dx, dy). Paper: 20.
    num_mixtures: int = 20
    # Dropout on the LSTM output. Paper: 0.0.
    dropout: float = 0.0
    # Teacher-forcing dropout: probability of zeroing a decoder input row during training, which forces the decoder
    # to read z (Bowman et al. 2016's word dropout). Paper: 0.0 (not used).
    input_dropout: float = 0.0
    # Base channel count of the CNN ablation encoder (doubles per down block).
    cnn_channels: int = 32
    # Size of the decoder's targets: > 0 resizes every sketch so that its bounding box's longer side is this many
    # units before the offsets are divided by the scale (which is then computed on the resized training split);
    # 0 keeps each sketch's size as drawn. The input image is always rendered at one size (the longer side fills
    # the canvas), so with 0 the decoder must guess how large the drawing was, a spread of 3x on aaron_sheep
    # (5-95 %), and the guess shows up as distorted, drifting strokes; 255 is QuickDraw's simplified-format size.
    # Changes no weight shape. Paper: 0 (size as drawn).
    target_size: float = 0.0


@dataclass
class TrainConfig:
    # Sketches per step (global batch, split across DDP ranks). Paper: 100.
    batch_size: int = 100
    # Optimiser steps. Paper: 150k-160k (released checkpoints at 150k).
    steps: int = 160_000
    # Adam learning rate. Paper: 1e-3.
    lr: float = 1e-3
    # Learning rate multiplied by this every step ... Paper: 0.99999.
    lr_decay: float = 0.99999
    # ... down to this floor. Paper: 1e-5.
    min_lr: float = 1e-5
    # Linear warm-up: the rate rises from lr / N to the schedule's value over the first N steps. A warm start
    # (init_from) begins with a fresh Adam whose first steps are full-size; without a warm-up they undo part of
    # what the weights had learned (the loss jumps for a few thousand steps). Paper: 0 (none).
    warmup_steps: int = 0
    # Gradient-norm clip (applied to encoder and decoder separately, as published). Paper: 1.0.
    grad_clip: float = 1.0
    # Weight of the image reconstruction MSE L_img. Paper: 0.5.
    image_loss_weight: float = 0.5
    # Weight of the pen-lift and end-of-sketch classes in the pen cross-entropy L_p, relative to pen-down (class
    # weighting, not in the paper). At the published evaluation temperature 0.01 the sampler takes the most likely
    # pen state, so a lift or end whose probability is spread over a few steps, each below even odds, is never
    # drawn; a weight w > 1 moves that threshold to about 1 / (1 + w). Paper: 1.0.
    pen_loss_weight: float = 1.0
    # Weight of the KL term (sketch-rnn's); the paper disables it. Paper: 0.0.
    kl_weight: float = 0.0
    # KL floor (sketch-rnn's free bits) when kl_weight > 0. sketch-rnn: 0.2.
    kl_min: float = 0.2
    # Seed of the parameters, the masks and the data order.
    seed: int = 0
    # Start from these weights instead of a random initialisation: a release directory, a training checkpoint or a
    # run directory (fine-tuning, or a warm restart with a new schedule). The model section must match them; the
    # optimiser starts fresh and the step count at 0. "" = random initialisation (the paper).
    init_from: str = ""
    # What init_from provides: "all" (the whole model; its architecture must match), "encoder" (only the
    # encoder's weights, which must fit; the decoder starts from a random initialisation and may differ in any
    # way, e.g. a larger LSTM) or "decoder" (only the decoder's; the encoder starts from a random initialisation
    # and may be of another kind, e.g. model.encoder=cnn: the ablations against one shared decoder). Paper: not
    # used.
    init_parts: str = "all"
    # Keep the encoder's weights fixed and train the decoder only (with init_from: a new decoder for a trained
    # encoder). The encoder then runs without autograd, which halves the step time of cpu-small on a CPU; the
    # image loss is still logged. Paper: False (everything trained jointly).
    freeze_encoder: bool = False
    # Keep the decoder's weights fixed and train the encoder only (with init_from and init_parts=decoder: a new
    # encoder that must learn to write codes a trained decoder reads). Gradients still flow through the decoder
    # into z. Paper: False.
    freeze_decoder: bool = False
    # "auto" picks cuda, then mps, then cpu.
    device: str = "auto"
    # bf16 autocast ("auto" = on for CUDA only; "on"/"off" force it). The mixture loss always runs in fp32.
    bf16: str = "auto"
    # Intra-op threads on CPU (0 = torch's default).
    threads: int = 0
    # Checkpoint every N steps (and on exit).
    checkpoint_every: int = 1000
    # Validation loss every N steps.
    eval_every: int = 500
    # Validation batches per evaluation (0 = the whole valid split).
    eval_batches: int = 10
    # Write a PNG grid (corrupted | healed | original) every N steps (0 = never).
    sample_every: int = 2000
    # Log to metrics.jsonl every N steps.
    log_every: int = 50
    # Consecutive non-finite steps before rolling back to the last good checkpoint with lr * rollback_lr_factor.
    nan_patience: int = 5
    rollback_lr_factor: float = 0.5


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        return cls(
            data=_build(DataConfig, d.get("data", {})),
            model=_build(ModelConfig, d.get("model", {})),
            train=_build(TrainConfig, d.get("train", {})),
        )


def _build(klass, d: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {klass.__name__} field(s): {sorted(unknown)}; known: {sorted(names)}")
    return klass(**d)


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    return _build(ModelConfig, d)


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

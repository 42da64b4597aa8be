"""The three sections of a training run (data, model, train) and the run config that holds them.

Every field says what the Lmser-pix2seq paper (Li et al., CVIU 2024) and its published code used. A run's full
config is saved as JSON beside the run, inside every checkpoint and in every release folder.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


from sketchheal.config.checks import BF16_MODES, ENCODERS, GMLP_RESIDUALS, INIT_PARTS, RENDER_MODES, _check, _check_fields


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
    # The share of training sketches whose squares erase the points inside them (every segment with an end in a
    # square goes whole, as an eraser of points or a vector erasure without cutting does) instead of the pixels.
    # On sparse drawings (QuickDraw's simplified strokes) that erases far more ink than the squares. Paper: 0.
    point_erase: float = 0.0
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

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that no data pipeline can be built from."""
        _check(isinstance(self.paths, list) and all(isinstance(p, str) for p in self.paths),
               f"data.paths must be a list of file names, got {self.paths!r}")
        _check_fields("data", self, {
            "max_seq_len": "int>=1", "clip": ">0", "image_size": "int>=1", "render_mode": RENDER_MODES,
            "mask_prob": "[0,1]", "mask_prob_max": "[0,1]", "point_erase": "[0,1]", "deform_rotate": ">=0", "deform_scale": "[0,1)",
            "deform_jitter": ">=0", "max_patches": "int>=1", "num_workers": "int>=0"})
        _check(self.mask_prob_max == 0 or self.mask_prob <= self.mask_prob_max,
               f"data.mask_prob_max must be 0 (off) or in [data.mask_prob={self.mask_prob}, 1], "
               f"got {self.mask_prob_max!r}")


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

    def validate(self) -> None:
        """Raise ``ValueError`` for settings no encoder/decoder can be built from (checked by ``LmserPix2Seq``)."""
        _check_fields("model", self, {
            "encoder": ENCODERS, "gmlp_residual": GMLP_RESIDUALS, "lmser_loops": "int>=0", "dropout": "[0,1)",
            "input_dropout": "[0,1)", "target_size": ">=0",
            **{name: "int>=1" for name in ("image_size", "patch_size", "d_model", "d_ffn", "z_size", "dec_hidden",
                                           "num_mixtures", "cnn_channels")}})
        if self.encoder == "gmlp":
            _check(self.image_size % self.patch_size == 0,
                   f"model.image_size {self.image_size} is not a multiple of model.patch_size {self.patch_size}")
            _check(self.d_ffn % 2 == 0,
                   f"model.d_ffn must be even (the gating unit splits it in halves), got {self.d_ffn}")
        else:
            _check(self.image_size % 16 == 0,
                   f"the CNN encoder needs model.image_size divisible by 16, got {self.image_size}")


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
    # Extra weight of L_img on the pixels within 6 px of the ink the corruption erased (the pixel's squared error
    # counts 1 + this; 0 = the published plain MSE). The encoder copies what it sees; the gaps are where it has to
    # invent, and they are a few per cent of the image. Not in the paper; the gap-filler's option. Paper: 0.0.
    gap_loss_weight: float = 0.0
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
    # bf16 autocast ("auto" = on a CUDA GPU with native bf16 only; "on"/"off" force it). The mixture loss is fp32.
    bf16: str = "auto"
    # Intra-op threads on CPU (0 = the machine's default: the free cores, printed at the start of training).
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

    def loss_weights(self) -> dict[str, float]:
        """The keyword arguments of ``LmserPix2Seq.compute_losses``: ``model.compute_losses(out, batch,
        **cfg.train.loss_weights())``."""
        return {"image_loss_weight": self.image_loss_weight, "pen_loss_weight": self.pen_loss_weight,
                "kl_weight": self.kl_weight, "kl_min": self.kl_min, "gap_loss_weight": self.gap_loss_weight}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field a training run cannot use."""
        _check_fields("train", self, {
            "batch_size": "int>=1", "steps": "int>=0", "lr": ">0", "lr_decay": "(0,1]", "min_lr": ">=0",
            "warmup_steps": "int>=0", "grad_clip": ">=0", "image_loss_weight": ">=0", "gap_loss_weight": ">=0", "pen_loss_weight": ">0",
            "kl_weight": ">=0", "kl_min": ">=0", "seed": "int>=0", "init_parts": INIT_PARTS, "bf16": BF16_MODES,
            "threads": "int>=0", "checkpoint_every": "int>=0", "eval_every": "int>=0", "eval_batches": "int>=0",
            "sample_every": "int>=0", "log_every": "int>=1", "nan_patience": "int>=1",
            "rollback_lr_factor": "(0,1]"})
        _check(isinstance(self.init_from, str), f"train.init_from must be a path or \"\", got {self.init_from!r}")
        _check(not (self.freeze_encoder and self.freeze_decoder),
               "train.freeze_encoder and train.freeze_decoder together leave nothing to train; set at most one of them")
        _check(isinstance(self.device, str) and bool(self.device),
               f"train.device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")


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

    def validate(self) -> "Config":
        """Check every section, then what the sections must agree on; raise ``ValueError`` naming the field.

        Run once, before anything is built (``sketchheal.training.setup.build_run`` and ``sketchheal train`` do).
        Returns the config, so ``cfg = preset("tiny").validate()`` reads well.
        """
        self.data.validate()
        self.model.validate()
        self.train.validate()
        _check(self.model.image_size == self.data.image_size,
               f"model.image_size ({self.model.image_size}) and data.image_size ({self.data.image_size}) differ; "
               "the model reads the images the data section draws")
        return self


def _build(klass, d: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {klass.__name__} field(s): {sorted(unknown)}; known: {sorted(names)}")
    return klass(**d)


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    return _build(ModelConfig, d)

"""Configuration dataclasses, presets and command-line overrides.

Every field says what the Lmser-pix2seq paper (Li et al., CVIU 2024) and its published code used.
A run's full config is saved as JSON beside the run, inside every checkpoint and in every release directory.
There are no global mutable settings: pass a config (or one of its parts) to whatever needs it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

# The 17 QuickDraw categories of the paper (order as in the published HParams).
PAPER_CATEGORIES: tuple[str, ...] = (
    "airplane", "angel", "alarm clock", "apple", "butterfly", "belt", "bus", "cake", "cat", "clock",
    "eye", "fish", "pig", "sheep", "spider", "The Great Wall of China", "umbrella",
)

# Choices of the string-valued fields (checked by the validate() methods below).
RENDER_MODES = ("reference", "fast")      # sketchheal.sketch.render modes
ENCODERS = ("gmlp", "cnn")                # model.encoder
GMLP_RESIDUALS = ("paper", "reference")   # model.gmlp_residual
INIT_PARTS = ("all", "encoder", "decoder")  # train.init_parts
BF16_MODES = ("auto", "on", "off")        # train.bf16


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x: Any, low: int = 0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _integer(x: Any, low: int = 0) -> bool:
    """Like ``_whole``, also for numpy integers (what array code hands over)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= low


# Kinds of numeric field for _check_fields: (test, what the message says the value must be).
_KINDS = {
    "int>=0": (lambda v: _whole(v, 0), "an integer >= 0"),
    "int>=1": (lambda v: _whole(v, 1), "an integer >= 1"),
    ">0": (lambda v: _finite(v) and v > 0, "a positive number"),
    ">=0": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "[0,1]": (lambda v: _finite(v) and 0 <= v <= 1, "in [0, 1]"),
    "[0,1)": (lambda v: _finite(v) and 0 <= v < 1, "in [0, 1)"),
    "(0,1]": (lambda v: _finite(v) and 0 < v <= 1, "in (0, 1]"),
}


def _check_fields(section: str, obj: Any, rules: dict[str, str | tuple[str, ...]]) -> None:
    """``ValueError`` naming ``section.field`` for the first field that breaks its rule: a ``_KINDS`` key, or a
    tuple of the allowed values."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        ok, what = ((value in rule, f"one of {rule}") if isinstance(rule, tuple)
                    else (_KINDS[rule][0](value), _KINDS[rule][1]))
        _check(ok, f"{section}.{name} must be {what}, got {value!r}")


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

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that no data pipeline can be built from."""
        _check(isinstance(self.paths, list) and all(isinstance(p, str) for p in self.paths),
               f"data.paths must be a list of file names, got {self.paths!r}")
        _check_fields("data", self, {
            "max_seq_len": "int>=1", "clip": ">0", "image_size": "int>=1", "render_mode": RENDER_MODES,
            "mask_prob": "[0,1]", "mask_prob_max": "[0,1]", "deform_rotate": ">=0", "deform_scale": "[0,1)",
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

    def loss_weights(self) -> dict[str, float]:
        """The keyword arguments of ``LmserPix2Seq.compute_losses``: ``model.compute_losses(out, batch,
        **cfg.train.loss_weights())``."""
        return {"image_loss_weight": self.image_loss_weight, "pen_loss_weight": self.pen_loss_weight,
                "kl_weight": self.kl_weight, "kl_min": self.kl_min}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field a training run cannot use."""
        _check_fields("train", self, {
            "batch_size": "int>=1", "steps": "int>=0", "lr": ">0", "lr_decay": "(0,1]", "min_lr": ">=0",
            "warmup_steps": "int>=0", "grad_clip": ">=0", "image_loss_weight": ">=0", "pen_loss_weight": ">0",
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
class ClassifierConfig:
    """The Sketch-a-Net classifier of the recognition-accuracy metric (``sketchheal train-classifier``).

    Saved as ``config`` in ``classifier.pt`` / ``classifier.json``; the network is built from it again on loading.
    """
    # Side of the rendered input image (the papers: 225 or 256; ours: the healing model's 128).
    image_size: int = 128
    # sketchheal.sketch.render mode of the training images: "reference" = the published 640-px rendering.
    render_mode: str = "reference"
    # Keep sketches with at most this many points (the healing protocol's filter).
    max_seq_len: int = 200
    # Channel-width multiplier (1.0 = Sketch-a-Net's 64/128/256/256/256/512/512).
    width: float = 1.0
    # Dropout after L6 and L7. Sketch-a-Net: 0.5.
    dropout: float = 0.5
    # Batch normalisation after every convolution (not in Sketch-a-Net; stable training from scratch with Adam).
    batch_norm: bool = True
    # Optimiser steps.
    steps: int = 10_000
    # Images per step.
    batch_size: int = 128
    # AdamW; the rate decays by a cosine to 1 % of this over the run, after a 2 % linear warm-up.
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # Seed of the weights, the data order and the jitter.
    seed: int = 0
    # Random small affine jitter of the training images: scale, rotation (degrees), shift (fraction of the side),
    # horizontal flip.
    jitter_scale: float = 0.1
    jitter_rotate: float = 10.0
    jitter_shift: float = 0.05
    jitter_flip: bool = True

    def validate(self) -> "ClassifierConfig":
        """Raise ``ValueError`` naming the first field a classifier cannot be trained or built from."""
        _check_fields("classifier", self, {
            "render_mode": RENDER_MODES, "max_seq_len": "int>=1", "width": ">0", "dropout": "[0,1)",
            "steps": "int>=1", "batch_size": "int>=1", "lr": ">0", "weight_decay": ">=0", "seed": "int>=0",
            "jitter_scale": "[0,1)", "jitter_rotate": ">=0", "jitter_shift": ">=0"})
        _check(_whole(self.image_size, 28), f"classifier.image_size must be an integer >= 28, got {self.image_size!r}")
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifierConfig":
        return _build(cls, d)


HEAL_PRECISIONS = ("fp32", "bf16")  # heal.precision


@dataclass
class HealConfig:
    """``sketchheal heal`` / ``sketchheal.heal``: how inputs are healed (the model itself is not a setting).

    "Paper" is the published healing: one sample at temperature 0.01 from the encoder mean of the masked image.
    """

    # Erase probability p of the published patch protocol before healing; None or 0 = heal the input as it is.
    mask: float | None = None
    # Seed of the masks (row i of MaskTable(n, seed) for input i) and the sampling (noise key (seed, i, k)).
    seed: int = 0
    # Sampling temperature tau (> 0; ignored with greedy). Paper: 0.01; our default with best of 8: 0.1.
    temperature: float = 0.1
    # Healed sketches per input, each from the same code with its own noise.
    samples: int = 1
    # Deterministic decoding: the most likely mixture component and pen state, the component's mean.
    greedy: bool = False
    # Image inputs are light ink on a dark background.
    invert: bool = False
    # Sketches encoded and decoded together; changes speed only, never a result.
    batch_size: int = 64
    # Split of sketch-rnn .npz files that is read (train, valid or test).
    split: str = "test"
    # Heal only the first N sketches of each multi-sketch file; None = all.
    limit: int | None = None
    # "fp32", or "bf16": encoder under bfloat16 autocast, the decoder's matrix products in bfloat16 (faster on
    # CPUs with AVX-512 BF16 and on GPUs, slightly different numbers).
    precision: str = "fp32"
    # Best of K: draw K sketches per sample, keep the one agreeing best with the input's ink; 1 = plain sampling
    # (paper); None = 8 when sampling, 1 with greedy.
    candidates: int | None = None
    # Leave out vector sketches with more points than the model's max_seq_len (and count them) instead of failing.
    skip_long: bool = False

    def validate(self) -> "HealConfig":
        """Raise ``ValueError`` naming the first field healing cannot run with (before anything is loaded)."""
        _check(self.mask is None or (_finite(self.mask) and 0 <= self.mask <= 1),
               f"mask must be a probability in [0, 1] (or None), got {self.mask!r}")
        _check(_integer(self.seed, 0), f"seed must be an integer >= 0, got {self.seed!r}")
        for name in ("greedy", "invert", "skip_long"):
            _check(isinstance(getattr(self, name), bool),
                   f"{name} must be true or false, got {getattr(self, name)!r}")
        _check(self.greedy or (_finite(self.temperature) and self.temperature > 0),
               f"temperature must be > 0 (or use greedy), got {self.temperature!r}")
        _check(_integer(self.samples, 1), f"samples must be >= 1, got {self.samples!r}")
        _check(_integer(self.batch_size, 1), f"batch_size must be >= 1, got {self.batch_size!r}")
        _check(isinstance(self.split, str) and bool(self.split), f"split must be a split name, got {self.split!r}")
        _check(self.limit is None or _integer(self.limit, 1),
               f"limit must be an integer >= 1 (or None: all), got {self.limit!r}")
        _check(self.precision in HEAL_PRECISIONS,
               f"precision must be one of {HEAL_PRECISIONS}, got {self.precision!r}")
        _check(self.candidates is None or (_integer(self.candidates, 1)
                                           and not (self.greedy and self.candidates > 1)),
               f"candidates must be >= 1 (and 1 with greedy decoding, which draws one sketch), "
               f"got {self.candidates!r}")
        return self


EVAL_DEVICES = ("auto", "cpu", "cuda", "mps")  # eval.device (also cuda:N)


@dataclass
class EvalConfig:
    """``sketchheal evaluate`` (``sketchheal.evaluation.protocol.evaluate``): the protocol of docs/evaluation.md.

    "Paper" is the published Lmser-pix2seq evaluation. Not part of ``Config``: an evaluation reads trained models,
    it is not a setting of a training run.
    """

    # Split of each category file that is evaluated. Paper: "test" (2,500 sketches per category, 17 categories).
    split: str = "test"
    # Erase probabilities p of the patch candidates, one evaluation per p; one mask table for all, so the masks are
    # nested across p. Paper: 0.1 and 0.3 (0.5 in later work).
    masks: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    # Sampling temperature of the healed sketch (ignored with greedy). Paper: 0.01.
    temperature: float = 0.01
    # Greedy decoding (most likely mixture component and pen state) instead of sampling. Paper: False.
    greedy: bool = False
    # Seed of the mask table (when none is loaded) and of the sampling noise, keyed per sketch. Paper: a fixed
    # seed.npy indexed by sketch and point (not the same draws as ours, see docs/evaluation.md).
    seed: int = 0
    # Healed candidates per sketch; the one whose ink agrees best with the corrupted input is kept. Paper: 1.
    candidates: int = 1
    # Output of `sketchheal train-classifier` (file or folder) for recognition accuracy; "" = none. Paper: a
    # Sketch-a-Net at 256 px, not released.
    classifier: str = ""
    # Keep the first N sketches of each category (development numbers: a smaller gallery makes top-k easier);
    # None = all. Paper: all.
    max_per_category: int | None = None
    # masks.npy of an earlier evaluation to reuse its exact masks (at least as many rows as sketches); "" = make
    # one from the seed. Paper: its own seed.npy.
    mask_table: str = ""
    # Sketches per batch when encoding and decoding; changes speed only, never a number.
    batch_size: int = 100
    # auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.
    device: str = "auto"
    # DataLoader workers that render the images; None = one less than the CPU count, at most 8; 0 = in-process.
    num_workers: int | None = None
    # Sketches per category in each picture grid (corrupted | healed | original); 0 = no grids.
    grid_count: int = 8

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field an evaluation cannot run with (before anything is loaded)."""
        _check(isinstance(self.split, str) and bool(self.split), f"eval.split must be a split name, got {self.split!r}")
        _check(isinstance(self.masks, (list, tuple)) and len(self.masks) > 0
               and all(_finite(p) and 0 <= p <= 1 for p in self.masks),
               f"eval.masks must be a non-empty list of probabilities in [0, 1], e.g. 0.1,0.3,0.5, got {self.masks!r}")
        _check(isinstance(self.greedy, bool), f"eval.greedy must be true or false, got {self.greedy!r}")
        _check_fields("eval", self, {"seed": "int>=0", "candidates": "int>=1", "batch_size": "int>=1",
                                     "grid_count": "int>=0"})
        _check(_finite(self.temperature) and (self.temperature > 0 or self.greedy),
               f"eval.temperature must be > 0 (or use greedy decoding), got {self.temperature!r}")
        _check(not (self.greedy and self.candidates > 1),
               f"eval.candidates must be 1 with greedy decoding, got {self.candidates!r}")
        for name in ("classifier", "mask_table"):
            value = getattr(self, name)
            _check(isinstance(value, str), f"eval.{name} must be a path or \"\", got {value!r}")
        for name, low in (("max_per_category", 1), ("num_workers", 0)):
            value = getattr(self, name)
            _check(value is None or _whole(value, low),
                   f"eval.{name} must be an integer >= {low} or None, got {value!r}")
        device = self.device if isinstance(self.device, str) else ""
        _check(device in EVAL_DEVICES or (device.startswith("cuda:") and device[5:].isdigit()),
               f"eval.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")


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

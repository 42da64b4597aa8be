"""Lmser-pix2seq: an Lmser image encoder and a sketch-rnn stroke decoder, trained on corrupted -> complete sketches.

Also the release-directory format (``model.safetensors`` + ``config.json``) that ``save_pretrained`` writes and
``from_pretrained`` reads; that is the only file access in ``sketchheal.model``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sketchheal.config import ModelConfig, model_config_from_dict
from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.encoder import EncoderOutput, build_encoder
from sketchheal.model.gmlp import RESIDUAL_FORMS
from sketchheal.model.mixture import kl_divergence, kl_loss, pen_cross_entropy, reconstruction_terms, split_params

# Release directory layout. Bump FORMAT_VERSION when a change would make older readers misread a release.
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
SOS = (0.0, 0.0, 1.0, 0.0, 0.0)  # stroke-5 start-of-sketch row


def check_model_config(cfg: ModelConfig) -> None:
    """Raise ``ValueError`` for settings no encoder/decoder can be built from."""
    if cfg.gmlp_residual not in RESIDUAL_FORMS:
        raise ValueError(f"model.gmlp_residual must be one of {RESIDUAL_FORMS}, got {cfg.gmlp_residual!r}")
    for name in ("image_size", "patch_size", "d_model", "d_ffn", "z_size", "dec_hidden", "num_mixtures",
                 "cnn_channels"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"model.{name} must be positive, got {getattr(cfg, name)}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {cfg.dropout}")
    if not (math.isfinite(cfg.target_size) and cfg.target_size >= 0):
        raise ValueError(f"model.target_size must be >= 0 (0 = size as drawn), got {cfg.target_size}")


class LmserPix2Seq(nn.Module):
    """Image ``(B, 1, N, N)`` -> latent ``z (B, Nz)`` -> stroke-5 mixture parameters ``(B, L, 6M+3)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        check_model_config(cfg)
        self.config = cfg
        self.encoder = build_encoder(cfg)
        self.decoder = StrokeDecoder(cfg)

    def encode(self, image: torch.Tensor) -> EncoderOutput:
        """``image (B, 1, N, N)`` in [-1, 1] -> ``EncoderOutput(mu, logvar, recons)``; ``mu`` is the sketch code."""
        return self.encoder(image)

    @staticmethod
    def sample_latent(mu: torch.Tensor, logvar: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterisation: ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``; ``(B, Nz)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    @staticmethod
    def decoder_inputs(strokes: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``[SOS, strokes[:, :-1]]`` for a ``(B, L, 5)`` target -> ``(B, L, 5)``."""
        sos = strokes.new_tensor(SOS).expand(strokes.shape[0], 1, 5)  # (B, 1, 5)
        return torch.cat([sos, strokes[:, :-1]], dim=1)

    def forward(self, image: torch.Tensor, strokes: torch.Tensor, lengths: torch.Tensor | None = None, *,
                sample_z: bool = True, generator: torch.Generator | None = None) -> dict[str, Any]:
        """One teacher-forced pass.

        ``image (B, 1, N, N)`` (the corrupted sketch), ``strokes (B, L+1, 5)`` the normalised stroke-5 target,
        ``lengths (B,)`` real points per sketch (used by the loss, not here: the pen loss covers every step).
        ``sample_z=False`` uses ``z = mu``. Returns ``params (B, L+1, 6M+3)``, ``mu``, ``logvar`` ``(B, Nz)``,
        ``recons`` (list of ``(B, 1, N, N)``, last = final) and ``z``.
        """
        enc = self.encoder(image)
        z = self.sample_latent(enc.mu, enc.logvar, generator) if sample_z else enc.mu
        inputs = self.decoder_inputs(strokes)  # (B, L+1, 5)
        p = self.config.input_dropout
        if self.training and p > 0:
            # Teacher-forcing dropout (not in the paper): whole input rows are zeroed with probability p, so the
            # decoder cannot predict every step from the previous one alone and has to read z.
            keep = torch.rand(inputs.shape[:2] + (1,), device=inputs.device) >= p  # (B, L+1, 1)
            inputs = inputs * keep
        params, _ = self.decoder(inputs, z)
        return {"params": params, "mu": enc.mu, "logvar": enc.logvar, "recons": enc.recons, "z": z}

    def compute_losses(self, out: dict[str, Any], batch: dict[str, torch.Tensor], train_cfg) -> dict[str, torch.Tensor]:
        """``loss = L_R (pen classes weighted) + image_loss_weight * L_img (+ kl_weight * max(KL, kl_min))``.

        ``batch`` needs ``strokes (B, L+1, 5)``, ``length (B,)`` and ``clean (B, 1, N, N)`` (the uncorrupted image).
        ``L_R``: sketch-rnn reconstruction loss (``mixture.reconstruction_loss``, fp32, log space); with
        ``train_cfg.pen_loss_weight`` w != 1 the loss uses the class-weighted pen term while ``stroke`` still
        reports the unweighted L_R (comparable across runs).
        ``L_img = mean((recons[-1] - clean)^2)``: MSE of the final reconstruction only, as published.
        ``kl`` is returned unfloored (for logging) whatever ``kl_weight`` is. All values are fp32 scalars.
        """
        lengths = batch["length"] if "length" in batch else batch["lengths"]
        offset, pen = reconstruction_terms(out["params"], batch["strokes"], lengths)
        stroke = offset + pen
        w = float(getattr(train_cfg, "pen_loss_weight", 1.0))
        if w == 1.0:
            fitted = stroke
        else:
            with torch.autocast(device_type=out["params"].device.type, enabled=False):
                fitted = offset + pen_cross_entropy(split_params(out["params"])[-1], batch["strokes"], w)
        with torch.autocast(device_type=out["params"].device.type, enabled=False):
            image = F.mse_loss(out["recons"][-1].float(), batch["clean"].float())
        kl = kl_divergence(out["mu"], out["logvar"])
        loss = fitted + train_cfg.image_loss_weight * image
        if train_cfg.kl_weight > 0:
            loss = loss + train_cfg.kl_weight * kl_loss(out["mu"], out["logvar"], train_cfg.kl_min)
        return {"loss": loss, "stroke": stroke, "image": image, "kl": kl}

    def num_parameters(self) -> dict[str, int]:
        """``{"encoder": n, "decoder": n, "total": n}``."""
        enc = sum(p.numel() for p in self.encoder.parameters())
        dec = sum(p.numel() for p in self.decoder.parameters())
        return {"encoder": enc, "decoder": dec, "total": enc + dec}

    # ----------------------------------------------------------------------------------------------------------------
    # Release directories

    def save_pretrained(self, directory: str | Path, *, scale: float, max_seq_len: int, categories: list[str],
                        extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (each atomically); return the folder.

        ``config.json``: ``format_version``, ``sketchheal_version``, ``model`` (ModelConfig fields), ``scale`` (the
        offset normalisation), ``max_seq_len``, ``categories`` and ``extra`` (free-form JSON: training step, data,
        licence). Refuses (``ValueError``) to write non-finite weights.
        """
        from safetensors.torch import save_file

        from sketchheal.utils.version import __version__
        from sketchheal.utils.fileio import atomic_path, atomic_write

        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise ValueError(f"refusing to save a model with NaN/inf weights in {bad[:5]}"
                             + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
        meta = {
            "format_version": FORMAT_VERSION,
            "sketchheal_version": __version__,
            "model": dataclasses.asdict(self.config),
            "scale": float(scale),
            "max_seq_len": int(max_seq_len),
            "categories": [str(c) for c in categories],
            "extra": dict(extra or {}),
        }
        try:
            text = json.dumps(meta, indent=2, sort_keys=True) + "\n"  # before writing anything
        except (TypeError, ValueError) as e:
            raise ValueError(f"save_pretrained: extra must be JSON-serialisable ({e})") from e
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt", "sketchheal_format_version": str(FORMAT_VERSION)})
        with atomic_write(directory / CONFIG_NAME, "w") as f:
            f.write(text)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path,
                        device: str | torch.device | None = None) -> tuple["LmserPix2Seq", dict[str, Any]]:
        """Load a release directory -> ``(model in eval mode, meta)``; ``meta`` is the parsed ``config.json``."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such model directory (expected {CONFIG_NAME} + {WEIGHTS_NAME})")
        meta = read_release_config(directory / CONFIG_NAME)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; a release directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
        model = cls(meta["model_config"])
        try:
            state = load_file(str(weights), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"{weights}: not a readable safetensors file ({e})") from e
        load_state_dict_checked(model, state, source=str(weights))
        del meta["model_config"]
        if device is not None:
            model.to(device)
        return model.eval(), meta


def read_release_config(path: Path) -> dict[str, Any]:
    """Parse and check a release ``config.json``; adds ``model_config`` (a ModelConfig) to the returned dict."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a release directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: no integer 'format_version'; is this a sketchheal release directory?")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version} was written by a newer sketchheal "
                         f"({meta.get('sketchheal_version', '?')}); this version reads up to {FORMAT_VERSION}. "
                         "Upgrade sketchheal.")
    if version < 1:
        raise ValueError(f"{path}: unknown format_version {version}")
    missing = [k for k in ("model", "scale", "max_seq_len", "categories") if k not in meta]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    if not isinstance(meta["model"], dict):
        raise ValueError(f"{path}: 'model' must be an object of ModelConfig fields")
    try:
        cfg = model_config_from_dict(meta["model"])
        check_model_config(cfg)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: bad model config: {e}") from e
    meta["model_config"] = cfg
    meta.setdefault("extra", {})
    return meta


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """``model.load_state_dict(state)`` with one error that lists every missing, unexpected and mis-shaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append(f"shape mismatches [{'; '.join(shapes)}]")
        raise ValueError(f"{source}: weights do not fit the model config: " + ", ".join(parts))
    model.load_state_dict(state, strict=True)

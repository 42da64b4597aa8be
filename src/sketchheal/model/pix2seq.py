"""Lmser-pix2seq: an Lmser image encoder and a sketch-rnn stroke decoder, trained on corrupted -> complete sketches.

A pure ``nn.Module``: reading and writing its weights (release folders, checkpoints) is ``sketchheal.model.weights``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sketchheal.config import ModelConfig
from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.encoder import EncoderOutput, build_encoder
from sketchheal.model.mixture import kl_divergence, kl_loss, pen_cross_entropy, reconstruction_terms, split_params
from sketchheal.sketch.strokes import SOS_TOKEN as SOS  # the stroke-5 start-of-sketch row (its one home)


GAP_RADIUS = 6  # px at 128 px: about half the side of the published erasing square (24 px at 128 px)


def gap_weights(clean: torch.Tensor, corrupted: torch.Tensor, weight: float, radius: int = GAP_RADIUS
                ) -> torch.Tensor:
    """Per-pixel weights ``(B, 1, N, N)`` of the image loss: ``1 + weight`` within ``radius`` px (a square
    neighbourhood, scaled with ``N / 128``) of ink the corruption erased (clean ink where the corrupted image is
    paper: ``clean - corrupted > 1``, in [-1, 1] images), 1 elsewhere. The erased squares are where the encoder
    must invent; elsewhere it copies what it sees."""
    r = max(1, round(radius * clean.shape[-1] / 128))
    erased = ((clean.float() - corrupted.float()) > 1.0).float()  # (B, 1, N, N)
    near = F.max_pool2d(erased, kernel_size=2 * r + 1, stride=1, padding=r)  # (B, 1, N, N): dilated by r
    return 1.0 + weight * near


class LmserPix2Seq(nn.Module):
    """Image ``(B, 1, N, N)`` -> latent ``z (B, Nz)`` -> stroke-5 mixture parameters ``(B, L, 6M+3)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
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

    def compute_losses(self, out: dict[str, Any], batch: dict[str, torch.Tensor], *, image_loss_weight: float,
                       pen_loss_weight: float, kl_weight: float, kl_min: float,
                       gap_loss_weight: float = 0.0) -> dict[str, torch.Tensor]:
        """``loss = L_R (pen classes weighted) + image_loss_weight * L_img (+ kl_weight * max(KL, kl_min))``.

        ``out`` is :meth:`forward`'s; ``batch`` needs ``strokes (B, L+1, 5)``, ``length (B,)`` (real points per
        sketch) and ``clean (B, 1, N, N)`` (the uncorrupted image). The weights are ``TrainConfig``'s fields of the
        same names (the paper: 0.5, 1, 0, -, 0). With ``pen_loss_weight`` w != 1 the loss uses the class-weighted pen
        term while ``stroke`` still reports the unweighted L_R (comparable across runs). ``kl`` is returned
        unfloored (for logging) whatever ``kl_weight`` is. With ``gap_loss_weight`` g > 0 (not in the paper; needs
        ``corrupted (B, 1, N, N)`` in ``batch``) L_img weighs the pixels near the erased ink 1 + g times
        (:func:`gap_weights`) while ``image`` still reports the plain MSE. All values are fp32 scalars.

        The terms are the published system's (L_R and L_img, no KL term); the description of it that this package
        follows numbers no equations, so the comments below name each term rather than number it.
        """
        device = out["params"].device.type
        # L_R = L_s + L_p (sketch-rnn's reconstruction loss): L_s the negative log-density of (dx, dy) under the
        # bivariate Gaussian mixture over the real points, L_p the pen-state cross-entropy over all Nmax + 1 steps,
        # both divided by (Nmax + 1) * batch; in log space (logsumexp), fp32.
        offset, pen = reconstruction_terms(out["params"], batch["strokes"], batch["length"])
        stroke = offset + pen
        if pen_loss_weight == 1.0:
            fitted = stroke
        else:  # L_p with the lift and end classes weighted by w (not in the paper)
            with torch.autocast(device_type=device, enabled=False):
                fitted = offset + pen_cross_entropy(split_params(out["params"])[-1], batch["strokes"], pen_loss_weight)
        # L_img = mean((recons_T - clean)^2): MSE of the final Lmser loop's reconstruction only, as published.
        with torch.autocast(device_type=device, enabled=False):
            err = (out["recons"][-1].float() - batch["clean"].float()) ** 2  # (B, 1, N, N)
            image = err.mean()
            if gap_loss_weight > 0:  # mean((1 + g * G) * err): the gaps weigh more (not in the paper)
                fitted_image = (gap_weights(batch["clean"], batch["corrupted"], gap_loss_weight) * err).mean()
            else:
                fitted_image = image
        kl = kl_divergence(out["mu"], out["logvar"])
        # Total, as published: L_R + 0.5 L_img (image_loss_weight = 0.5) ...
        loss = fitted + image_loss_weight * fitted_image
        if kl_weight > 0:  # ... and no KL term; sketch-rnn's floored KL when asked for
            loss = loss + kl_weight * kl_loss(out["mu"], out["logvar"], kl_min)
        return {"loss": loss, "stroke": stroke, "image": image, "kl": kl}

    def num_parameters(self) -> dict[str, int]:
        """``{"encoder": n, "decoder": n, "total": n}``."""
        enc = sum(p.numel() for p in self.encoder.parameters())
        dec = sum(p.numel() for p in self.decoder.parameters())
        return {"encoder": enc, "decoder": dec, "total": enc + dec}

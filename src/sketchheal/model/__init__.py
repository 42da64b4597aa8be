"""Lmser-pix2seq model: gMLP / CNN Lmser encoders, the sketch-rnn stroke decoder and its mixture output (no I/O
except the release-directory reader and writer on ``LmserPix2Seq``)."""

from __future__ import annotations

from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.encoder import EncoderOutput, LmserCNNEncoder, LmserGMLPEncoder, build_encoder
from sketchheal.model.gmlp import GMLPBlock, SpatialGatingUnit
from sketchheal.model.mixture import kl_divergence, kl_loss, reconstruction_loss, sample_step, split_params
from sketchheal.model.pix2seq import FORMAT_VERSION, SOS, LmserPix2Seq

__all__ = [
    "EncoderOutput", "FORMAT_VERSION", "GMLPBlock", "LmserCNNEncoder", "LmserGMLPEncoder", "LmserPix2Seq", "SOS",
    "SpatialGatingUnit", "StrokeDecoder", "build_encoder", "kl_divergence", "kl_loss", "reconstruction_loss",
    "sample_step", "split_params",
]

"""Lmser-pix2seq model: gMLP / CNN Lmser encoders, the sketch-rnn stroke decoder and its mixture output (pure
modules), and ``weights`` (release folders and checkpoints on disk: the only file access in ``sketchheal.model``)."""

from __future__ import annotations

from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.encoder import EncoderOutput, LmserCNNEncoder, LmserGMLPEncoder, build_encoder
from sketchheal.model.gmlp import GMLPBlock, SpatialGatingUnit
from sketchheal.model.mixture import kl_divergence, kl_loss, reconstruction_loss, sample_step, split_params
from sketchheal.model.pix2seq import SOS, LmserPix2Seq
from sketchheal.model.weights import FORMAT_VERSION, load_release, save_release

__all__ = [
    "EncoderOutput", "FORMAT_VERSION", "GMLPBlock", "LmserCNNEncoder", "LmserGMLPEncoder", "LmserPix2Seq", "SOS",
    "SpatialGatingUnit", "StrokeDecoder", "build_encoder", "kl_divergence", "kl_loss", "reconstruction_loss",
    "load_release", "sample_step", "save_release", "split_params",
]

"""Release directories from training checkpoints (``sketchheal export``) and from the published Lmser-pix2seq weights
(``sketchheal import-reference``).

A release directory is what ``sketchheal.model.weights.save_release`` writes: ``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch

from sketchheal.config import PAPER_CATEGORIES, Config, ModelConfig
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import (
    load_state_dict_checked, read_checkpoint, read_torch_file, save_release, strip_wrapper_prefixes,
)

# The published code hard-codes this normalisation scale at test time (std of the paper's 17 training sets).
REFERENCE_SCALE = 44.18034
CHECKPOINT_KEYS = ("model", "config", "step", "scale", "categories", "max_seq_len", "version")

# Published encoder key prefixes -> ours (docs/reference.md, "Layout of the released checkpoints").
_ENCODER_RENAMES = {
    "patcher.": "encoder.patch_embed.",
    "reclinear.": "encoder.to_pixels.",
    "active.": "encoder.norm_out.",
    "fc_mu.": "encoder.fc_mu.",
    "fc_sigma.": "encoder.fc_logvar.",
}
_BLOCK_KEY = re.compile(r"^(downsampling|upsampling)([1-4])\.(.+)$")
_DECODER_PREFIXES = ("fc_hc.", "lstm.", "fc_params.")


def reference_key_to_ours(key: str, *, part: str) -> str | None:
    """Our state-dict key for a published encoder (``part="encoder"``) or decoder key; ``None`` if it has none."""
    if part == "decoder":
        return f"decoder.{key}" if key.startswith(_DECODER_PREFIXES) else None
    if key == "pos_emb":
        return "encoder.pos_emb"
    m = _BLOCK_KEY.match(key)
    if m:
        path = "down" if m.group(1) == "downsampling" else "up"
        return f"encoder.{path}.{int(m.group(2)) - 1}.{m.group(3)}"
    for old, new in _ENCODER_RENAMES.items():
        if key.startswith(old):
            return new + key[len(old):]
    return None


def _load_reference_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (the published {what} weights, e.g. "
                                f"{what}RNN_epoch_150000.pth)")
    state = read_torch_file(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor) of the published {what}")
    if state and all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _require(state: dict[str, torch.Tensor], keys: list[str], path: Path) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; is this a published Lmser-pix2seq checkpoint?")


def reference_model_config(enc: dict[str, torch.Tensor], dec: dict[str, torch.Tensor], *, lmser_loops: int = 2,
                           encoder_path: Path = Path("encoder"), decoder_path: Path = Path("decoder")) -> ModelConfig:
    """Infer the ModelConfig of published weights from their shapes (``gmlp_residual="reference"``)."""
    _require(enc, ["patcher.weight", "pos_emb", "downsampling1.channel_proj1.weight", "fc_mu.weight"], encoder_path)
    _require(dec, ["lstm.weight_hh_l0", "fc_params.weight"], decoder_path)
    d_model, _, patch, _ = enc["patcher.weight"].shape  # (d_model, 1, p, p)
    tokens = enc["pos_emb"].shape[1]  # (1, tokens, d_model)
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise ValueError(f"{encoder_path}: pos_emb has {tokens} tokens, not a square grid")
    n_out = dec["fc_params.weight"].shape[0]  # (6M + 3, H)
    if (n_out - 3) % 6:
        raise ValueError(f"{decoder_path}: fc_params has {n_out} outputs, not 6M + 3")
    return ModelConfig(
        encoder="gmlp",
        image_size=grid * patch,
        patch_size=patch,
        d_model=d_model,
        d_ffn=enc["downsampling1.channel_proj1.weight"].shape[0],
        lmser_loops=lmser_loops,
        gmlp_residual="reference",
        z_size=enc["fc_mu.weight"].shape[0],
        dec_hidden=dec["lstm.weight_hh_l0"].shape[1],
        num_mixtures=(n_out - 3) // 6,
        dropout=0.0,
    )


def reference_to_model(enc: dict[str, torch.Tensor], dec: dict[str, torch.Tensor], *, lmser_loops: int = 2,
                       encoder_path: Path = Path("encoder"),
                       decoder_path: Path = Path("decoder")) -> LmserPix2Seq:
    """Build an ``LmserPix2Seq`` holding the published weights; every key and shape is checked."""
    cfg = reference_model_config(enc, dec, lmser_loops=lmser_loops, encoder_path=encoder_path,
                                 decoder_path=decoder_path)
    model = LmserPix2Seq(cfg)
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for part, state, path in (("encoder", enc, encoder_path), ("decoder", dec, decoder_path)):
        unexpected, shapes = [], []
        for key, value in state.items():
            ours = reference_key_to_ours(key, part=part)
            if ours is None or ours not in own:
                unexpected.append(key)
            elif value.shape != own[ours].shape:
                shapes.append(f"{key}: {tuple(value.shape)}, expected {tuple(own[ours].shape)}")
            else:
                mapped[ours] = value.detach().to(torch.float32)
        expected = {k for k in own if k.startswith(f"{part}.")}
        covered = {reference_key_to_ours(k, part=part) for k in state}
        missing = sorted(k for k in expected if k not in covered)
        if missing:
            problems.append(f"{path}: missing keys (our names) {missing}")
        if unexpected:
            problems.append(f"{path}: unexpected keys {sorted(unexpected)}")
        if shapes:
            problems.append(f"{path}: shape mismatches [{'; '.join(sorted(shapes))}]")
    if problems:
        raise ValueError("published weights do not fit: " + " | ".join(problems))
    load_state_dict_checked(model, mapped, source=f"{encoder_path} + {decoder_path}")
    return model.eval()


def import_reference(encoder_path: str | Path, decoder_path: str | Path, out_dir: str | Path, *,
                     scale: float = REFERENCE_SCALE, categories: list[str] | tuple[str, ...] = PAPER_CATEGORIES,
                     max_seq_len: int = 200, lmser_loops: int = 2,
                     extra: dict[str, Any] | None = None) -> LmserPix2Seq:
    """Turn the published ``encoderRNN_*.pth`` + ``decoderRNN_*.pth`` into a release directory; return the model.

    ``scale`` is the offset normalisation the weights were trained with (the published code's 44.18034, the std over
    dx, dy *and* pen of its training data). The published model's last point is an end token where this package
    uses a pen-up followed by an end token (see ARCHITECTURE.md): sampling stops at the end token either way.
    """
    encoder_path, decoder_path = Path(encoder_path), Path(decoder_path)
    enc = _load_reference_state(encoder_path, "encoder")
    dec = _load_reference_state(decoder_path, "decoder")
    model = reference_to_model(enc, dec, lmser_loops=lmser_loops, encoder_path=encoder_path,
                               decoder_path=decoder_path)
    info = {
        "source": "published Lmser-pix2seq weights (github.com/CMACH508/Lmser-pix2seq)",
        "encoder_file": encoder_path.name,
        "decoder_file": decoder_path.name,
        "data": "QuickDraw (CC BY 4.0), sketch-rnn .npz",
    }
    save_release(model, out_dir, scale=scale, max_seq_len=max_seq_len, categories=list(categories),
                 extra={**info, **(extra or {})})
    return model


def training_lineage(ckpt: dict[str, Any], *, max_depth: int = 32) -> list[dict[str, Any]]:
    """The chain of runs behind a checkpoint, newest first: ``[{"source", "step"}, ...]``.

    Each run started with ``--init-from`` names its source (``train.init_from``); that source's own step and source
    are read in turn (training checkpoints, run directories and release directories). A release directory that
    records its own ``lineage`` ends the walk with that record: it was taken when the release was made, while a
    path read now may hold a later release (a model fine-tuned from its own release folder and exported back into
    it names itself as its source). A source that cannot be read, or one already in the chain, ends the chain with
    ``"step": None`` (paths are as given at training time, usually relative to the directory the run was started
    in).
    """
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    source = str(((ckpt.get("config") or {}).get("train") or {}).get("init_from") or "")
    while source and len(chain) < max_depth:
        if source in seen:  # a cycle of paths: what that path held then is not known any more
            chain.append({"source": source, "step": None})
            break
        seen.add(source)
        path = Path(source)
        step, parent, recorded = None, "", None
        try:
            if path.is_dir() and (path / "config.json").is_file() and not (path / "ckpt_last.pt").is_file():
                meta = json.loads((path / "config.json").read_text())
                extra = meta.get("extra") or {}
                step, parent = extra.get("step"), (extra.get("train") or {}).get("init_from") or ""
                recorded = extra.get("lineage") if isinstance(extra.get("lineage"), list) else None
            else:
                src = read_checkpoint(path)
                step = src.get("step")
                parent = ((src.get("config") or {}).get("train") or {}).get("init_from") or ""
        except (OSError, ValueError, RuntimeError, AttributeError, TypeError):
            step, parent = None, ""
        chain.append({"source": source, "step": step})
        if recorded is not None:
            chain += [{"source": str(link.get("source", "")), "step": link.get("step")}
                      for link in recorded if isinstance(link, dict)][:max_depth - len(chain)]
            break
        source = str(parent)
    return chain


def export_checkpoint(checkpoint_path: str | Path, out_dir: str | Path, *,
                      extra: dict[str, Any] | None = None) -> LmserPix2Seq:
    """Turn a training checkpoint (``sketchheal train``; a run folder means its ``ckpt_last.pt``) into a release
    directory; return the model."""
    path = Path(checkpoint_path)
    ckpt = read_checkpoint(path)  # weights_only; refuses foreign files and newer checkpoint formats
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a sketchheal training checkpoint: missing key(s) {missing}")
    try:
        cfg = Config.from_dict(ckpt["config"])
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: bad config in checkpoint: {e}") from e
    model = LmserPix2Seq(cfg.model)
    load_state_dict_checked(model, strip_wrapper_prefixes(dict(ckpt["model"])), source=str(path))
    lineage = training_lineage(ckpt)
    known = all(link["step"] is not None for link in lineage)
    info = {
        "source": f"training checkpoint {path.name}",
        "step": ckpt["step"],
        # steps of this run plus those of the runs it was started from (--init-from); None if one is unknown
        "total_steps": ckpt["step"] + sum(link["step"] for link in lineage) if known else None,
        "lineage": lineage,
        "trained_with": ckpt["version"],
        "data": cfg.to_dict()["data"],
        "train": cfg.to_dict()["train"],
    }
    save_release(model, out_dir, scale=float(ckpt["scale"]), max_seq_len=int(ckpt["max_seq_len"]),
                 categories=list(ckpt["categories"]), extra={**info, **(extra or {})})
    return model.eval()

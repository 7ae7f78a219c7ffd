"""SelfTalk (Peng et al., ACM MM 2023): a self-supervised commutative training diagram for 3D talking faces.

After the paper and its public code (github psyai-net/SelfTalk_release), for our motion instead of mesh
vertices:

- facial animator: audio encoder (wav2vec2; SelfTalk uses xlsr-53 English, the CPU presets the log-mel
  encoder), a linear map to ``feature_dim``, a transformer decoder over the audio features with themselves as
  memory (no masks: SelfTalk's animator is not autoregressive), a linear map to motion initialised at zero;
- lip reader (trained with the animator): the mouth-driving part of the predicted motion (FLAME: expression +
  jaw, 53 numbers; ARKit: the 28 mouth weights; SelfTalk: the lip vertices) through a linear map to the
  recognizer's width, resampled to the recognizer's frame rate (linear, ``align_corners``), a transformer
  (``nn.Transformer`` over itself, ``encoder_layers`` each side) and a linear head over the recognizer's
  vocabulary;
- speech recognizer (``baseline.recognizer``: a ``Wav2Vec2ForCTC`` hub id or local directory, frozen, loaded
  when training starts, never stored in the model directory): its last hidden states and its greedy transcript
  of the person's audio are the lip reader's targets.

Loss: the engine's motion loss (SelfTalk: vertex + velocity MSE) + ``lip_feature_weight`` x MSE(lip features,
recognizer hidden states) + ``ctc_weight`` x CTC(lip-read logits, the recognizer's transcript) — SelfTalk
weighs them 1000 : 1000 : 0.001 : 0.0001 on vertices in metres; ours are rebalanced for motion in units of
its standard deviation. Without a recognizer (``None``) the lip reader gets no loss and the model is its
animator alone. Inference is the animator.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...config import DualTalkConfig
from ...errors import DualTalkError
from ...features.audio_encoder import build_audio_encoder, interpolate_frames, normalize_waveform
from ...layout import get_layout
from .common import BaselineModel, ctc_targets, init_zero


def lip_columns(cfg: DualTalkConfig) -> list[int]:
    """The motion columns the lip reader reads: ARKit's mouth group, FLAME's expression and jaw."""
    groups = get_layout(cfg.motion_layout).groups
    names = ["mouth"] if "mouth" in groups else ["exp", "jaw"]
    cols: list[int] = []
    for name in names:
        part = groups[name]
        cols += list(range(cfg.motion_dim))[part] if isinstance(part, slice) else list(part)
    return cols


def load_recognizer(source: str, cfg: DualTalkConfig) -> nn.Module:
    """A frozen ``Wav2Vec2ForCTC`` from a hub id or a local directory (one error line if it cannot load or does
    not fit ``recognizer_dim``/``recognizer_vocab``)."""
    from transformers import Wav2Vec2ForCTC

    local = Path(source).expanduser()
    if (source.startswith((".", "/", "~")) or source.count("/") > 1) and not local.is_dir():  # a hub id: ORG/NAME
        raise DualTalkError(f"selftalk: cannot load the speech recognizer {source!r} (directory not found)")
    try:
        model = Wav2Vec2ForCTC.from_pretrained(str(local) if local.is_dir() else source)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DualTalkError(f"selftalk: cannot load the speech recognizer {source!r} ({first[:200]})") from None
    b = cfg.baseline
    got = (model.config.hidden_size, model.config.vocab_size)
    if got != (b.recognizer_dim, b.recognizer_vocab):
        raise DualTalkError(
            f"selftalk: the recognizer {source!r} has hidden size {got[0]} and {got[1]} tokens; the config says "
            f"baseline.recognizer_dim={b.recognizer_dim}, baseline.recognizer_vocab={b.recognizer_vocab}"
        )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class SelfTalk(BaselineModel):
    def __init__(self, cfg: DualTalkConfig):
        super().__init__()
        self.config = cfg.check()
        b, d = cfg.baseline, cfg.feature_dim
        self.audio_encoder = build_audio_encoder(cfg.audio_encoder, cfg.sample_rate)
        self.audio_feature_map = nn.Linear(cfg.audio_encoder.output_dim, d)
        layer = nn.TransformerDecoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, batch_first=True)
        self.transformer_decoder = nn.TransformerDecoder(layer, cfg.decoder_layers)
        self.motion_map_r = init_zero(nn.Linear(d, cfg.motion_dim))
        self.lips = lip_columns(cfg)
        r = b.recognizer_dim
        self.lip_map = nn.Linear(len(self.lips), r)
        heads = cfg.num_heads if r % cfg.num_heads == 0 else 1
        self.lip_reader = nn.Transformer(
            r, heads, cfg.encoder_layers, cfg.encoder_layers, cfg.ffn_dim, cfg.dropout, batch_first=True
        )
        self.lm_head = nn.Linear(r, b.recognizer_vocab)
        self.register_motion_buffers(cfg)
        self._recognizer: list[nn.Module] = []  # not a submodule: not trained, not saved

    def prepare_training(self) -> None:
        source = self.config.baseline.recognizer
        if source and not self._recognizer:
            self._recognizer.append(load_recognizer(source, self.config))

    def animate(self, self_audio: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, S) -> (B, T, D) model units"""
        x = self.audio_feature_map(self.audio_encoder(self_audio, frames))  # (B, T, d)
        return self.motion_map_r(self.transformer_decoder(x, x))

    def read_lips(self, motion: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) model units -> lip features (B, S', R), logits (B, S', V) at the recognizer's S' frames"""
        lips = interpolate_frames(self.lip_map(motion[..., self.lips]), frames)  # (B, S', R)
        feats = self.lip_reader(lips, lips)
        return feats, self.lm_head(feats)

    def consistency(self, self_audio: torch.Tensor, motion: torch.Tensor) -> torch.Tensor | None:
        """SelfTalk's text consistency loss of ``motion`` (B, T, D) against the recognizer on the audio."""
        b = self.config.baseline
        if not self._recognizer or not (b.lip_feature_weight or b.ctc_weight):
            return None
        recognizer = self._recognizer[0].to(self_audio.device)
        with torch.no_grad():
            heard = recognizer(normalize_waveform(self_audio.float()), output_hidden_states=True)
        hidden, text = heard.hidden_states[-1], heard.logits  # (B, S', R), (B, S', V)
        feats, logits = self.read_lips(motion, hidden.shape[1])
        loss = b.lip_feature_weight * F.mse_loss(feats, hidden)
        blank = int(getattr(recognizer.config, "pad_token_id", 0) or 0)
        targets, lengths = ctc_targets(text, blank)
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (S', B, V)
        frames = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
        ctc = F.ctc_loss(log_probs, targets, frames, lengths, blank=blank, reduction="mean", zero_infinity=True)
        return loss + b.ctc_weight * ctc

    def forward(
        self,
        self_audio: torch.Tensor | None,
        partner_audio: torch.Tensor | None,
        partner_motion: torch.Tensor | None,
        *,
        target: torch.Tensor | None = None,
        step: int | None = None,
        audio_features=None,
    ):
        """self_audio (B, S) -> (B, T, D); with ``target``: (prediction, consistency loss or None)."""
        self_audio, frames = self.speaker_frames(self_audio, partner_audio, partner_motion, audio_features)
        motion = self.animate(self_audio, frames)  # (B, T, D)
        if target is None:
            return self.output_motion(motion)
        return self.output_motion(motion), self.consistency(self_audio, motion)

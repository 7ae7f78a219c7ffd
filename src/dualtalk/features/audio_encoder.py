"""Audio encoders: waveform (B, S) at 16 kHz -> features (B, T, D) at the motion frame rate.

- :class:`Wav2Vec2Encoder`: Hugging Face ``Wav2Vec2Model`` built from a config, run the way the released
  DualTalk model runs it (after FaceFormer): per-clip waveform normalisation, the CNN feature extractor
  (~50 frames/s), linear interpolation (``align_corners=True``) of the CNN features to exactly T motion
  frames, then the feature projection and the transformer encoder at T frames.
- :class:`MelEncoder`: a light convolutional encoder on log-mel features; needs no pretrained weights,
  so training and the demo work offline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import AudioEncoderConfig
from ..errors import DualTalkError
from ..layout import SAMPLE_RATE


def normalize_waveform(wave: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Wav2Vec2FeatureExtractor(do_normalize=True): zero mean, unit variance per clip. (B, S) -> (B, S)."""
    mean = wave.mean(dim=-1, keepdim=True)
    var = wave.var(dim=-1, keepdim=True, unbiased=False)
    return (wave - mean) / torch.sqrt(var + eps)


def interpolate_frames(feats: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Linear interpolation along time with ``align_corners=True``. (B, S', C) -> (B, T, C)."""
    if feats.shape[1] == num_frames:
        return feats
    x = feats.transpose(1, 2)  # (B, C, S')
    x = F.interpolate(x, size=num_frames, mode="linear", align_corners=True)  # (B, C, T)
    return x.transpose(1, 2)  # (B, T, C)


def wav2vec2_config(fields: dict):
    """``transformers.Wav2Vec2Config`` of ``audio_encoder.wav2vec2`` (a released config's
    ``audio_encoder_config``): a field transformers refuses (a wrong type, an unknown value) is one
    :class:`DualTalkError` naming it, not transformers' traceback."""
    from transformers import Wav2Vec2Config

    try:
        return Wav2Vec2Config(**fields)
    except Exception as exc:  # noqa: BLE001 - transformers / huggingface_hub raise several kinds
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DualTalkError(
            f"audio_encoder.wav2vec2 (audio_encoder_config): {' '.join(lines)[:300] or exc!r}"
        ) from None


class Wav2Vec2Encoder(nn.Module):
    """``transformers.Wav2Vec2Model`` run at the motion frame rate (the released model's encoder)."""

    #: use :func:`conv_features_channels_last` for the CNN at inference (False: transformers' own path)
    time_major_cnn: bool = True

    def __init__(self, cfg: AudioEncoderConfig):
        super().__init__()
        from transformers import Wav2Vec2Model

        self.cfg = cfg
        if cfg.pretrained:
            self.model = load_pretrained_wav2vec2(cfg.pretrained, cfg.wav2vec2)
        else:
            self.model = Wav2Vec2Model(wav2vec2_config(cfg.wav2vec2))
        if cfg.freeze_feature_extractor or cfg.freeze:
            self.model.feature_extractor._freeze_parameters()
        if cfg.freeze:
            for p in self.model.parameters():
                p.requires_grad_(False)

    @property
    def output_dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def _channels_last_ok(self) -> bool:
        c = self.model.config
        return c.feat_extract_norm == "layer" and c.conv_bias

    def forward(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B, S) waveform -> (B, T, hidden_size)."""
        return self.transformer(self.cnn_features(wave, num_frames))

    def cnn_features(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The first half of :meth:`forward`: waveform normalisation, the CNN, interpolation to the motion frame
        rate. (B, S) -> (B, T, C)."""
        if self.cfg.normalize_waveform:
            wave = normalize_waveform(wave)
        if self.time_major_cnn and self._channels_last_ok and not torch.is_grad_enabled():
            extractor = self.model.feature_extractor
            # where the interpolation below picks every r-th CNN frame (r = 2 for whole motion frames), only
            # those are computed: same features, ~40 % less of the CNN's arithmetic
            every = interpolation_step(conv_output_frames(extractor, wave.shape[1]), num_frames)
            feats = conv_features_channels_last(extractor, wave, every=every)  # (B, S' or T, C)
        else:
            feats = self.model.feature_extractor(wave).transpose(1, 2)  # (B, S', C)
        return interpolate_frames(feats, num_frames)  # (B, T, C)

    def transformer(self, feats: torch.Tensor) -> torch.Tensor:
        """The second half of :meth:`forward`: feature projection and the transformer. (B, T, C) -> (B, T, H)."""
        hidden, _ = self.model.feature_projection(feats)  # (B, T, H)
        if self.training:
            hidden = self.model._mask_hidden_states(hidden)  # SpecAugment, as Wav2Vec2Model does in training
        return self.model.encoder(hidden).last_hidden_state  # (B, T, H)


class _ConvLayer(Protocol):
    """One layer of a wav2vec2 CNN feature extractor (transformers' ``Wav2Vec2*ConvLayer``)."""

    conv: nn.Conv1d
    layer_norm: Callable[[torch.Tensor], torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]


def _conv_layers(extractor: nn.Module) -> Sequence[_ConvLayer]:
    """The extractor's ``conv_layers`` (an ``nn.ModuleList``; nn.Module attributes are untyped)."""
    return cast("Sequence[_ConvLayer]", extractor.conv_layers)


def conv_receptive_field(extractor: nn.Module) -> tuple[int, int]:
    """(receptive field, total stride) in samples of a wav2vec2 CNN feature extractor (400, 320)."""
    field, stride = 1, 1
    conv_layers = _conv_layers(extractor)
    for layer in reversed(conv_layers):
        field = (field - 1) * layer.conv.stride[0] + layer.conv.kernel_size[0]
    for layer in conv_layers:
        stride *= layer.conv.stride[0]
    return field, stride


def conv_output_frames(extractor: nn.Module, samples: int) -> int:
    """S': frames of a wav2vec2 CNN over ``samples`` samples (a clip shorter than one frame is padded to one,
    as :func:`conv_features_channels_last` does)."""
    field, stride = conv_receptive_field(extractor)
    return (max(samples, field) - field) // stride + 1


def _conv_weights_time_major(extractor: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each conv layer's (weight (C_out, k*C_in) in tap-major order (j, c), bias (C_out,)), made once per call."""
    weights = []
    for layer in _conv_layers(extractor):
        conv = layer.conv
        assert conv.bias is not None  # conv_bias=True (checked by Wav2Vec2Encoder._channels_last_ok)
        w = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1)  # (C_out, k*C_in), order (j, c)
        weights.append((w.contiguous(), conv.bias))
    return weights


def _conv_stack_time_major(
    extractor: nn.Module,
    x: torch.Tensor,
    weights: list[tuple[torch.Tensor, torch.Tensor]],
    periods: int,
    rows: Sequence[int],
    in_period: int,
    layers: slice = slice(None),
) -> torch.Tensor:
    """Conv layers ``layers`` of the CNN over ``x`` (B, L, C_in) (the waveform: (B, S, 1)), each layer l computing
    ``rows[l]`` consecutive output frames at the start of each of ``periods`` periods, stored compactly:
    (B, periods * rows[l], C). ``in_period``: rows of ``x`` from one period to the next. One period covering
    everything is the plain CNN."""
    b = x.shape[0]
    for layer, (w, bias), n in list(zip(_conv_layers(extractor), weights, rows))[layers]:
        k, s = layer.conv.kernel_size[0], layer.conv.stride[0]
        c_in = x.shape[2]
        # output frame j of period p reads input rows p*in_period + s*j .. + k-1, in (B, L, C) layout one
        # contiguous run of k*C_in values: a strided view, copied row by row by the reshape (its rows overlap)
        x = x.contiguous()
        frames = x.as_strided((b, periods, n, k * c_in), (x.stride(0), in_period * c_in, s * c_in, 1))
        x = torch.addmm(bias, frames.reshape(b * periods * n, k * c_in), w.t())  # (B*P*n, C_out)
        x = x.view(b, periods * n, -1)  # (B, P*n, C_out)
        x = layer.layer_norm(x)  # over channels, contiguous
        x = layer.activation(x)
        in_period = n
    return x


def _sparse_rows(extractor: nn.Module, every: int) -> list[int] | None:
    """Frames each conv layer must compute per period of ``every`` output frames so that output frames
    0, every, 2 every, ... come out (from the top: 1, then ``stride * (rows - 1) + kernel`` below); None where
    the runs of two periods would overlap (``every`` 1, or too small for the kernels), which the plain CNN does
    better."""
    rows, period, out = 1, every, []
    for layer in reversed(_conv_layers(extractor)):
        if rows > period:
            return None
        out.append(rows)
        k, s = layer.conv.kernel_size[0], layer.conv.stride[0]
        rows, period = s * (rows - 1) + k, s * period
    return out[::-1] if rows <= period else None


def interpolation_step(frames: int, num_frames: int) -> int:
    """``r`` where linear interpolation with ``align_corners=True`` from ``frames`` to ``num_frames`` frames
    picks exactly frames 0, r, 2r, ... (the scale (frames - 1) / (num_frames - 1) an integer r >= 2: its
    positions r*i are whole, their weights 1 and 0); else 1. For wav2vec2 at 25 fps r is 2 whenever the
    clip's last motion frame has at least 400 samples (always for whole frames: 640 T samples give 2T - 1
    CNN frames)."""
    if num_frames < 2 or frames <= num_frames or (frames - 1) % (num_frames - 1):
        return 1
    return (frames - 1) // (num_frames - 1)


#: CNN output frames per chunk of the time-major CNN (2 s of audio): the first layers' outputs of a chunk stay
#: in cache between the matrix product, the LayerNorm and the GELU (the CNN's share of the forward:
#: ``benchmarks/generate.py --profile``)
CONV_CHUNK_FRAMES = 100
#: with ``every`` > 1, the conv layers from this one up (fewer frames each: narrow products) run over
#: CONV_OUTER_CHUNKS chunks at once, the layers below chunk by chunk
CONV_SPLIT_LAYER = 3
CONV_OUTER_CHUNKS = 16


def conv_features_channels_last(
    extractor: nn.Module, wave: torch.Tensor, chunk_frames: int = CONV_CHUNK_FRAMES, every: int = 1
) -> torch.Tensor:
    """The wav2vec2 CNN feature extractor (``feat_extract_norm="layer"``) computed time-major, in chunks.

    Same arithmetic as ``Wav2Vec2FeatureEncoder`` (conv -> LayerNorm over channels -> GELU, per layer),
    but each strided convolution is one matrix product over unfolded frames in (B, L, C) layout, so the
    LayerNorm needs no transposes; and the waveform is processed ``chunk_frames`` output frames (2 s) at
    a time, each chunk with its receptive field, so the intermediate tensors stay small (the first layer
    alone is 400 MB per minute of audio otherwise) and in cache. Output frames do not depend on the chunking;
    the result equals Wav2Vec2FeatureEncoder's up to float rounding. Inference only. (B, S) -> (B, L, C)

    ``every`` > 1: only output frames 0, every, 2 every, ... (B, ceil(L / every), C), each layer computing just
    the frames those read (for ``every`` 2 about 60 % of the CNN's arithmetic); the frames equal the full
    CNN's at those positions up to float rounding. Where the kernels leave nothing out, the full CNN, sliced.
    """
    field, stride = conv_receptive_field(extractor)
    if wave.shape[1] < field:  # shorter than one CNN frame: Wav2Vec2 would fail; pad to one frame
        wave = F.pad(wave, (0, field - wave.shape[1]))
    total = conv_output_frames(extractor, wave.shape[1])
    weights = _conv_weights_time_major(extractor)
    rows = _sparse_rows(extractor, every) if every > 1 else None
    chunks = []
    if rows is not None:  # periods of `every` output frames, the first of each computed
        period = stride * every  # samples
        needed = (total - 1) // every + 1
        step = max(1, chunk_frames // every)
        split = min(CONV_SPLIT_LAYER, len(rows))
        low, high = slice(0, split), slice(split, None)
        for k0 in range(0, needed, step * CONV_OUTER_CHUNKS):
            k1 = min(needed, k0 + step * CONV_OUTER_CHUNKS)
            parts = []
            for j0 in range(k0, k1, step):
                j1 = min(k1, j0 + step)
                piece = wave[:, j0 * period : (j1 - 1) * period + field, None]  # (B, S_j, 1)
                parts.append(_conv_stack_time_major(extractor, piece, weights, j1 - j0, rows, period, low))
            x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, periods * rows, C)
            chunks.append(_conv_stack_time_major(extractor, x, weights, k1 - k0, rows, rows[split - 1], high))
    else:
        for i0 in range(0, total, chunk_frames):
            i1 = min(total, i0 + chunk_frames)
            piece = wave[:, i0 * stride : (i1 - 1) * stride + field]
            dense, n = [], piece.shape[1]
            for layer in _conv_layers(extractor):
                n = (n - layer.conv.kernel_size[0]) // layer.conv.stride[0] + 1
                dense.append(n)
            chunks.append(_conv_stack_time_major(extractor, piece[:, :, None], weights, 1, dense, 0))
    out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)  # (B, L', C)
    return out if rows is not None or every == 1 else out[:, ::every]


def load_pretrained_wav2vec2(source: str, expected: dict):
    """Weights from a local directory or a hub id (``hf-hub:`` prefix optional), checked against the config."""
    from transformers import Wav2Vec2Model

    name = source[len("hf-hub:") :] if source.startswith("hf-hub:") else source
    try:
        model = Wav2Vec2Model.from_pretrained(name)
    except OSError as exc:
        raise DualTalkError(
            f"cannot load pretrained wav2vec2 weights from {source!r}: {str(exc).splitlines()[0]}"
        ) from None
    for key in ("hidden_size", "num_hidden_layers", "conv_dim"):
        got = getattr(model.config, key)
        if key in expected and list(np.atleast_1d(got)) != list(np.atleast_1d(expected[key])):
            raise DualTalkError(f"pretrained wav2vec2 {source!r} has {key}={got}, the config expects {expected[key]}")
    return model


# ----------------------------------------------------------------------------------------------------
# log-mel encoder


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), (n_mels, n_fft // 2 + 1)."""
    fmax = fmax or sample_rate / 2

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / np.maximum(centre - lower, 1e-9)
    down = (upper - freqs[None]) / np.maximum(upper - centre, 1e-9)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


class MelEncoder(nn.Module):
    """Log-mel spectrogram (50 frames/s) -> a stack of 1-D convolutions -> interpolated to T frames."""

    window: torch.Tensor  # buffers, registered in __init__
    mel: torch.Tensor

    def __init__(self, cfg: AudioEncoderConfig, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.register_buffer(
            "mel", torch.from_numpy(mel_filterbank(sample_rate, cfg.n_fft, cfg.n_mels)), persistent=False
        )
        layers: list[nn.Module] = []
        channels = cfg.n_mels
        for _ in range(cfg.mel_layers):
            layers += [nn.Conv1d(channels, cfg.mel_channels, kernel_size=5, padding=2), nn.GELU()]
            channels = cfg.mel_channels
        self.convs = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(cfg.mel_channels)

    @property
    def output_dim(self) -> int:
        return self.cfg.mel_channels

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, n_mels, S // hop + 1)."""
        spec = torch.stft(
            wave.float(),
            self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            window=self.window,
            center=True,
            # a clip shorter than half a window (32 ms) cannot be mirrored at its ends: padded with silence
            pad_mode="reflect" if wave.shape[-1] > self.cfg.n_fft // 2 else "constant",
            return_complex=True,
        )  # (B, F, N)
        power = spec.real.square() + spec.imag.square()  # (B, F, N)
        mel = torch.matmul(self.mel, power)  # (B, n_mels, N)
        return torch.log(mel + 1e-6)

    def forward(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B, S) waveform -> (B, T, mel_channels)."""
        if self.cfg.normalize_waveform:
            wave = normalize_waveform(wave)
        x = self.log_mel(wave).to(wave.dtype)  # (B, M, N), STFT in fp32 whatever the input dtype
        x = self.convs(x)  # (B, C, N)
        x = interpolate_frames(x.transpose(1, 2), num_frames)  # (B, T, C)
        return self.norm(x)


def build_audio_encoder(cfg: AudioEncoderConfig, sample_rate: int = SAMPLE_RATE) -> nn.Module:
    if cfg.type == "wav2vec2":
        return Wav2Vec2Encoder(cfg)
    if cfg.type == "mel":
        return MelEncoder(cfg, sample_rate)
    raise DualTalkError(f"unknown audio encoder type {cfg.type!r} (wav2vec2 or mel)")

"""Every configuration of the project: typed dataclasses, YAML files as overrides, dotted overrides.

A config is plain data: it is saved as ``config.json`` next to ``model.safetensors`` (see
``dualtalk.model.checkpoint``) and rebuilt with :func:`from_dict`, which refuses unknown keys so that a
typo in a YAML file is an error, not a silently ignored setting.

    cfg = DualTalkConfig()                                   # the released architecture
    cfg = apply_overrides(cfg, ["feature_dim=64", "audio_encoder.type=mel"])
    cfg = load_yaml_overrides(cfg, "configs/my.yaml")
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import DualTalkError, InputError

#: Version of the on-disk model format (config.json + model.safetensors). Bumped on incompatible change.
FORMAT_VERSION = 1

#: Wav2Vec2Config fields of facebook/wav2vec2-large-960h-lv60-self, the audio encoder of the released
#: checkpoint. Built in so the full-size model can be constructed offline (weights come from the checkpoint).
WAV2VEC2_LARGE_LV60: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_extract_norm": "layer",
    "feat_extract_activation": "gelu",
    "conv_dim": [512, 512, 512, 512, 512, 512, 512],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": True,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": True,
}

#: Hub id of the released model's audio encoders (used only when the user asks for pretrained weights).
WAV2VEC2_LARGE_LV60_HUB_ID = "facebook/wav2vec2-large-960h-lv60-self"


@dataclass
class AudioEncoderConfig:
    """One audio encoder (the model has two with this config, one per person)."""

    #: ``wav2vec2`` (transformers' Wav2Vec2Model, as in the released model) or ``mel`` (a light
    #: convolutional encoder on log-mel features that needs no pretrained weights).
    type: str = "wav2vec2"
    #: Wav2Vec2Config fields; the default is wav2vec2-large-lv60.
    wav2vec2: dict = field(default_factory=lambda: dict(WAV2VEC2_LARGE_LV60))
    #: Where to take pretrained wav2vec2 weights from when the model is built for training: a local
    #: directory or a hub id. ``None`` = random init (weights then come from a checkpoint).
    pretrained: str | None = None
    #: Waveform normalisation of Wav2Vec2FeatureExtractor(do_normalize=True): (x - mean) / sqrt(var + 1e-7).
    normalize_waveform: bool = True
    #: Freeze the CNN feature extractor (the released training does) / the whole encoder.
    freeze_feature_extractor: bool = True
    freeze: bool = False
    # --- mel encoder ---
    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 320  # 50 frames per second at 16 kHz, like wav2vec2's CNN
    mel_channels: int = 256
    mel_layers: int = 3

    @property
    def output_dim(self) -> int:
        return int(self.wav2vec2["hidden_size"]) if self.type == "wav2vec2" else self.mel_channels


@dataclass
class DualTalkConfig:
    """The DualTalk model. Defaults are the released checkpoint's architecture (647 M parameters)."""

    #: ``released``: exactly the computation of the released checkpoint. ``paper``: adds what the paper
    #: describes beyond it (alignment-biased attention, sigmoid-gated modulation, positional information).
    variant: str = "released"
    audio_encoder: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    feature_dim: int = 256
    motion_dim: int = 56
    fps: int = 25
    sample_rate: int = 16000
    num_heads: int = 4
    ffn_dim: int = 2048
    encoder_layers: int = 3
    decoder_layers: int = 1
    lstm_layers: int = 2
    #: dropout inside the transformer layers (PyTorch's default 0.1 in the released model)
    dropout: float = 0.1
    #: dropout after the interaction module's self-attention (0.5 in the released model)
    interaction_dropout: float = 0.5
    #: alpha of the expression modulation: released ``d + alpha * Linear(d)``,
    #: paper ``D + alpha * sigmoid(D W + b)``
    modulation_alpha: float = 0.1
    #: paper variant: period (frames) of the FaceFormer-style temporal bias and of the positional encoding
    bias_period: int = 25
    #: paper variant: half-width (frames) of the modal-alignment band in the decoder's cross-attention
    alignment_window: int = 0
    # --- paper variant: information paths (README "Listening that generalizes"). Off by default so that
    # --- configs written before they existed load unchanged; on in the paper presets and the recipes.
    #: the partner's audio features are added to the enhancer's cross-attention output (a residual, as in
    #: every transformer block): without it, an attention with one admissible key (alignment_window 0)
    #: returns the partner's motion whatever the audio, and the partner's voice reaches the model nowhere
    enhancer_residual: bool = False
    #: a linear map of the partner's (normalised) motion added to the motion encoder's MLP, whose
    #: 56 -> d/2 ReLU bottleneck otherwise loses single coefficients (e.g. one mirrored expression)
    motion_skip: bool = False
    #: kernel (frames, odd; 0 = none) of a depthwise temporal convolution (+ pointwise) in the enhancer,
    #: added residually before the BiLSTM: responses that follow the partner by a fixed delay in one step
    temporal_kernel: int = 0
    #: future frames the temporal convolution sees (-1 = half the kernel: symmetric); the rest is the past,
    #: where a listener's responses find their causes
    temporal_lookahead: int = -1
    #: the BiLSTM's input is added to its output (the convolution's features reach the interaction module)
    lstm_residual: bool = False
    #: the interaction module's last self-attention gets a residual: without it its output is an attention
    #: average over the window (at initialisation nearly uniform), which blurs every frame's timing
    interaction_residual: bool = False
    #: which inputs the model sees (baselines switch some off; a switched-off input is not encoded)
    use_self_audio: bool = True
    use_partner_audio: bool = True
    use_partner_motion: bool = True
    #: normalise partner motion in / de-normalise output with statistics stored in the checkpoint
    normalize_motion: bool = False
    #: a per-coefficient output gain in [0, 1] (buffer ``output_gain``, needs normalize_motion): the output is
    #: mean + gain x (prediction - mean). Training fits it on the validation split at the step it keeps
    #: (least squares, clipped): a coefficient the model cannot predict beyond the mean falls back to the mean
    output_gain: bool = False

    def validate(self) -> "DualTalkConfig":
        if self.variant not in ("released", "paper"):
            raise DualTalkError(f"model variant must be 'released' or 'paper', not {self.variant!r}")
        if self.audio_encoder.type not in ("wav2vec2", "mel"):
            raise DualTalkError(f"audio_encoder.type must be 'wav2vec2' or 'mel', not {self.audio_encoder.type!r}")
        if self.feature_dim % 2 or self.feature_dim <= 0:
            raise DualTalkError(f"feature_dim must be a positive even number, not {self.feature_dim}")
        for name, dim in (("feature_dim", self.feature_dim), ("2*feature_dim", 2 * self.feature_dim)):
            if dim % self.num_heads:
                raise DualTalkError(f"{name}={dim} is not divisible by num_heads={self.num_heads}")
        if self.sample_rate % self.fps:
            raise DualTalkError(f"sample_rate {self.sample_rate} is not a multiple of fps {self.fps}")
        if self.temporal_kernel < 0 or (self.temporal_kernel and self.temporal_kernel % 2 == 0):
            raise DualTalkError(f"temporal_kernel must be 0 or an odd number of frames, not {self.temporal_kernel}")
        if not -1 <= self.temporal_lookahead < max(self.temporal_kernel, 1):
            raise DualTalkError(f"temporal_lookahead must be -1 (symmetric) or in [0, temporal_kernel), "
                                f"not {self.temporal_lookahead}")
        if self.output_gain and not self.normalize_motion:
            raise DualTalkError("output_gain needs normalize_motion (the gain shrinks toward the stored mean)")
        if not (self.use_self_audio or self.use_partner_audio or self.use_partner_motion):
            raise DualTalkError("the model must use at least one input")
        return self

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps


# ----------------------------------------------------------------------------------------------------
# dict <-> dataclass, overrides


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass ``cls`` from ``data``; nested dataclasses recursively; unknown keys are errors."""
    if not isinstance(data, dict):
        raise DualTalkError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise DualTalkError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, f"{where}.{key}")
        else:
            kwargs[key] = copy.deepcopy(value)
    return cls(**kwargs)


def merge_dict(cfg, data: dict, where: str = "config"):
    """Return a copy of ``cfg`` with the (possibly partial, nested) mapping ``data`` applied."""
    base = to_dict(cfg)

    def merge(dst: dict, src: dict, path: str, cls):
        hints = typing.get_type_hints(cls)
        for key, value in src.items():
            if key not in dst:
                raise DualTalkError(f"{where}: unknown key {path}{key}")
            tp = hints[key]
            if dataclasses.is_dataclass(tp) and isinstance(value, dict):
                merge(dst[key], value, f"{path}{key}.", tp)
            elif isinstance(dst[key], dict) and isinstance(value, dict):
                dst[key].update(value)
            else:
                dst[key] = value

    merge(base, data, "", type(cfg))
    return from_dict(type(cfg), base, where)


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise DualTalkError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; a number is meant
        try:
            value = float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "+inf") else value
        except ValueError:
            pass
    return key.strip().split("."), value


def apply_overrides(cfg, items: list[str] | tuple[str, ...]):
    """Apply dotted ``key=value`` overrides (values parsed as YAML scalars/lists)."""
    for item in items:
        path, value = parse_override(item)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        cfg = merge_dict(cfg, nested, where=f"override {item!r}")
    return cfg


def load_yaml(path: str | os.PathLike) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"not a readable YAML file ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "expected a YAML mapping at the top level")
    return data


def load_yaml_overrides(cfg, path: str | os.PathLike):
    path = find_config_file(path)
    return merge_dict(cfg, load_yaml(path), where=os.fspath(path))


#: configuration files shipped inside the package, usable by name (``--config recipe-cpu``)
PACKAGED_CONFIGS = Path(__file__).resolve().parent / "assets" / "configs"


def packaged_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))


def find_config_file(name: str | os.PathLike) -> Path:
    """A YAML file's path, or the name of a packaged config (``recipe-cpu``) -> its path."""
    path = Path(name)
    if path.exists() or path.suffix or os.sep in str(name):
        return path
    packaged = PACKAGED_CONFIGS / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    raise InputError(path, f"no such file, and not a packaged config (packaged: {', '.join(packaged_configs())})")


# ----------------------------------------------------------------------------------------------------
# training (``dualtalk train``; defaults = the released training recipe where it has one)


@dataclass
class DataConfig:
    """Where the examples come from and how they are cut."""

    #: split directories under DATA_DIR (any names); validation must not be the test split
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    #: window length in frames at 25 fps (the released training cut 200-frame chunks)
    window_frames: int = 200
    #: validation window (frames); 0 = same as ``window_frames``
    val_window_frames: int = 0
    #: examples per batch per process (the released training used 32)
    batch_size: int = 32
    num_workers: int = 4
    #: at most this many validation batches per evaluation (0 = the whole split)
    max_val_batches: int = 0
    #: cache the outputs of frozen audio encoders on disk (needs model.audio_encoder.freeze=true)
    feature_cache: bool = False
    #: cache location; default RUN_DIR/feature_cache (share one between runs to reuse it)
    cache_dir: str | None = None
    #: the cached encoders run over chunks of this many seconds of each file
    cache_chunk_seconds: float = 20.0


@dataclass
class OptimConfig:
    """Adam + a step schedule (released: lr 1e-4, x0.8 every 50 epochs)."""

    #: ``adam`` (as released; weight_decay is an L2 term in the gradient) or ``adamw`` (decoupled weight decay)
    optimizer: str = "adam"
    lr: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    #: ``step`` (multiply by ``gamma`` every ``step_size`` units) or ``constant``
    scheduler: str = "step"
    step_size: int = 50
    gamma: float = 0.8
    #: unit of ``step_size``: ``epoch`` (as released) or ``step`` (optimizer steps)
    step_unit: str = "epoch"
    #: linear warm-up over this many optimizer steps (0 = none, as released)
    warmup_steps: int = 0
    #: micro-batches per optimizer step
    grad_accum_steps: int = 1
    #: clip the global gradient norm to this value (0 = off, as released)
    grad_clip: float = 0.0


@dataclass
class LossConfig:
    """Released objective: MSE(exp) + MSE(jaw) + MSE(global pose) + MSE(velocity), weight 1 each."""

    exp: float = 1.0
    jaw: float = 1.0
    pose: float = 1.0
    velocity: float = 1.0
    #: measure errors in units of the training-set std when the model normalises motion
    normalized: bool = True


@dataclass
class TrainConfig:
    """One training run. ``model`` is a partial model config (nested mapping) applied to ``preset``."""

    preset: str = "small"
    model: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    max_steps: int = 100_000
    seed: int = 6666
    #: ``auto`` (cuda:LOCAL_RANK when available, else cpu), ``cpu``, ``cuda``, ``cuda:1`` ...
    device: str = "auto"
    #: ``auto`` (bf16 autocast on a GPU that supports it, else fp32), ``fp32`` or ``bf16``
    precision: str = "auto"
    #: exponential moving average of the weights (0 = off); validation and best/ then use the EMA
    ema_decay: float = 0.0
    log_every: int = 10
    val_every: int = 500
    val_at_start: bool = True
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    tensorboard: bool = True
    #: write RUN_DIR/debug/rank{R}.json: the examples each process saw and its final weights' hash
    debug_record: bool = False

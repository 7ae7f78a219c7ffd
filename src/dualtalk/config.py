"""Every configuration of the project: checked models, YAML/JSON files and ``key=value`` items as overrides.

A config is plain data checked by pydantic: every value read from a YAML or JSON file, a ``config.json``
or a ``key=value`` item is type- and range-checked, and a bad one is one error line naming the source and
the key (``override 'feature_dim=1.28e2': feature_dim must be an integer, got 1.28e2``). Unknown keys are
errors too, so a typo is not a silently ignored setting. Cross-field rules (``DualTalkConfig.check``) run
once every source is applied, because one source may need the next (``output_gain`` + ``normalize_motion``).

    cfg = DualTalkConfig()                                   # the released architecture
    cfg = apply_overrides(cfg, ["feature_dim=64", "audio_encoder.type=mel"])
    cfg = load_overrides(cfg, "configs/my.yaml")             # YAML or JSON, partial mappings
    data = to_dict(cfg); same = from_dict(DualTalkConfig, data, where="config.json")

Why pydantic (and not OmegaConf structured configs): we need range checks and choices (``Field(ge=1)``,
``Literal``) as well as types, checked on assignment too, with errors we can phrase per key; pydantic
gives all of them, OmegaConf only types. Numbers as YAML 1.1 reads them (``1e-3`` without a dot is a
string there) are parsed by pydantic's number fields, so no hand-written coercion is needed.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .errors import DualTalkError, InputError
from .layout import FPS, LAYOUTS, MOTION_DIM, SAMPLE_RATE

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


class Config(BaseModel):
    """Base of every configuration: unknown keys are errors; values are checked on creation and assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``true`` / ``false`` where a number belongs (``data.batch_size=true``) is a mistake, not 1 or 0."""
        if isinstance(value, bool) and info.field_name is not None:
            kinds = _kinds(cls.model_fields[info.field_name].annotation)
            if bool not in kinds and kinds & {int, float}:
                raise PydanticCustomError("int_type" if int in kinds else "float_type", "not a boolean")
        return value


def _kinds(annotation: Any) -> set:
    """The plain types an annotation admits (``int | None`` -> {int, NoneType})."""
    args = get_args(annotation)
    if get_origin(annotation) in (Annotated,) and args:
        return _kinds(args[0])
    if get_origin(annotation) in (Union, UnionType) or type(annotation) is UnionType:
        return set().union(*(_kinds(a) for a in args))
    return {annotation}


class AudioEncoderConfig(Config):
    """One audio encoder (the model has two with this config, one per person)."""

    #: ``wav2vec2`` (transformers' Wav2Vec2Model, as in the released model) or ``mel`` (a light
    #: convolutional encoder on log-mel features that needs no pretrained weights).
    type: Literal["wav2vec2", "mel"] = "wav2vec2"
    #: Wav2Vec2Config fields; the default is wav2vec2-large-lv60.
    wav2vec2: dict[str, Any] = Field(default_factory=lambda: dict(WAV2VEC2_LARGE_LV60))
    #: Where to take pretrained wav2vec2 weights from when the model is built for training: a local
    #: directory or a hub id. ``None`` = random init (weights then come from a checkpoint).
    pretrained: str | None = None
    #: Waveform normalisation of Wav2Vec2FeatureExtractor(do_normalize=True): (x - mean) / sqrt(var + 1e-7).
    normalize_waveform: bool = True
    #: Freeze the CNN feature extractor (the released training does) / the whole encoder.
    freeze_feature_extractor: bool = True
    freeze: bool = False
    # --- mel encoder ---
    n_mels: int = Field(80, ge=1)
    n_fft: int = Field(1024, ge=2)
    hop_length: int = Field(320, ge=1)  # 50 frames per second at 16 kHz, like wav2vec2's CNN
    mel_channels: int = Field(256, ge=1)
    mel_layers: int = Field(3, ge=1)

    @property
    def output_dim(self) -> int:
        return int(self.wav2vec2["hidden_size"]) if self.type == "wav2vec2" else self.mel_channels


#: the comparison baselines (``dualtalk.model.baselines``): a ``variant`` each
BASELINE_VARIANTS = ("faceformer", "codetalker", "selftalk", "learning2listen")


class BaselineConfig(Config):
    """Settings of the comparison baselines (``variant`` faceformer, codetalker, selftalk, learning2listen;
    ignored by DualTalk). Their transformer sizes are the model's ``feature_dim``, ``num_heads``, ``ffn_dim``,
    ``decoder_layers`` (predictor) and ``encoder_layers`` (VQ-VAE, SelfTalk's lip reader)."""

    #: codebook stage (codetalker, learning2listen): the first this many optimizer steps of a run train the
    #: VQ-VAE, the rest the predictor (with the VQ-VAE frozen)
    stage1_steps: int = Field(0, ge=0)
    #: a model directory of the same method whose trained codebook stage is loaded (stage 1 is skipped)
    stage1_from: str | None = None
    #: codes in the codebook (CodeTalker 256, Learning2Listen 200) and their width (CodeTalker 64/128, L2L 256)
    codebook_size: int = Field(256, ge=1)
    code_dim: int = Field(64, ge=1)
    #: codes per (downsampled) frame: CodeTalker's ``face_quan_num``
    codes_per_frame: int = Field(1, ge=1)
    #: each halves the VQ-VAE's frame rate: 2^quant_factor frames per code (Learning2Listen: 3, 8 frames)
    quant_factor: int = Field(0, ge=0, le=5)
    #: frames the VQ-VAE codes at once (Learning2Listen: 32); 0 = the whole sequence (CodeTalker)
    vq_window: int = Field(0, ge=0)
    #: FaceFormer's training: ``true`` teacher-forced (the ground truth's previous frame as each input, one
    #: parallel pass); ``false`` autoregressive, as FaceFormer's public training loop (``teacher_forcing=False``):
    #: each frame's own output is fed back and the loss's gradient flows through the loop (CodeTalker and
    #: Learning2Listen train teacher-forced, as their public code)
    teacher_forcing: bool = True
    #: weight of CodeTalker's feature regularisation (predicted features vs the ground truth's codes)
    reg_weight: float = Field(1.0, ge=0)
    #: Learning2Listen: listener codes of the past the predictor sees (4 codes = 32 frames)
    past_codes: int = Field(4, ge=1)
    #: SelfTalk's speech recognizer (a ``Wav2Vec2ForCTC``): a hub id or a local directory, loaded when training
    #: starts and never stored with the model; ``None``: no lip-reading consistency loss
    recognizer: str | None = None
    #: the recognizer's hidden size and vocabulary (the lip reader is built to match; checked when it loads)
    recognizer_dim: int = Field(1024, ge=1)
    recognizer_vocab: int = Field(33, ge=2)
    #: SelfTalk's loss weights relative to the motion loss: lip features vs the recognizer's hidden states
    #: (MSE), lip-read text vs the recognizer's transcript (CTC)
    lip_feature_weight: float = Field(0.1, ge=0)
    ctc_weight: float = Field(0.01, ge=0)


class DualTalkConfig(Config):
    """The DualTalk model. Defaults are the released checkpoint's architecture (647 M parameters)."""

    #: ``released``: exactly the computation of the released checkpoint. ``paper``: adds what the paper
    #: describes beyond it (alignment-biased attention, sigmoid-gated modulation, positional information).
    #: ``causal``: every layer sees the past plus ``lookahead_frames`` of audio; streamable
    #: (``dualtalk.model.causal``, ``dualtalk stream``).
    #: ``faceformer``, ``codetalker``, ``selftalk``, ``learning2listen``: the comparison baselines
    #: (``dualtalk.model.baselines``, settings in ``baseline``).
    variant: Literal["released", "paper", "causal", "faceformer", "codetalker", "selftalk", "learning2listen"] = (
        "released"
    )
    audio_encoder: AudioEncoderConfig = Field(default_factory=AudioEncoderConfig)
    #: the comparison baselines' settings (ignored by DualTalk)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    feature_dim: int = Field(256, ge=2)
    #: what a motion frame is (``dualtalk.layout``): ``flame`` (56-d: FLAME expression, jaw, head rotation;
    #: the released model's) or ``arkit`` (55-d: the 52 ARKit blendshape weights in [0, 1], clipped at the
    #: output, and the head rotation). The training data, the partner's motion and the output are in it.
    motion_layout: Literal["flame", "arkit"] = "flame"
    #: width of a motion frame: follows ``motion_layout`` (56 or 55; set from it when absent or when it is
    #: the other layout's width, so ``motion_layout=arkit`` alone is enough)
    motion_dim: int = Field(MOTION_DIM, ge=1)
    fps: int = Field(FPS, ge=1)
    sample_rate: int = Field(SAMPLE_RATE, ge=1)
    num_heads: int = Field(4, ge=1)
    ffn_dim: int = Field(2048, ge=1)
    encoder_layers: int = Field(3, ge=1)
    decoder_layers: int = Field(1, ge=1)
    lstm_layers: int = Field(2, ge=1)
    #: dropout inside the transformer layers (PyTorch's default 0.1 in the released model)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    #: dropout after the interaction module's self-attention (0.5 in the released model)
    interaction_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    #: alpha of the expression modulation: released ``d + alpha * Linear(d)``,
    #: paper ``D + alpha * sigmoid(D W + b)``
    modulation_alpha: float = 0.1
    #: paper variant: period (frames) of the FaceFormer-style temporal bias and of the positional encoding
    bias_period: int = Field(25, ge=1)
    #: paper variant: half-width (frames) of the modal-alignment band in the decoder's cross-attention
    alignment_window: int = Field(0, ge=0)
    # --- paper variant: information paths (docs: research notes, "Listening that generalizes"). Off by
    # --- default so that configs written before they existed load unchanged; on in the paper presets.
    #: the partner's audio features are added to the enhancer's cross-attention output (a residual, as in
    #: every transformer block): without it, an attention with one admissible key (alignment_window 0)
    #: returns the partner's motion whatever the audio, and the partner's voice reaches the model nowhere
    enhancer_residual: bool = False
    #: a linear map of the partner's (normalised) motion added to the motion encoder's MLP, whose
    #: 56 -> d/2 ReLU bottleneck otherwise loses single coefficients (e.g. one mirrored expression)
    motion_skip: bool = False
    #: kernel (frames, odd; 0 = none) of a depthwise temporal convolution (+ pointwise) in the enhancer,
    #: added residually before the BiLSTM: responses that follow the partner by a fixed delay in one step
    temporal_kernel: int = Field(0, ge=0)
    #: future frames the temporal convolution sees (-1 = half the kernel: symmetric); the rest is the past,
    #: where a listener's responses find their causes
    temporal_lookahead: int = Field(-1, ge=-1)
    #: kernel (frames; 0 = none) of the mimicry path: each coefficient of the partner's (normalised) motion,
    #: filtered over its past ``mirror_kernel`` frames (itself included; one filter per coefficient), scaled
    #: by a per-coefficient gate in (0, 1) computed from the interaction features (e.g. "listening"), is added
    #: to the same coefficient of the output. A listener repeating the partner's expression a moment later is
    #: then one linear filter away, not a path through every layer. Zero at first (the path-free model)
    mirror_kernel: int = Field(0, ge=0)
    #: the mimicry gate's bias at initialisation: the gate starts at sigmoid(bias) everywhere (0: half open;
    #: 2: 0.88, open until training closes it where the path does not apply)
    mirror_gate_bias: float = 0.0
    #: kernel (frames; 0 = none) of the audio response path: ``audio_response_channels`` learned projections of
    #: the partner's audio features, filtered over their past ``audio_response_kernel`` frames into every output
    #: coefficient, gated per coefficient by the interaction features as the mimicry path is. A response that
    #: follows a sound of the partner's (a phrase ending, a laugh) by a fixed delay is then one linear filter
    #: away; zero at first (the path-free model)
    audio_response_kernel: int = Field(0, ge=0)
    audio_response_channels: int = Field(8, ge=1)
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
    # --- causal variant (live use) ---
    #: frames of audio after frame t that frame t may read (its algorithmic latency is lookahead + 1 frames)
    lookahead_frames: int = Field(2, ge=0, le=25)
    #: frame t reads the partner's motion of frame t - delay (a live face tracker lags)
    partner_motion_delay: int = Field(1, ge=0, le=250)
    #: attention reaches this many frames into the past (itself included): constant memory per stream
    attention_window: int = Field(100, ge=1)
    #: during training, the probability that an example's partner motion is hidden (the "absent" vector),
    #: so that the model also runs without the partner's face
    partner_motion_dropout: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _motion_dim_follows_layout(cls, data: Any) -> Any:
        """``motion_dim`` follows ``motion_layout``: set from it when absent or a layout's own width (a merged
        config carries the previous layout's); any other value stays, and :meth:`check` refuses it."""
        if isinstance(data, dict) and data.get("motion_layout") in LAYOUTS:
            dim = LAYOUTS[data["motion_layout"]].dim
            given = data.get("motion_dim")
            if given is None or given in {lay.dim for lay in LAYOUTS.values()}:
                data = {**data, "motion_dim": dim}
        return data

    def inert_fields(self) -> tuple[str, ...]:
        """Fields this model does not read (its weights and outputs are the same whatever their value): a
        finished run differing from a config only in these is the same run (``dualtalk benchmark --reuse``)."""
        inert: tuple[str, ...] = ()
        if self.variant != "paper" or not self.use_partner_motion:
            inert += ("mirror_kernel", "mirror_gate_bias")
        elif not self.mirror_kernel:
            inert += ("mirror_gate_bias",)
        if self.variant != "paper" or not self.use_partner_audio:
            inert += ("audio_response_kernel", "audio_response_channels")
        elif not self.audio_response_kernel:
            inert += ("audio_response_channels",)
        return inert

    def check(self) -> DualTalkConfig:
        """The rules between fields (each field is checked on its own already); -> self."""
        layout_dim = LAYOUTS[self.motion_layout].dim
        if self.motion_dim != layout_dim:
            raise DualTalkError(
                f"motion_dim {self.motion_dim} does not match motion_layout {self.motion_layout!r} "
                f"({layout_dim} numbers per frame)"
            )
        if self.feature_dim % 2:
            raise DualTalkError(f"feature_dim must be a positive even number, not {self.feature_dim}")
        for name, dim in (("feature_dim", self.feature_dim), ("2*feature_dim", 2 * self.feature_dim)):
            if dim % self.num_heads:
                raise DualTalkError(f"{name}={dim} is not divisible by num_heads={self.num_heads}")
        if self.sample_rate % self.fps:
            raise DualTalkError(f"sample_rate {self.sample_rate} is not a multiple of fps {self.fps}")
        if self.temporal_kernel and self.temporal_kernel % 2 == 0:
            raise DualTalkError(f"temporal_kernel must be 0 or an odd number of frames, not {self.temporal_kernel}")
        if not self.temporal_lookahead < max(self.temporal_kernel, 1):
            raise DualTalkError(
                f"temporal_lookahead must be -1 (symmetric) or in [0, temporal_kernel), not {self.temporal_lookahead}"
            )
        if self.mirror_kernel and not self.normalize_motion:
            raise DualTalkError("mirror_kernel needs normalize_motion (the filter maps normalised motion)")
        if self.output_gain and not self.normalize_motion:
            raise DualTalkError("output_gain needs normalize_motion (the gain shrinks toward the stored mean)")
        if not (self.use_self_audio or self.use_partner_audio or self.use_partner_motion):
            raise DualTalkError("the model must use at least one input")
        if self.variant == "causal" and self.audio_encoder.type != "mel":
            raise DualTalkError(
                f"the causal variant needs audio_encoder.type 'mel' (a {self.audio_encoder.type} "
                "encoder sees the whole clip and cannot stream)"
            )
        if self.variant in ("codetalker", "learning2listen"):
            b = self.baseline
            if b.vq_window and b.vq_window % (2**b.quant_factor):
                raise DualTalkError(
                    f"baseline.vq_window {b.vq_window} is not a multiple of the frames per code ({2**b.quant_factor})"
                )
            if not (b.stage1_steps or b.stage1_from):
                raise DualTalkError(
                    f"{self.variant} trains its codebook first: set baseline.stage1_steps (steps of the VQ-VAE "
                    "stage) or baseline.stage1_from (a model directory with a trained one)"
                )
        if self.baseline.teacher_forcing is False and self.variant in ("codetalker", "learning2listen"):
            raise DualTalkError(
                f"baseline.teacher_forcing=false is FaceFormer's autoregressive training; {self.variant} trains "
                "teacher-forced (as its public code)"
            )
        if self.variant == "causal" and not (self.use_self_audio or self.use_partner_audio):
            raise DualTalkError("the causal variant needs at least one audio input")
        return self

    @property
    def needs_partner_motion(self) -> bool:
        """A model of this config cannot run without the partner's motion (only causal models trained with
        ``partner_motion_dropout`` can)."""
        return self.use_partner_motion and not (self.variant == "causal" and self.partner_motion_dropout > 0)

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps


# ----------------------------------------------------------------------------------------------------
# building, merging and overriding, with one error line per bad value

C = TypeVar("C", bound=Config)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value if value and value.strip() == value and "\n" not in value else repr(value)
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value)


def _field_class(cls: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The config class that holds the last key of ``loc`` (for the list of known keys)."""
    for part in loc[:-1]:
        field = cls.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return cls


def describe_error(err: Any, cls: type[BaseModel], prefix: str = "") -> str:
    """One pydantic error -> ``key must be ..., got ...``."""
    loc = tuple(err["loc"])
    key = prefix + ".".join(str(p) for p in loc)
    kind, ctx, got = err["type"], err.get("ctx") or {}, _shown(err.get("input"))
    if kind == "extra_forbidden":
        holder = _field_class(cls, loc)
        known = sorted(holder.model_fields) if holder is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = (
            f" (did you mean {prefix}{'.'.join(map(str, loc[:-1] + (close[0],)))}?)"
            if close
            else (f" (known: {', '.join(known)})" if known else "")
        )
        return f"unknown key {key}{hint}"
    messages = {
        "int_parsing": "must be an integer",
        "int_type": "must be an integer",
        "int_from_float": "must be an integer",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "finite_number": "must be finite",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "list_type": "must be a list",
    }
    if kind in messages:
        what = messages[kind]
    elif kind == "literal_error":
        what = f"must be {ctx.get('expected')}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        what = f"must be {op} {bound}"
    elif kind == "too_short":
        what = f"must have at least {ctx.get('min_length')} items"
    elif kind == "too_long":
        what = f"must have at most {ctx.get('max_length')} items"
    else:
        what = err["msg"][:1].lower() + err["msg"][1:]
    return f"{key} {what}, got {got}"


def config_error(exc: ValidationError, cls: type[BaseModel], where: str, prefix: str = "") -> DualTalkError:
    """A pydantic ValidationError -> one DualTalkError line naming the source and every bad key."""
    return DualTalkError(f"{where}: " + "; ".join(describe_error(e, cls, prefix) for e in exc.errors()))


def from_dict(cls: type[C], data: Any, where: str = "config", prefix: str = "") -> C:
    """Build config class ``cls`` from a mapping; any unknown key or bad value is one error naming ``where``."""
    if not isinstance(data, dict):
        raise DualTalkError(f"{where}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {_shown(data)}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, cls, where, prefix) from None


def to_dict(cfg: BaseModel) -> dict:
    """Plain nested data (lists, dicts, numbers, strings): what ``config.json`` / ``config.yaml`` hold."""
    return cfg.model_dump(mode="json")


def deep_merge(base: dict, data: dict) -> dict:
    """``base`` with the (nested, partial) mapping ``data`` applied; nested mappings merge key by key."""
    out = dict(base)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merge_dict(cfg: C, data: dict, where: str = "config") -> C:
    """A copy of ``cfg`` with the partial mapping ``data`` applied, checked (errors name ``where``)."""
    if not isinstance(data, dict):
        raise DualTalkError(f"{where}: expected a mapping, got {_shown(data)}")
    return from_dict(type(cfg), deep_merge(to_dict(cfg), data), where)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value parsed as a YAML scalar or list; the config checks its type)."""
    if "=" not in item:
        raise DualTalkError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise DualTalkError(f"override {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def override_mapping(item: str) -> dict:
    """``a.b=value`` -> ``{"a": {"b": value}}``."""
    path, value = parse_override(item)
    nested: Any = value
    for part in reversed(path):
        nested = {part: nested}
    return nested


def apply_overrides(cfg: C, items: list[str] | tuple[str, ...]) -> C:
    """Apply dotted ``key=value`` overrides one by one (each one checked; an error names the item); a single
    string is one override."""
    for item in [items] if isinstance(items, str) else items:
        cfg = merge_dict(cfg, override_mapping(item), where=f"override {item!r}")
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _no_repeated_keys(path, pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    repeated = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if repeated is not None:  # json keeps the last silently
        raise InputError(path, f"not a usable JSON file ({repeated!r} is given twice in one object)")
    return dict(pairs)


def load_mapping(path: str | os.PathLike) -> dict:
    """A YAML or JSON file's top-level mapping (an empty file is ``{}``; a key given twice is an error)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if Path(path).suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=lambda pairs: _no_repeated_keys(path, pairs))
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, expected a YAML or JSON file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        kind = "JSON" if Path(path).suffix.lower() == ".json" else "YAML"
        raise InputError(path, f"not a readable {kind} file ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping at the top level")
    return data


def load_overrides(cfg: C, path: str | os.PathLike) -> C:
    """``cfg`` with a YAML/JSON file (a path or a packaged config's name) applied as a partial mapping."""
    path = find_config_file(path)
    return merge_dict(cfg, load_mapping(path), where=os.fspath(path))


#: configuration files shipped inside the package, usable by name (``--config recipe-cpu``)
PACKAGED_CONFIGS = Path(__file__).resolve().parent / "assets" / "configs"


def packaged_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))


def find_config_file(name: str | os.PathLike) -> Path:
    """A YAML/JSON file's path, or the name of a packaged config (``recipe-cpu``) -> its path."""
    path = Path(name)
    if path.exists() or path.suffix or os.sep in str(name):
        return path
    packaged = PACKAGED_CONFIGS / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    raise InputError(path, f"no such file, and not a packaged config (packaged: {', '.join(packaged_configs())})")


# ----------------------------------------------------------------------------------------------------
# training (``dualtalk train``; defaults = the released training recipe where it has one)


class DataConfig(Config):
    """Where the examples come from and how they are cut."""

    #: split directories under DATA_DIR (any names); validation must not be the test split
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    #: window length in frames at 25 fps (the released training cut 200-frame chunks)
    window_frames: int = Field(200, ge=2)
    #: validation window (frames); 0 = same as ``window_frames``
    val_window_frames: int = Field(0, ge=0)
    #: examples per batch per process (the released training used 32)
    batch_size: int = Field(32, ge=1)
    #: data loading processes per training process; at most the CPUs it may use (the batches do not depend on it)
    num_workers: int = Field(4, ge=0)
    #: at most this many validation batches per evaluation (0 = the whole split)
    max_val_batches: int = Field(0, ge=0)
    #: cache the outputs of frozen audio encoders on disk (needs model.audio_encoder.freeze=true)
    feature_cache: bool = False
    #: cache location; default RUN_DIR/feature_cache (share one between runs to reuse it)
    cache_dir: str | None = None
    #: the cached encoders run over chunks of this many seconds of each file
    cache_chunk_seconds: float = Field(20.0, gt=0)


class OptimConfig(Config):
    """Adam + a step schedule (released: lr 1e-4, x0.8 every 50 epochs)."""

    #: ``adam`` (as released; weight_decay is an L2 term in the gradient) or ``adamw`` (decoupled weight decay)
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-4, gt=0)
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    weight_decay: float = Field(0.0, ge=0)
    #: ``step`` (multiply by ``gamma`` every ``step_size`` units) or ``constant``
    scheduler: Literal["step", "constant"] = "step"
    step_size: int = Field(50, ge=1)
    gamma: float = Field(0.8, gt=0)
    #: unit of ``step_size``: ``epoch`` (as released) or ``step`` (optimizer steps)
    step_unit: Literal["epoch", "step"] = "epoch"
    #: linear warm-up over this many optimizer steps (0 = none, as released)
    warmup_steps: int = Field(0, ge=0)
    #: micro-batches per optimizer step
    grad_accum_steps: int = Field(1, ge=1)
    #: clip the global gradient norm to this value (0 = off, as released)
    grad_clip: float = Field(0.0, ge=0)


class LossConfig(Config):
    """Released objective: MSE(exp) + MSE(jaw) + MSE(head pose) + MSE(velocity), weight 1 each.

    ``pose`` is the loss group of the 3-d head (global) rotation, named as the paper's metrics name it.
    The weights of the groups of the model's motion layout apply (``dualtalk.layout``): ``exp``, ``jaw``,
    ``pose`` for FLAME, ``mouth``, ``upper``, ``pose`` for ARKit; ``velocity`` for both.
    """

    exp: float = Field(1.0, ge=0)
    jaw: float = Field(1.0, ge=0)
    pose: float = Field(1.0, ge=0)
    #: ARKit layout: the 28 jaw, mouth and tongue weights
    mouth: float = Field(1.0, ge=0)
    #: ARKit layout: the other 24 weights (eyes, brows, cheeks, nose)
    upper: float = Field(1.0, ge=0)
    velocity: float = Field(1.0, ge=0)
    #: measure errors in units of the training-set std when the model normalises motion
    normalized: bool = True


class TrainConfig(Config):
    """One training run. ``model`` is a partial model config (nested mapping) applied to ``preset``."""

    preset: str = "small"
    model: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    max_steps: int = Field(100_000, ge=1)
    seed: int = Field(6666, ge=0, lt=2**32)
    #: ``auto`` (cuda:LOCAL_RANK when available, else cpu), ``cpu``, ``cuda``, ``cuda:1`` ...
    device: str = "auto"
    #: ``auto`` (bf16 autocast on a GPU that supports it, else fp32), ``fp32`` or ``bf16``
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    #: exponential moving average of the weights (0 = off); validation and best/ then use the EMA
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0)
    #: models with ``output_gain``: each coefficient's gain is fitted on validation from the lower confidence
    #: bound of the prediction-target covariance, this many standard errors below its estimate (0: the
    #: least-squares gain); a coefficient the model does not predict beyond chance then stays at the mean
    output_gain_z: float = Field(0.0, ge=0.0)
    #: models with ``output_gain``: each gain's covariance is taken less its own noise (se² / covariance, se
    #: from the spread of the validation windows), so that a gain fitted to chance alignment does not carry it
    #: to new data; next to nothing where the alignment is clear. Decides only the gain at the kept step
    output_gain_shrink: bool = False
    #: models with ``output_gain``: a group of coefficients (exp / jaw / pose) is kept only where its
    #: validation error, cross-fitted over 10 folds of windows (each fold's gains fitted on the other nine),
    #: beats the training mean's by this many standard errors; otherwise the whole group outputs the mean
    #: (gain 0). 1 is the one-standard-error rule; 0 = off (every group kept)
    output_group_gate: float = Field(0.0, ge=0.0)
    log_every: int = Field(10, ge=1)
    val_every: int = Field(500, ge=1)
    val_at_start: bool = True
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    tensorboard: bool = True
    #: write RUN_DIR/debug/rank{R}.json: the examples each process saw and its final weights' hash
    debug_record: bool = False

"""Named model configurations (timm-style registry).

    released        the released checkpoint's architecture: two wav2vec2-large-lv60 encoders, d=256 (647 M)
    paper           the same sizes with what the paper adds (variant "paper")
    small           log-mel audio encoders, d=64: trains on a CPU in minutes (the demo model's size)
    tiny            tiny wav2vec2 encoders, d=16: the real code path at toy size, for tests (< 0.1 s forward)
    tiny-mel        tiny log-mel encoders, d=16: for tests that train
    stream-small    the causal variant for live use (``dualtalk stream``): ``small``'s size, 80 ms lookahead
    tiny-stream     the causal variant at toy size, for tests
    speaker_only    baseline, FaceFormer-style: ``small``, paper variant, seeing only the person's own audio
    listener_only   baseline, Learning2Listen-style: ``small``, paper variant, seeing only the partner's audio
                    and motion

    faceformer, codetalker, selftalk, learning2listen
                    the paper's comparison systems as their own architectures (``dualtalk.model.baselines``) at
                    their papers' sizes, wav2vec2 audio (GPU); ``*-small``: at ``small``'s size with log-mel
                    audio (CPU, what ``dualtalk benchmark`` trains); ``tiny-*``: toy size, for tests

The baselines use the ``paper`` variant: its temporal bias, alignment bias and periodic positions are
FaceFormer's, and its aligned cross-modal attention keeps the partner's motion time-aligned, as
Learning2Listen's listener sees it. So each baseline is ``dualtalk_paper`` with inputs switched off.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import (
    WAV2VEC2_LARGE_LV60,
    AudioEncoderConfig,
    DualTalkConfig,
    apply_overrides,
    deep_merge,
    from_dict,
    to_dict,
)
from ..errors import DualTalkError

_PRESETS: dict[str, Callable[[], DualTalkConfig]] = {}


def register(name: str):
    def wrap(fn: Callable[[], DualTalkConfig]):
        _PRESETS[name] = fn
        return fn

    return wrap


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str, overrides: list[str] | tuple[str, ...] | str = ()) -> DualTalkConfig:
    """The model config of preset ``name`` (:func:`list_presets`), with dotted ``key=value`` ``overrides``
    applied and checked: ``get_preset("small", ["feature_dim=128"])``."""
    if name not in _PRESETS:
        raise DualTalkError(f"unknown model preset {name!r} (known: {', '.join(list_presets())})")
    return apply_overrides(_PRESETS[name](), [overrides] if isinstance(overrides, str) else list(overrides)).check()


#: wav2vec2-large-lv60's architecture at toy size (same layer kinds and CNN strides: the real code path)
TINY_WAV2VEC2 = dict(
    WAV2VEC2_LARGE_LV60,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=[16] * 7,
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=4,
)


@register("released")
def released() -> DualTalkConfig:
    return DualTalkConfig()


#: the paper variant's information paths (config fields; off in configs written before they existed)
PAPER_PATHS = dict(
    enhancer_residual=True, motion_skip=True, temporal_kernel=31, lstm_residual=True, interaction_residual=True
)


@register("paper")
def paper() -> DualTalkConfig:
    return DualTalkConfig(variant="paper", **PAPER_PATHS)


@register("small")
def small() -> DualTalkConfig:
    return DualTalkConfig(
        audio_encoder=AudioEncoderConfig(type="mel", n_mels=64, mel_channels=96, mel_layers=2),
        feature_dim=64,
        ffn_dim=256,
        encoder_layers=2,
        decoder_layers=1,
        dropout=0.1,
        interaction_dropout=0.1,
        normalize_motion=True,
        **PAPER_PATHS,
    )


@register("tiny")
def tiny() -> DualTalkConfig:
    return DualTalkConfig(
        audio_encoder=AudioEncoderConfig(type="wav2vec2", wav2vec2=dict(TINY_WAV2VEC2)),
        feature_dim=16,
        ffn_dim=32,
        encoder_layers=1,
        decoder_layers=1,
    )


@register("tiny-mel")
def tiny_mel() -> DualTalkConfig:
    return DualTalkConfig(
        audio_encoder=AudioEncoderConfig(type="mel", n_mels=32, mel_channels=16, mel_layers=1),
        feature_dim=16,
        ffn_dim=32,
        encoder_layers=1,
        decoder_layers=1,
        normalize_motion=True,
        **PAPER_PATHS,
    )


#: the causal model for live use (``dualtalk stream``): log-mel front ends at the frame rate, 80 ms of
#: lookahead, the partner's face read one frame late, attention over the last 4 s, and trained to run
#: without the partner's face too (a third of the examples hide it)
STREAM_SETTINGS = dict(
    variant="causal",
    lookahead_frames=2,
    partner_motion_delay=1,
    attention_window=100,
    partner_motion_dropout=0.3,
    temporal_kernel=15,
    lstm_layers=1,
    normalize_motion=True,
)


@register("stream-small")
def stream_small() -> DualTalkConfig:
    return DualTalkConfig(
        audio_encoder=AudioEncoderConfig(
            type="mel", n_mels=40, n_fft=512, mel_channels=96, mel_layers=2, normalize_waveform=False
        ),
        feature_dim=64,
        ffn_dim=256,
        encoder_layers=2,
        decoder_layers=1,
        dropout=0.1,
        interaction_dropout=0.1,
        **STREAM_SETTINGS,
    )


@register("tiny-stream")
def tiny_stream() -> DualTalkConfig:
    return DualTalkConfig(
        audio_encoder=AudioEncoderConfig(
            type="mel", n_mels=16, n_fft=256, mel_channels=16, mel_layers=1, normalize_waveform=False
        ),
        feature_dim=16,
        ffn_dim=32,
        encoder_layers=1,
        decoder_layers=1,
        **dict(STREAM_SETTINGS, attention_window=12, temporal_kernel=3),
    )


#: the model settings of each learned method of the comparison (``dualtalk benchmark``), applied to one
#: size preset. The baselines are the paper variant with inputs switched off (FaceFormer's biases and
#: positions; the partner's motion time-aligned, as Learning2Listen's listener sees it). Defined once:
#: the ``speaker_only``/``listener_only`` presets and the benchmark's methods both come from here.
METHODS: dict[str, dict] = {
    "dualtalk": {"variant": "released"},
    "dualtalk_paper": {"variant": "paper"},
    "speaker_only": {"variant": "paper", "use_partner_audio": False, "use_partner_motion": False},
    "listener_only": {"variant": "paper", "use_self_audio": False},
    # live use: the causal variant at the same size and recipe (lookahead, delay, window, dropout of stream-small)
    "dualtalk_causal": {k: v for k, v in STREAM_SETTINGS.items() if k not in ("temporal_kernel", "normalize_motion")},
}


def method_overrides(method: str) -> list[str]:
    """``model.key=value`` training overrides that turn a size preset into ``method``."""

    def items(prefix: str, values: dict):
        for k, v in values.items():
            if isinstance(v, dict):
                yield from items(f"{prefix}{k}.", v)
            else:
                yield f"{prefix}{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"

    return list(items("model.", METHODS[method]))


def _baseline(method: str) -> Callable[[], DualTalkConfig]:
    def build() -> DualTalkConfig:
        return small().model_copy(update=METHODS[method])

    build.__doc__ = f"``small`` with the model settings of the {method} baseline (:data:`METHODS`)."
    return build


for _name in ("speaker_only", "listener_only"):
    register(_name)(_baseline(_name))


# ----------------------------------------------------------------------------------------------------
# the paper's comparison systems as their own architectures (dualtalk.model.baselines)

#: what each baseline sees: FaceFormer, CodeTalker and SelfTalk the person's own audio; Learning2Listen the
#: partner's audio and motion
_SPEAKER_INPUTS = {"use_partner_audio": False, "use_partner_motion": False}
_LISTENER_INPUTS = {"use_self_audio": False}

#: the model settings of each baseline (the ``variant`` and its ``baseline`` settings), applied to a size preset
#: as the other methods of :data:`METHODS` are; stage 1 of the codebook methods takes ``stage1_steps`` (the
#: benchmark sets it to a share of its steps)
BASELINES: dict[str, dict] = {
    "faceformer": {"variant": "faceformer", **_SPEAKER_INPUTS},
    # CodeTalker (BIWI setting): 256 codes of 128 per frame-token, 16 tokens per frame at its 1024-d size
    "codetalker": {"variant": "codetalker", **_SPEAKER_INPUTS, "baseline": {"codebook_size": 256, "code_dim": 64}},
    "selftalk": {"variant": "selftalk", **_SPEAKER_INPUTS},
    # Learning2Listen: 200 codes, one per 8 frames (quant_factor 3), coded in windows of 32 frames; 4 codes of
    # the listener's past
    "learning2listen": {
        "variant": "learning2listen",
        **_LISTENER_INPUTS,
        "baseline": {"codebook_size": 200, "quant_factor": 3, "vq_window": 32, "past_codes": 4},
    },
}
METHODS.update(BASELINES)

#: wav2vec2-base-960h (FaceFormer's and CodeTalker's audio encoder), built in like the released model's
WAV2VEC2_BASE = dict(
    WAV2VEC2_LARGE_LV60,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    feat_extract_norm="group",
    conv_bias=False,
    do_stable_layer_norm=False,
)
WAV2VEC2_BASE_HUB_ID = "facebook/wav2vec2-base-960h"
#: SelfTalk's audio encoder and speech recognizer
SELFTALK_RECOGNIZER = "jonatasgrosman/wav2vec2-large-xlsr-53-english"


def _with(cfg: DualTalkConfig, method: str, **extra) -> DualTalkConfig:
    data = to_dict(cfg)
    return from_dict(DualTalkConfig, deep_merge(deep_merge(data, METHODS[method]), extra), where=f"preset {method}")


def _paper_size(method: str) -> DualTalkConfig:
    """The baseline at its paper's size (BIWI's 25 fps settings), wav2vec2 audio from the hub."""
    base = DualTalkConfig(
        audio_encoder=AudioEncoderConfig(
            type="wav2vec2", wav2vec2=dict(WAV2VEC2_BASE), pretrained=WAV2VEC2_BASE_HUB_ID
        ),
        feature_dim=128,
        ffn_dim=256,
        num_heads=4,
        decoder_layers=1,
        encoder_layers=6,
        bias_period=25,
        normalize_motion=True,
    )
    extra: dict = {}
    if method == "codetalker":  # BIWI: 1024-d, 16 codes of 128 per frame
        extra = {"feature_dim": 1024, "ffn_dim": 2048, "baseline": {"code_dim": 128, "codes_per_frame": 16}}
        extra["baseline"]["stage1_steps"] = 20000
    if method == "learning2listen":  # 12 layers of 256 in the VQ-VAE; mel features of the partner
        extra = {
            "feature_dim": 256,
            "ffn_dim": 384,
            "num_heads": 8,
            "encoder_layers": 12,
            "decoder_layers": 2,
            "audio_encoder": {"type": "mel", "n_mels": 128, "mel_channels": 128, "mel_layers": 1},
            "baseline": {"code_dim": 256, "stage1_steps": 20000},
        }
    if method == "selftalk":  # xlsr-53 English for both the audio encoder and the recognizer, d=1024
        large = dict(WAV2VEC2_LARGE_LV60, feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)
        extra = {
            "feature_dim": 1024,
            "ffn_dim": 2048,
            "audio_encoder": {"wav2vec2": large, "pretrained": SELFTALK_RECOGNIZER},
            "baseline": {"recognizer": SELFTALK_RECOGNIZER, "recognizer_dim": 1024, "recognizer_vocab": 33},
        }
    return _with(base, method, **extra)


def _small_size(method: str) -> DualTalkConfig:
    extra: dict = {"baseline": {"stage1_steps": 400}} if method in ("codetalker", "learning2listen") else {}
    return _with(small(), method, **extra)


def _tiny_size(method: str) -> DualTalkConfig:
    extra: dict = {"baseline": {"codebook_size": 32, "code_dim": 8}}
    if method in ("codetalker", "learning2listen"):
        extra["baseline"]["stage1_steps"] = 10
    if method == "selftalk":
        extra["baseline"].update(recognizer_dim=32, recognizer_vocab=12)
    return _with(tiny_mel(), method, **extra)


for _name in BASELINES:
    for _size, _make in (("", _paper_size), ("-small", _small_size)):
        register(f"{_name}{_size}")((lambda n, f: lambda: f(n))(_name, _make))
    register(f"tiny-{_name}")((lambda n: lambda: _tiny_size(n))(_name))

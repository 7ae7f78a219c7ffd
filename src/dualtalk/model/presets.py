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

The baselines use the ``paper`` variant: its temporal bias, alignment bias and periodic positions are
FaceFormer's, and its aligned cross-modal attention keeps the partner's motion time-aligned, as
Learning2Listen's listener sees it. So each baseline is ``dualtalk_paper`` with inputs switched off.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import WAV2VEC2_LARGE_LV60, AudioEncoderConfig, DualTalkConfig, apply_overrides
from ..errors import DualTalkError

_PRESETS: dict[str, Callable[[], DualTalkConfig]] = {}


def register(name: str):
    def wrap(fn: Callable[[], DualTalkConfig]):
        _PRESETS[name] = fn
        return fn

    return wrap


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str, overrides: list[str] | tuple[str, ...] = ()) -> DualTalkConfig:
    if name not in _PRESETS:
        raise DualTalkError(f"unknown model preset {name!r} (known: {', '.join(list_presets())})")
    return apply_overrides(_PRESETS[name](), list(overrides)).check()


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
    return [f"model.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in METHODS[method].items()]


def _baseline(method: str) -> Callable[[], DualTalkConfig]:
    def build() -> DualTalkConfig:
        return small().model_copy(update=METHODS[method])

    build.__doc__ = f"``small`` with the model settings of the {method} baseline (:data:`METHODS`)."
    return build


for _name in ("speaker_only", "listener_only"):
    register(_name)(_baseline(_name))

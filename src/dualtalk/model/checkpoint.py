"""Checkpoints: the project's own format, the released checkpoint's layout, and one loader for all.

Own format: a directory with
  - ``config.json``: ``{"format_version": 1, "model": <DualTalkConfig as dict>, "dualtalk_version": ...,
    "extra": {...}}``; a loader refuses format versions it does not know;
  - ``model.safetensors``: the state dict (no pickle, safe to load from anywhere).

Released layout: the ``DualTalk.pth`` state dict of the reference implementation (torch.save, keys
``joint_encoder.audio_encoder1.*`` ..., the wav2vec2 positional convolution with weight norm stored as
``weight_g`` / ``weight_v``). :func:`filter_official_state_dict` (a timm-style filter function)
translates it to our keys; it is read with ``torch.load(weights_only=True)``: no code runs from the file.

:func:`load_model` takes a model directory, an ``hf-hub:org/name`` id, a released-layout ``.pth`` or a
preset name (random weights), and returns the model in eval mode.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import torch
from pydantic import ValidationError

from .. import __version__
from ..config import BASELINE_VARIANTS, FORMAT_VERSION, DualTalkConfig, config_error, from_dict, to_dict
from ..errors import DualTalkError, InputError
from ..io.files import atomic_path, atomic_write_text
from .baselines.common import BaselineModel
from .causal import CausalDualTalk
from .dualtalk import DualTalk, build_model

#: what the loaders return: the offline model, the causal one or a comparison baseline (the same calling
#: convention)
Model = DualTalk | CausalDualTalk | BaselineModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
HUB_PREFIX = "hf-hub:"


# ----------------------------------------------------------------------------------------------------
# own format


def _config_dict(cfg) -> dict:
    """The model config as written to ``config.json``: sections that do not apply to the model and are at
    their defaults are left out (the baselines' settings of a DualTalk model, the FLAME motion layout), so a
    DualTalk model's file stays readable by versions from before those sections existed; loading fills them
    back in."""
    out = to_dict(cfg)
    defaults = to_dict(type(cfg)())
    if cfg.variant not in BASELINE_VARIANTS and out.get("baseline") == defaults.get("baseline"):
        out.pop("baseline", None)
    if out.get("motion_layout") == "flame":
        out.pop("motion_layout", None)
    return out


def save_model(model: DualTalk, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write ``directory/config.json`` + ``directory/model.safetensors`` (each atomically)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    meta = {
        "format_version": FORMAT_VERSION,
        "dualtalk_version": __version__,
        "model": _config_dict(model.config),
        "extra": extra or {},
    }
    atomic_write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    return directory


def _read_json(path: Path, missing: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, missing) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from None


def read_model_config(directory: str | os.PathLike) -> tuple[DualTalkConfig, dict]:
    path = Path(directory) / CONFIG_NAME
    meta = _read_json(path, "model config not found (a model directory holds config.json + model.safetensors)")
    if not isinstance(meta, dict) or "format_version" not in meta or "model" not in meta:
        raise InputError(path, "not a dualtalk model config (needs format_version and model)")
    if isinstance(meta["format_version"], bool) or not isinstance(meta["format_version"], int):
        raise InputError(path, f"format_version must be a whole number, got {meta['format_version']!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise InputError(
            path,
            f"model format version {meta['format_version']} is not supported "
            f"(this dualtalk {__version__} reads version {FORMAT_VERSION})",
        )
    cfg = from_dict(DualTalkConfig, meta["model"], where=str(path), prefix="model.")
    try:
        cfg.check()
    except DualTalkError as exc:
        raise InputError(path, f"model: {exc}") from None
    return cfg, meta.get("extra", {})


def load_model_dir(directory: str | os.PathLike, device="cpu") -> Model:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    cfg, extra = read_model_config(directory)
    weights = Path(directory) / WEIGHTS_NAME
    if not weights.exists():
        raise InputError(weights, "model weights not found")
    try:
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise InputError(weights, f"not a readable safetensors file ({exc})") from None
    cfg.audio_encoder.pretrained = None  # weights come from the file
    with torch.device("meta"):
        model = build_model(cfg)
    _load_state(model, state, weights)
    model.extra = extra
    return model.eval()


def _load_state(model: Model, state: dict, source) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise InputError(source, "weights do not fit the model config: " + ", ".join(parts))
    for key, value in state.items():
        if tuple(expected[key].shape) != tuple(value.shape):
            raise InputError(
                source, f"weight {key} has shape {tuple(value.shape)}, the config expects {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, assign=True)
    _rebuild_nonpersistent(model)


def _rebuild_nonpersistent(model: Model) -> None:
    """Non-persistent buffers (mel filters, windows) were created on the meta device: rebuild them."""
    from ..features.audio_encoder import MelEncoder, mel_filterbank
    from .causal import CausalLogMel, WindowedAttention
    from .layers import PeriodicPositionalEncoding

    for module in model.modules():
        if isinstance(module, (CausalLogMel, WindowedAttention)):
            module.rebuild_buffers(next((p.device for p in model.parameters()), None))
        if isinstance(module, MelEncoder):
            cfg = module.cfg
            dev = next(module.parameters()).device
            module.window = torch.hann_window(cfg.n_fft, device=dev)
            module.mel = torch.from_numpy(mel_filterbank(model.config.sample_rate, cfg.n_fft, cfg.n_mels)).to(dev)
        if isinstance(module, PeriodicPositionalEncoding) and module.pe.is_meta:
            fresh = PeriodicPositionalEncoding(module.pe.shape[1], module.period)
            module.pe = fresh.pe


# ----------------------------------------------------------------------------------------------------
# released layout


def config_from_official_json(path: str | os.PathLike) -> DualTalkConfig:
    """A config in the form of the parity fixture's config.json: ``audio_encoder_config`` (Wav2Vec2Config
    fields), ``feature_dim``, ``motion_dim``, ``fps``, ``sample_rate`` (other keys ignored)."""
    path = Path(path)
    data = _read_json(path, "config file not found")
    if not isinstance(data, dict) or "audio_encoder_config" not in data:
        raise InputError(path, "not a released-model config (needs audio_encoder_config and feature_dim)")
    cfg = DualTalkConfig()
    cfg.audio_encoder.wav2vec2 = dict(data["audio_encoder_config"])
    try:
        for key in ("feature_dim", "motion_dim", "fps", "sample_rate"):
            if key in data:
                setattr(cfg, key, data[key])
    except ValidationError as exc:
        raise config_error(exc, DualTalkConfig, str(path)) from None
    try:
        return cfg.check()
    except DualTalkError as exc:
        raise InputError(path, str(exc)) from None


def load_official_state_dict(path: str | os.PathLike) -> dict:
    """``torch.load(weights_only=True)`` of a released-layout checkpoint, as a flat tensor dict."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint not found")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a loadable PyTorch checkpoint ({first[:200]})") from None
    for key in ("state_dict", "model", "model_state_dict"):  # common wrappers
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(path, "does not contain a state dict of tensors")
    return obj


_WEIGHT_NORM = re.compile(r"(.*\.pos_conv_embed\.conv\.)weight_([gv])$")


def filter_official_state_dict(state: dict, model: DualTalk) -> dict:
    """Released-layout keys -> ours: ``module.`` prefixes dropped, ``audio_encoderK.X`` ->
    ``audio_encoderK.model.X``, weight norm ``weight_g``/``weight_v`` -> the parametrization keys of the
    installed transformers (``parametrizations.weight.original0/1``) when it uses them."""
    target = model.state_dict()
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        key = re.sub(r"^(joint_encoder\.audio_encoder[12])\.", r"\1.model.", key)
        m = _WEIGHT_NORM.match(key)
        if m and key not in target:
            key = f"{m[1]}parametrizations.weight.original{0 if m[2] == 'g' else 1}"
        out[key] = value
    return out


def to_official_state_dict(model: DualTalk) -> dict:
    """Our state dict in the released layout (the inverse of :func:`filter_official_state_dict`)."""
    out = {}
    for key, value in model.state_dict().items():
        key = re.sub(r"^(joint_encoder\.audio_encoder[12])\.model\.", r"\1.", key)
        key = re.sub(
            r"parametrizations\.weight\.original([01])$", lambda m: "weight_g" if m[1] == "0" else "weight_v", key
        )
        out[key] = value
    return out


def load_official(
    path: str | os.PathLike, config: str | os.PathLike | DualTalkConfig | None = None, device="cpu"
) -> DualTalk:
    """Build the model for a released-layout checkpoint (released shapes unless ``config`` says otherwise)."""
    if config is None:
        cfg = DualTalkConfig()
    elif isinstance(config, DualTalkConfig):
        cfg = config
    else:
        cfg = config_from_official_json(config)
    state = load_official_state_dict(path)
    with torch.device("meta"):
        model = DualTalk(cfg)
    state = filter_official_state_dict(state, model)
    try:
        _load_state(model, state, path)
    except InputError as exc:
        hint = "" if config is not None else " (not the released model's shapes? pass --config CFG.json)"
        raise InputError(path, exc.what + hint) from None
    return model.to(device).eval()


def convert_official(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """``dualtalk convert-official``: released-layout ``.pth`` -> our model directory. ``out_dir`` is new or empty;
    a model directory already there is replaced only with ``overwrite``; a directory of other files is refused."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a directory: the output is a model directory")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / CONFIG_NAME).exists() or (out / WEIGHTS_NAME).exists()):
            raise InputError(out, "exists and is not a model directory (it holds other files): choose a new one")
        if not overwrite:
            raise InputError(out, "already holds a model: pass --overwrite to replace it, or choose a new directory")
    model = load_official(src, config)
    return save_model(model, out_dir, extra={"converted_from": os.path.basename(os.fspath(src))})


# ----------------------------------------------------------------------------------------------------
# one loader


#: models shipped in the package, loadable by name (``--model demo-stream``): name -> model directory
PACKAGED_MODELS = {
    "demo": Path(__file__).resolve().parents[1] / "assets" / "demo_model",  # scripts/train_demo_model.py
    "demo-stream": Path(__file__).resolve().parents[1] / "assets" / "demo_stream",  # ... --stream
}


def load_model(
    source: str | os.PathLike, config: str | os.PathLike | None = None, device="cpu", dtype: torch.dtype | None = None
) -> Model:
    """A model from a directory, a packaged model's name (``demo``, ``demo-stream``), an ``hf-hub:`` id, a
    released-layout ``.pth`` or a preset name.

    A preset name gives random weights (useful for tests and benchmarks of speed). A causal model comes
    back as :class:`~dualtalk.model.causal.CausalDualTalk` (same calling convention).
    """
    from .presets import get_preset, list_presets

    text = os.fspath(source)
    path = Path(text)
    if text in PACKAGED_MODELS and not path.exists():
        if not (PACKAGED_MODELS[text] / CONFIG_NAME).exists():
            raise InputError(
                PACKAGED_MODELS[text],
                f"the packaged model {text!r} is missing from this installation "
                "(re-create it: python scripts/train_demo_model.py --help)",
            )
        path = PACKAGED_MODELS[text]
        model = load_model_dir(path, device)
    elif text.startswith(HUB_PREFIX):
        model = load_model_dir(_download_hub(text[len(HUB_PREFIX) :]), device)
    elif path.is_dir():
        model = load_model_dir(path, device)
    elif path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        model = load_official(path, config, device)
    elif path.exists():
        raise InputError(path, "not a model (expected a model directory, a .pth checkpoint, an hf-hub: id or a preset)")
    elif text in list_presets():
        model = build_model(get_preset(text)).eval()
    else:
        raise InputError(
            path, f"model not found (not a directory, .pth file, hf-hub: id, or preset: {', '.join(list_presets())})"
        )
    model = model.to(device)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def _download_hub(repo_id: str) -> Path:
    """Fetch config.json + model.safetensors of a hub repository (cached by huggingface_hub)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        raise DualTalkError("hf-hub: ids need the huggingface_hub package") from None
    try:
        cfg = hf_hub_download(repo_id, CONFIG_NAME)
        hf_hub_download(repo_id, WEIGHTS_NAME)
    except Exception as exc:  # noqa: BLE001 - offline, 404, auth: all one line for the user
        from huggingface_hub.errors import LocalEntryNotFoundError

        if isinstance(exc, LocalEntryNotFoundError):  # no network (or HF_HUB_OFFLINE=1) and nothing cached
            why = "the Hugging Face Hub cannot be reached (offline?) and the model is not in the local cache"
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            why = first if len(first) <= 300 else first[:297].rstrip() + "..."
        raise DualTalkError(f"hf-hub:{repo_id}: cannot download the model ({why})") from None
    return Path(cfg).parent

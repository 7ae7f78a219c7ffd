"""Reading audio (any rate / channels), motion (dataset layout, model order) and conversation directories."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dualtalk.errors import InputError
from dualtalk.io import Motion, discover_conversations, load_audio, load_motion, save_motion
from dualtalk.io.conversation import load_generation_inputs, num_frames


def test_stereo_flac_at_44k1_becomes_mono_16k_band_limited(tmp_path):
    sr = 44100
    t = np.arange(int(2.0 * sr)) / sr
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 12000 * t)  # above 8 kHz: must vanish
    sf.write(str(tmp_path / "x.flac"), np.stack([left, right], 1), sr)
    wave = load_audio(tmp_path / "x.flac")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 32000) <= 1
    spec = np.abs(np.fft.rfft(wave[4000:28000] * np.hanning(24000)))
    freqs = np.fft.rfftfreq(24000, 1 / 16000)
    assert abs(freqs[spec.argmax()] - 440) < 2
    # the 12 kHz tone would alias to 4 kHz with naive decimation; a proper resampler removes it
    alias = spec[np.abs(freqs - 4000) < 20].max()
    assert alias < 1e-3 * spec.max()
    # channel mix: the 440 Hz tone is in both channels with amplitude 0.5
    assert 0.45 < np.abs(wave[4000:28000]).max() < 0.55


def test_motion_layout_and_model_order(tmp_path):
    rng = np.random.default_rng(0)
    exp = rng.normal(size=(7, 50)).astype(np.float32)
    pose = rng.normal(size=(7, 6)).astype(np.float32)
    np.savez(
        tmp_path / "m.npz",
        exp=exp,
        pose=pose,
        shape=np.zeros((7, 100)),
        cam=np.zeros((7, 3)),
        light=np.zeros((7, 9, 3)),
    )
    m = load_motion(tmp_path / "m.npz")
    x = m.to_model()
    assert x.shape == (7, 56)
    np.testing.assert_array_equal(x[:, :50], exp)
    np.testing.assert_array_equal(x[:, 50:53], pose[:, 3:6])  # jaw
    np.testing.assert_array_equal(x[:, 53:56], pose[:, 0:3])  # global rotation
    save_motion(tmp_path / "out.npz", Motion.from_model(x))
    with np.load(tmp_path / "out.npz") as d:
        assert set(d.files) == {"exp", "pose"}
        np.testing.assert_array_equal(d["pose"], pose)
    assert len(m.fit_length(10)) == 10 and np.array_equal(m.fit_length(10).to_model()[-1], x[-1])


def test_frames_from_samples_is_exact_integer_ceil():
    assert num_frames(640) == 1 and num_frames(641) == 2 and num_frames(4480) == 7 and num_frames(64604) == 101


def _conv(d, name, motion_sides=(1, 2), t=20):
    for k in (1, 2):
        sf.write(str(d / f"{name}_speaker{k}.wav"), np.zeros(t * 640, np.float32), 16000)
    for k in motion_sides:
        np.savez(d / f"{name}_speaker{k}.npz", exp=np.zeros((t, 50)), pose=np.zeros((t, 6)))


def test_discovery_one_sided_motion_and_strictness(tmp_path):
    _conv(tmp_path, "a")
    _conv(tmp_path, "b", motion_sides=(2,))
    (tmp_path / "notes.txt").write_text("ignored")
    convs = discover_conversations(tmp_path)
    assert [c.name for c in convs] == ["a", "b"]
    assert convs[0].generatable() == [1, 2] and convs[1].generatable() == [1]
    with pytest.raises(InputError, match="b_speaker1.npz: motion file not found"):
        discover_conversations(tmp_path, require_motion="both")
    sf.write(str(tmp_path / "a_speaker3.wav"), np.zeros(640, np.float32), 16000)
    with pytest.raises(InputError, match="speaker 3 is not 1 or 2"):
        discover_conversations(tmp_path)


def test_generation_inputs_are_aligned_to_self_audio(tmp_path):
    _conv(tmp_path, "c", t=30)
    sf.write(str(tmp_path / "c_speaker1.wav"), np.zeros(30 * 640 + 900, np.float32), 16000)  # 2 frames longer
    inputs = load_generation_inputs(
        tmp_path / "c_speaker2.wav", tmp_path / "c_speaker1.wav", tmp_path / "c_speaker1.npz"
    )
    assert inputs.num_frames == 30 and len(inputs.partner_audio) == len(inputs.self_audio) == 30 * 640
    assert inputs.partner_motion.shape == (30, 56)


def test_a_split_takes_the_audio_formats_libsndfile_reads(tmp_path):
    """A conversation's audio may be .flac / .ogg / ... in a split (not only .wav); the error for a missing side
    says which suffixes count."""
    _conv(tmp_path, "d", t=20)
    for k, fmt in ((1, "FLAC"), (2, "OGG")):
        wav = tmp_path / f"d_speaker{k}.wav"
        data, sr = sf.read(str(wav))
        sf.write(str(wav.with_suffix(f".{fmt.lower()}")), data, sr, format=fmt)
        wav.unlink()
    (conv,) = discover_conversations(tmp_path)
    assert [conv.audio[k].suffix for k in (1, 2)] == [".flac", ".ogg"]
    (tmp_path / "d_speaker2.ogg").unlink()
    with pytest.raises(InputError, match=r"d_speaker2.wav: audio file not found \(.wav, .flac, .ogg, .opus, .mp3;"):
        discover_conversations(tmp_path)


def test_undecodable_content_is_not_called_a_missing_file(tmp_path):
    bad = tmp_path / "speech.mp3"
    bad.write_text("not audio at all")
    with pytest.raises(InputError, match="speech.mp3: not a readable audio file") as err:
        load_audio(bad)
    assert "does not exist" not in str(err.value)


def test_partner_motion_may_be_a_model_order_npy(tmp_path):
    """What `predict` writes ((T, 56) model order) is a partner motion for `generate`, same as its .npz."""
    _conv(tmp_path, "e", t=30)
    from_npz = load_generation_inputs(
        tmp_path / "e_speaker2.wav", tmp_path / "e_speaker1.wav", tmp_path / "e_speaker1.npz"
    )
    np.save(tmp_path / "e_speaker1.npy", load_motion(tmp_path / "e_speaker1.npz").to_model())
    from_npy = load_generation_inputs(
        tmp_path / "e_speaker2.wav", tmp_path / "e_speaker1.wav", tmp_path / "e_speaker1.npy"
    )
    np.testing.assert_array_equal(from_npy.partner_motion, from_npz.partner_motion)
    np.save(tmp_path / "wide.npy", np.zeros((30, 60), np.float32))
    with pytest.raises(InputError, match=r"wide.npy: 'array' must have shape \(T, 56\)"):
        load_generation_inputs(tmp_path / "e_speaker2.wav", tmp_path / "e_speaker1.wav", tmp_path / "wide.npy")

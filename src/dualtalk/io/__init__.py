"""Reading and writing the files of a conversation: audio, motion, directories of conversations."""

from .audio import load_audio, save_audio
from .conversation import Conversation, discover_conversations, partner_speaker
from .motion import Motion, load_motion, save_motion

__all__ = [
    "Conversation",
    "Motion",
    "discover_conversations",
    "load_audio",
    "load_motion",
    "partner_speaker",
    "save_audio",
    "save_motion",
]

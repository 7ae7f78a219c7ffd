"""Reading and writing the files of a conversation: audio, motion, directories of conversations.

Also the process's other contacts with the outside: ``pickles`` (restricted unpickling of FLAME's files),
``progress`` (progress bars that stay readable in log files), ``threads`` (native thread pools limited
to one thread). The facts of the data (rates, dimensions, orders) are in :mod:`dualtalk.layout`.
"""

from .audio import load_audio, save_audio
from .conversation import Conversation, discover_conversations, partner_speaker
from .motion import ArkitMotion, Motion, load_any_motion, load_motion, save_motion

__all__ = [
    "ArkitMotion",
    "Conversation",
    "Motion",
    "discover_conversations",
    "load_any_motion",
    "load_audio",
    "load_motion",
    "partner_speaker",
    "save_audio",
    "save_motion",
]

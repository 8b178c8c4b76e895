"""dsr.encoders: the DSR towers and the encoders the rest of dsr sees through the `Encoder` protocol.

Heavy modules (torch models, sentence-transformers) are imported by their own modules, not here.
"""

from dsr.encoders.base import Encoder, UserContext, l2_normalise
from dsr.encoders.hashing import HashingEncoder

__all__ = ["Encoder", "HashingEncoder", "UserContext", "l2_normalise"]

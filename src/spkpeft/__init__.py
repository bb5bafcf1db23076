"""spkpeft: parameter-efficient adaptation of pre-trained speech Transformers for speaker tasks."""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing spkpeft must not import torch/transformers
    if name == "SpeakerVerifier":
        from spkpeft.api import SpeakerVerifier

        return SpeakerVerifier
    raise AttributeError(f"module 'spkpeft' has no attribute {name!r}")

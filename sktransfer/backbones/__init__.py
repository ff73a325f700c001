"""Backbones: pretrained image networks by name (torchvision, timm, registered) or as a
module, with their heads removed and their preprocessing attached; pretrained
text encoders (the built-in ``"all-MiniLM-L6-v2"``, ``"hf:<repo or folder>"``)
as :class:`TextBackbone`.

The builder contract that :func:`register_backbone` takes is written in
:mod:`sktransfer.backbones._registry`.
"""

from ._base import POOLINGS, Backbone, GlobalPool
from ._checkpoint import read_checkpoint
from ._factory import list_backbones, list_layers, load_backbone
from ._builtin import SimpleCNN
from ._registry import register_backbone
from ._text import TEXT_POOLINGS, TextBackbone

__all__ = [
    "POOLINGS",
    "Backbone",
    "GlobalPool",
    "SimpleCNN",
    "TEXT_POOLINGS",
    "TextBackbone",
    "list_backbones",
    "list_layers",
    "load_backbone",
    "read_checkpoint",
    "register_backbone",
]

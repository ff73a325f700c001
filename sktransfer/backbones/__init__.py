"""Backbones: pretrained CNNs by name (torchvision, timm, registered) or as a
module, with their heads removed and their preprocessing attached."""

from ._base import POOLINGS, Backbone, GlobalPool
from ._checkpoint import load_state_into, read_checkpoint, remap_by_order
from ._factory import is_rebuildable, list_backbones, load_backbone, weights_is_path
from ._layers import list_layers
from ._builtin import SimpleCNN, lite0_weights_file
from ._registry import register_backbone, registered_builder

__all__ = [
    "POOLINGS",
    "Backbone",
    "GlobalPool",
    "SimpleCNN",
    "is_rebuildable",
    "lite0_weights_file",
    "list_backbones",
    "list_layers",
    "load_backbone",
    "load_state_into",
    "read_checkpoint",
    "register_backbone",
    "registered_builder",
    "remap_by_order",
    "weights_is_path",
]

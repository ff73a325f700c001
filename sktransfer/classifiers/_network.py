"""The networks the classifiers train: a backbone with a linear head, and an MLP
backbone for flat feature input."""

from torch import nn

from ..backbones import Backbone


class ClassifierNet(nn.Module):
    """``backbone`` (images -> features) followed by a linear head (-> logits).

    ``forward(x, return_features=True)`` also returns the features, which
    domain-adaptation losses align.
    """

    def __init__(self, backbone, n_classes, *, dropout=0.0):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(backbone.num_features, n_classes)

    def forward(self, x, return_features=False):
        features = _checked_width(self.backbone(x), self.head.in_features)
        logits = self.head(self.dropout(features))
        if return_features:
            return logits, features
        return logits


class FeaturesOnly(nn.Module):
    """The penultimate features of a :class:`ClassifierNet` (for ``transform``)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return _checked_width(self.net.backbone(x), self.net.head.in_features)


def _checked_width(features, width):
    """``features``, when each row has the ``width`` the head was built for; a
    network whose features grow with the image (no global pooling) gives
    another width on images of another size than fit's: a ValueError says so
    (the head's matrix product named no size)."""
    if features.shape[1] != width:
        raise ValueError(
            f"the network gives {features.shape[1]} features per sample for these "
            f"inputs, and its head was fitted on {width}: its features depend on the "
            "image size. Give images of the fitted size, or fit with image_size so "
            "that every image is resized to one size.")
    return features


def mlp_backbone(n_features, hidden_layer_sizes=(256,)):
    """A ReLU MLP for flat input, as a :class:`Backbone`."""
    layers, width = [], n_features
    for size in hidden_layer_sizes:
        layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
        width = size
    body = nn.Sequential(*layers) if layers else nn.Identity()
    return Backbone(body, num_features=width, name="mlp")


def mlp_hidden_sizes(backbone):
    """The hidden layer sizes of an :func:`mlp_backbone`, read from its layers."""
    return tuple(layer.out_features for layer in backbone.body.modules()
                 if isinstance(layer, nn.Linear))

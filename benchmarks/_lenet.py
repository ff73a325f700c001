"""The LeNet-style network of ``bench_domain_adaptation.py``, shared by both sides.

The DANN paper's architecture for MNIST -> MNIST-M (Ganin et al., JMLR 2016),
with BatchNorm after each convolution, for 32x32 RGB images scaled to [0, 1]::

    conv 5x5 3->32, BN, ReLU, maxpool 2      32x32 -> 28x28 -> 14x14
    conv 5x5 32->48, BN, ReLU, maxpool 2     14x14 -> 10x10 -> 5x5
    flatten (48*5*5 = 1200), Linear 1200->100, ReLU, Linear 100->100, ReLU

The 100 outputs are the features the adaptation losses align; the classifier is
one ``Linear(100, n_classes)`` on top (sktransfer adds its own head; skada gets
:class:`LeNetClassifier`, which holds the same features and a head).
"""

import numpy as np
import torch
from torch import nn

N_FEATURES = 100

#: ``layer_name`` of skada's deep methods: the module whose output (the 100
#: features) the adaptation loss sees in :class:`LeNetClassifier`.
FEATURE_LAYER = "feature_extractor"


class LeNetFeatures(nn.Module):
    """Images (N, 3, 32, 32) in [0, 1] -> features (N, 100)."""

    num_features = N_FEATURES  # read by sktransfer (no dry run needed)

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 48, kernel_size=5), nn.BatchNorm2d(48), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(48 * 5 * 5, N_FEATURES), nn.ReLU(),
            nn.Linear(N_FEATURES, N_FEATURES), nn.ReLU(),
        )

    def forward(self, x):
        return self.body(x)


class LeNetClassifier(nn.Module):
    """:class:`LeNetFeatures` and a linear head, for skada / skorch.

    ``forward`` accepts (and ignores) ``sample_weight``, which skada's
    ``DomainAwareModule`` passes at prediction time.
    """

    def __init__(self, feature_extractor, head):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.head = head

    def forward(self, x, sample_weight=None):
        return self.head(self.feature_extractor(x))


def sktransfer_seed(random_state):
    """The seed ``DomainAdaptClassifier(random_state=random_state)`` builds its
    network with (``NeuralClassifierBase._seed``): its head is the first draw of
    torch's RNG after ``torch.manual_seed`` of this value."""
    return int(np.random.RandomState(random_state).randint(np.iinfo(np.int32).max))


def build_features(seed):
    """:class:`LeNetFeatures` with weights drawn after ``torch.manual_seed(seed)``;
    the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LeNetFeatures()


def build_classifier(seed, n_classes):
    """:class:`LeNetClassifier` with the same initial weights as sktransfer's
    network for ``model=build_features(seed), random_state=seed``: the same
    features, and the head sktransfer draws (``nn.Linear`` after
    ``torch.manual_seed(sktransfer_seed(seed))``)."""
    features = build_features(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sktransfer_seed(seed))
        head = nn.Linear(N_FEATURES, n_classes)
    return LeNetClassifier(features, head)

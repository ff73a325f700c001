"""Domain-adaptation losses as small modules: the contract, and one class per
method.

The contract is :class:`AdaptationLoss`, the base of every loss
:class:`~sktransfer.DomainAdaptClassifier` trains with::

    loss(features_source, logits_source, features_target, logits_target) -> scalar

with float32 tensors ``(n_source, n_features)``, ``(n_source, n_classes)``,
``(n_target, n_features)``, ``(n_target, n_classes)``; logits are raw (no
softmax). Before training the estimator calls ``loss.build(n_features,
n_classes)`` (to size a discriminator), and before every step the training step
sets ``loss.progress`` (0 -> 1 over the fit). Its parameters (a discriminator)
train with the network, at the head's learning rate. ``target_augments`` says
which views of each target batch the loss sees, and ``training_step`` which
step trains with it. Source/target balance is the data loader's job: every
step sees ``batch_size`` samples of each domain. A plain callable given as
``method=`` is wrapped in an :class:`AdaptationLoss` that calls it.
"""

from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

from .._sklearn_compat import Interval, StrOptions, validate_parameter_constraints
from .._utils.torch_parameters import ParameterizedModule
from ..training import DomainAdaptationStep
from . import _functional as functional

_NON_NEGATIVE = [Interval(Real, 0, None, closed="left")]
_POSITIVE = [Interval(Real, 0, None, closed="neither")]
_HIDDEN_SIZE = [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})]


class AdaptationLoss(ParameterizedModule):
    """Base of domain-adaptation losses: the contract between a method and
    :class:`~sktransfer.DomainAdaptClassifier`.

    Subclasses implement ``forward(features_source, logits_source,
    features_target, logits_target) -> scalar`` and may override the hooks
    below, whose defaults do nothing special; list hyper-parameters in
    ``_parameter_constraints`` (scikit-learn's form) to have them checked when
    ``fit`` starts. See ``docs/custom_method.md`` for a complete example.

    Attributes
    ----------
    progress : float
        Share of the fit done (0 -> 1), set by the training step before every
        step (for schedules such as DANN's gradient-reversal ramp).
    training_step : type
        The step that trains with this loss:
        :class:`~sktransfer.training.DomainAdaptationStep` by default (a
        source batch and the target views each step, one forward over both).
        A method that needs its own step names a subclass of it here, defined
        beside the loss (the estimators refuse any other class).
    target_augments : list of callables or None
        The views of each target batch the loss sees, one augmentation (or
        None) per view, in the order of ``forward``'s target arguments; None
        (the default): one view, augmented by the estimator's ``augment``. On
        flat rows (``model=None``) every view is the rows as given:
        augmentations apply to images and texts.
    modalities : tuple of str
        The inputs the method works on: ``"image"``, ``"text"`` (tokenized
        texts) and ``"tabular"`` (flat rows); the estimator refuses the others
        before training.
    needs_classes : bool
        Whether the method reads the outputs as class scores (pseudo-labels,
        class confusion, a discriminator conditioned on the predicted class).
        A regression's outputs are numbers, not class scores:
        :class:`~sktransfer.DomainAdaptRegressor` refuses such a method before
        training. False by default: a loss on the features alone, which both
        estimators take.
    """

    _parameter_constraints: dict = {}
    training_step = DomainAdaptationStep
    target_augments = None
    modalities = ("image", "text", "tabular")
    needs_classes = False

    def __init__(self):
        super().__init__()
        self.progress = 0.0

    def check_parameters(self):
        """Raise ``ValueError`` naming the first parameter out of its range;
        :class:`~sktransfer.DomainAdaptClassifier` calls it at the start of
        ``fit``, before its input is read."""
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__)

    def build(self, n_features, n_classes):
        """Create the parts whose size depends on the network (a discriminator
        of ``n_features`` inputs), seeded by the estimator; returns the loss.
        Nothing by default."""
        return self

    def extra_repr(self):
        """The arguments that differ from their defaults, as scikit-learn shows."""
        return ", ".join(f"{name}={value!r}" for name, value in self.changed_params().items())


class FunctionLoss(AdaptationLoss):
    """A plain callable (or an ``nn.Module`` that is not an
    :class:`AdaptationLoss`) as an adaptation loss: ``forward`` calls it with
    the four tensors. A module's parameters train with the network; the
    callable gets neither ``build`` nor ``progress`` (subclass
    :class:`AdaptationLoss` for those).

    Parameters
    ----------
    function : callable
        ``function(fs, ls, ft, lt) -> scalar``.
    """

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, features_source, logits_source, features_target, logits_target):
        return self.function(features_source, logits_source, features_target,
                             logits_target)


class DomainDiscriminator(nn.Sequential):
    """Two hidden layers with BatchNorm and ReLU, one logit out (source = 1)."""

    def __init__(self, in_features, hidden_size=1024):
        super().__init__(
            nn.Linear(in_features, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )


def _hidden(hidden_size, in_features):
    if hidden_size == "auto":
        return int(min(max(in_features, 64), 1024))
    return int(hidden_size)


def _domain_labels(n_source, n_target, device):
    return torch.cat([torch.ones(n_source, device=device),
                      torch.zeros(n_target, device=device)])


class DANNLoss(AdaptationLoss):
    """Domain-adversarial training (Ganin et al., JMLR 2016).

    A discriminator learns to tell source features from target features through
    a gradient-reversal layer, so the feature extractor learns to fool it. The
    reversal coefficient follows the paper's schedule
    ``max_coefficient * (2 / (1 + exp(-gamma * progress)) - 1)``.

    Parameters
    ----------
    hidden_size : int or "auto", default=1024
        Width of the discriminator's two hidden layers, 1024 as in the
        Transfer-Learning-Library, also for small networks: on MNIST -> MNIST-M
        with the 100 features of the DANN paper's LeNet, a discriminator of
        width 1024 adapted markedly better than one as wide as the features
        (see ``benchmarks/RESULTS.md``).
        ``"auto"`` is the feature width clipped to [64, 1024], cheaper when the
        discriminator would cost more than the network.
    gamma : float, default=10.0
    max_coefficient : float, default=1.0
    """

    _parameter_constraints = {"hidden_size": _HIDDEN_SIZE, "gamma": _NON_NEGATIVE,
                              "max_coefficient": _NON_NEGATIVE}

    def __init__(self, hidden_size=1024, gamma=10.0, max_coefficient=1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.gamma = gamma
        self.max_coefficient = max_coefficient
        self.discriminator = None


    def build(self, n_features, n_classes):
        self.discriminator = DomainDiscriminator(n_features,
                                                 _hidden(self.hidden_size, n_features))
        return self

    @property
    def coefficient(self):
        return self.max_coefficient * functional.dann_coefficient(self.progress, self.gamma)

    def forward(self, features_source, logits_source, features_target, logits_target):
        features = torch.cat([features_source, features_target])
        domain_logits = self.discriminator(functional.reverse_gradient(features, self.coefficient))
        labels = _domain_labels(len(features_source), len(features_target), features.device)
        return F.binary_cross_entropy_with_logits(domain_logits.squeeze(1).float(), labels)


class CDANLoss(AdaptationLoss):
    """Conditional domain-adversarial training with entropy conditioning,
    CDAN+E (Long et al., NeurIPS 2018).

    The discriminator sees the multilinear map of features and (detached)
    predictions ``f ⊗ softmax(logits)``, or its randomised version of
    ``randomized_dim`` dimensions when ``n_features * n_classes`` exceeds that.
    Samples with confident predictions weigh more: ``1 + exp(-entropy)``,
    normalised within each domain.

    Parameters
    ----------
    hidden_size : int or "auto", default=1024
        As in :class:`DANNLoss` (``"auto"``: the feature width clipped to
        [64, 1024], not the width of the multilinear map).
    gamma, max_coefficient : float
        Schedule of the gradient reversal, as in :class:`DANNLoss`.
    randomized_dim : int, default=1024
    entropy_conditioning : bool, default=True
    """

    needs_classes = True
    _parameter_constraints = {"hidden_size": _HIDDEN_SIZE, "gamma": _NON_NEGATIVE,
                              "max_coefficient": _NON_NEGATIVE,
                              "randomized_dim": [Interval(Integral, 1, None, closed="left")],
                              "entropy_conditioning": ["boolean"]}

    def __init__(self, hidden_size=1024, gamma=10.0, max_coefficient=1.0,
                 randomized_dim=1024, entropy_conditioning=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.gamma = gamma
        self.max_coefficient = max_coefficient
        self.randomized_dim = randomized_dim
        self.entropy_conditioning = entropy_conditioning
        self.discriminator = None
        self.randomized = False


    def build(self, n_features, n_classes):
        self.randomized = n_features * n_classes > self.randomized_dim
        if self.randomized:
            # Fixed random projections, saved with the module (buffers).
            self.register_buffer("random_features",
                                 torch.randn(n_features, self.randomized_dim))
            self.register_buffer("random_classes",
                                 torch.randn(n_classes, self.randomized_dim))
            in_features = self.randomized_dim
        else:
            in_features = n_features * n_classes
        self.discriminator = DomainDiscriminator(in_features,
                                                 _hidden(self.hidden_size, n_features))
        return self

    def _multilinear(self, features, probabilities):
        if self.randomized:
            return ((features @ self.random_features) * (probabilities @ self.random_classes)
                    / self.randomized_dim ** 0.5)
        return (probabilities.unsqueeze(2) * features.unsqueeze(1)).flatten(1)

    def forward(self, features_source, logits_source, features_target, logits_target):
        n_source = len(features_source)
        features = torch.cat([features_source, features_target])
        probabilities = F.softmax(torch.cat([logits_source, logits_target]), dim=1).detach()
        coefficient = self.max_coefficient * functional.dann_coefficient(self.progress, self.gamma)
        joint = self._multilinear(functional.reverse_gradient(features, coefficient), probabilities)
        domain_logits = self.discriminator(joint).squeeze(1).float()
        labels = _domain_labels(n_source, len(features_target), features.device)
        losses = F.binary_cross_entropy_with_logits(domain_logits, labels, reduction="none")
        if not self.entropy_conditioning:
            return losses.mean()
        weights = 1.0 + torch.exp(-functional.entropy(probabilities))
        source_w, target_w = weights[:n_source], weights[n_source:]
        return 0.5 * ((losses[:n_source] * source_w).sum() / source_w.sum()
                      + (losses[n_source:] * target_w).sum() / target_w.sum())


class CORALLoss(AdaptationLoss):
    """Deep CORAL (Sun & Saenko, ECCV workshops 2016): align the second-order
    statistics (covariances) of source and target features."""

    def forward(self, features_source, logits_source, features_target, logits_target):
        return functional.coral_loss(features_source, features_target)


class MMDLoss(AdaptationLoss):
    """Multi-kernel MMD between source and target features (DAN; Long et al.,
    ICML 2015).

    Parameters
    ----------
    kernel_mul : float, default=2.0
        Ratio between the bandwidths of consecutive Gaussian kernels.
    kernel_num : int, default=5
    warmup : bool, default=True
        Scale the loss by DANN's schedule ``2 / (1 + exp(-10 p)) - 1`` over
        training progress ``p``. All-zero features are a perfect MMD minimum: on a
        network trained from scratch the full loss from the first step can kill
        every ReLU of the feature layer before the classifier has formed
        (seen on digits -> digits-M: accuracy at chance); the warm-up lets the
        supervised loss shape the features first.
    """

    _parameter_constraints = {"kernel_mul": _POSITIVE,
                              "kernel_num": [Interval(Integral, 1, None, closed="left")],
                              "warmup": ["boolean"]}

    def __init__(self, kernel_mul=2.0, kernel_num=5, warmup=True):
        super().__init__()
        self.kernel_mul = kernel_mul
        self.kernel_num = kernel_num
        self.warmup = warmup


    def forward(self, features_source, logits_source, features_target, logits_target):
        loss = functional.mmd_loss(features_source, features_target, kernel_mul=self.kernel_mul,
                        kernel_num=self.kernel_num)
        if self.warmup:
            loss = loss * functional.dann_coefficient(self.progress)
        return loss


class MCCLoss(AdaptationLoss):
    """Minimum class confusion on target predictions (Jin et al., ECCV 2020).

    Parameters
    ----------
    temperature : float, default=2.5
    """

    _parameter_constraints = {"temperature": _POSITIVE}
    needs_classes = True

    def __init__(self, temperature=2.5):
        super().__init__()
        self.temperature = temperature


    def forward(self, features_source, logits_source, features_target, logits_target):
        return functional.mcc_loss(logits_target, temperature=self.temperature)

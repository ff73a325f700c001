"""VADA and DIRT-T (Shu, Bui, Narui & Ermon, "A DIRT-T Approach to Unsupervised
Domain Adaptation", ICLR 2018).

VADA adds two terms to domain-adversarial training (DANN): the conditional
entropy of the target predictions (the decision boundary should avoid dense
target regions, the cluster assumption), and virtual adversarial training (VAT;
Miyato et al., 2018): predictions should not change under the small input
perturbation that changes them most. VAT needs the network and the inputs, so
VADA brings its own training step (:class:`VADAStep`). DIRT-T then refines the
VADA model on the target alone: conditional entropy and VAT on target, and a
KL term that keeps each update close to a teacher (the model at the start of
the refinement).
"""

import copy
from numbers import Real

import torch
import torch.nn.functional as F

from ..training import DomainAdaptationStep
from . import _functional as functional
from .._sklearn_compat import Interval
from ._losses import _NON_NEGATIVE, _POSITIVE, DANNLoss


def conditional_entropy(logits):
    """Mean entropy of the predicted class distributions."""
    return functional.entropy(F.softmax(logits.float(), dim=1)).mean()


def _kl_logits(reference, logits):
    """KL(softmax(reference) || softmax(logits)), mean over rows; ``reference``
    is treated as fixed."""
    p = F.softmax(reference.detach().float(), dim=1)
    return (p * (F.log_softmax(reference.detach().float(), dim=1)
                 - F.log_softmax(logits.float(), dim=1))).sum(1).mean()


def _unit(d):
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (d.dim() - 1))


def vat_loss(net, inputs, logits=None, *, radius=1.0, xi=1e-6):
    """Virtual adversarial loss: KL between the predictions at ``inputs`` and at
    ``inputs + r``, where ``r`` (of L2 norm ``radius`` per sample) is the
    direction of steepest change found by one power iteration.

    ``logits`` (the reference predictions, treated as fixed) must come from a
    forward pass of ``inputs`` alone: with BatchNorm in training mode, logits of
    a joint source + target forward are normalised with other statistics than
    the perturbed passes, so the KL would measure that mismatch rather than the
    perturbation. None (the default) runs that pass, without gradients.
    """
    inputs = inputs.detach()
    if logits is None:
        with torch.no_grad():
            logits = net(inputs)
    with torch.enable_grad():
        d = (xi * _unit(torch.randn_like(inputs))).requires_grad_(True)
        divergence = _kl_logits(logits, net(inputs + d))
        (grad,) = torch.autograd.grad(divergence, d)
    r = radius * _unit(grad.detach())
    return _kl_logits(logits, net(inputs + r))


class VADAStep(DomainAdaptationStep):
    """The step of :class:`VADALoss`: the domain-adaptation step plus VAT on the
    source and target batches, and DIRT-T's refinement at the end of the fit."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self._teacher = None
        self._refinement = None, 0  # the epoch's sum of refinement losses, steps

    def epoch_metrics(self):
        """The domain-adaptation step's parts, and ``refinement_loss``, the mean
        loss of DIRT-T's refinement steps of the epoch (target entropy, VAT and
        the teacher's KL, no supervised part): those epochs' ``train_loss``."""
        metrics = super().epoch_metrics()
        total, steps = self._refinement
        if steps:
            metrics["refinement_loss"] = float(total) / steps
        self._refinement = None, 0
        return metrics

    def loss(self, batch):
        (inputs, targets, sample_weight), (target_inputs, *_), progress = batch
        loss_module = self.adaptation
        loss_module.progress = progress
        if loss_module.refining:
            return self._refinement_loss(target_inputs)
        total = super().loss(batch)
        # VAT's reference predictions come from a forward pass of each domain
        # alone, as its perturbed passes are (BatchNorm sees one domain in each).
        if loss_module.vat_source:
            total = total + self.trade_off * loss_module.vat_source * vat_loss(
                self.net, inputs, radius=loss_module.radius)
        if loss_module.vat_target:
            total = total + self.trade_off * loss_module.vat_target * vat_loss(
                self.net, target_inputs, radius=loss_module.radius)
        return total

    def _refinement_loss(self, target_inputs):
        if self._teacher is None:
            self._teacher = copy.deepcopy(self.net).eval()
            for parameter in self._teacher.parameters():
                parameter.requires_grad_(False)
        loss_module = self.adaptation
        logits = self.net(target_inputs).float()
        with torch.no_grad():
            teacher_logits = self._teacher(target_inputs).float()
        loss = (loss_module.entropy * conditional_entropy(logits)
                + loss_module.vat_target * vat_loss(self.net, target_inputs, logits,
                                                    radius=loss_module.radius)
                + loss_module.teacher_weight * _kl_logits(teacher_logits, logits))
        loss = self.trade_off * loss
        total, steps = self._refinement
        part = loss.detach()  # summed on the device: no host sync per step
        self._refinement = (part if total is None else total + part), steps + 1
        return loss


class VADALoss(DANNLoss):
    """VADA: DANN plus conditional entropy on target and VAT on both domains.

    ``forward(fs, ls, ft, lt)`` returns ``domain * DANN + entropy * H(target)``;
    the VAT terms are added by :class:`VADAStep` with weights ``vat_source`` and
    ``vat_target``. With ``refine > 0`` the last ``refine`` share of the fit is
    DIRT-T: target conditional entropy and VAT, plus ``teacher_weight`` times the
    KL to the teacher, without the source loss.

    The default weights are the paper's for MNIST -> MNIST-M
    (``lambda_s = 0, lambda_t = 1e-2, beta = 1e-2``) but for the domain term,
    at full weight (``domain=1``) as ``"dann"`` has it: at the paper's
    ``lambda_d = 1e-2`` a LeNet trained from scratch for 30 epochs did not
    adapt on MNIST -> MNIST-M (no better than source only), ``domain=1``
    did, and every weight at 1 did not (see ``benchmarks/RESULTS.md``).
    With ``vat_source=0`` VAT
    costs three extra forward passes (one without gradients: the reference)
    and one backward pass per target batch.

    Parameters
    ----------
    domain : float, default=1.0
        Weight of the domain-adversarial term (DANN's schedule applies); the
        paper's is 0.01.
    entropy : float, default=0.01
        Weight of the target conditional entropy.
    vat_source : float, default=0.0
        Weight of VAT on the source batch.
    vat_target : float, default=0.01
        Weight of VAT on the target batch.
    radius : float, default=1.0
        L2 norm of VAT's perturbation, in the network's (normalised) input space.
    refine : float, default=0.0
        Share of the fit given to DIRT-T refinement (``method="dirt-t"``: 0.5).
    teacher_weight : float, default=0.01
        DIRT-T's weight of the KL to the teacher (beta); the refinement loss is
        ``entropy * H + vat_target * VAT + teacher_weight * KL`` on target.
    hidden_size, gamma, max_coefficient
        The discriminator and reversal schedule, as in :class:`DANNLoss`.
    """

    training_step = VADAStep
    #: VAT perturbs the network's input in its own space: pixels or flat
    #: features, not token ids.
    modalities = ("image", "tabular")
    needs_classes = True
    _parameter_constraints = {
        **DANNLoss._parameter_constraints,
        **{name: _NON_NEGATIVE for name in ("domain", "entropy", "vat_source",
                                            "vat_target", "teacher_weight")},
        "radius": _POSITIVE,
        "refine": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, domain=1.0, entropy=0.01, vat_source=0.0, vat_target=0.01,
                 radius=1.0, refine=0.0, teacher_weight=0.01, hidden_size=1024, gamma=10.0,
                 max_coefficient=1.0):
        super().__init__(hidden_size=hidden_size, gamma=gamma,
                         max_coefficient=max_coefficient)
        self.domain = domain
        self.entropy = entropy
        self.vat_source = vat_source
        self.vat_target = vat_target
        self.radius = radius
        self.refine = refine
        self.teacher_weight = teacher_weight

    @property
    def refining(self):
        """Whether the fit is in its DIRT-T part."""
        return self.refine > 0 and self.progress >= 1.0 - self.refine

    def forward(self, features_source, logits_source, features_target, logits_target):
        loss = self.entropy * conditional_entropy(logits_target)
        if self.domain:
            loss = loss + self.domain * super().forward(
                features_source, logits_source, features_target, logits_target)
        return loss


class DIRTTLoss(VADALoss):
    """VADA for the first half of the fit, DIRT-T refinement for the second
    (``VADALoss(refine=0.5)``)."""

    def __init__(self, domain=1.0, entropy=0.01, vat_source=0.0, vat_target=0.01,
                 radius=1.0, refine=0.5, teacher_weight=0.01, hidden_size=1024,
                 gamma=10.0, max_coefficient=1.0):
        super().__init__(domain=domain, entropy=entropy, vat_source=vat_source,
                         vat_target=vat_target, radius=radius, refine=refine,
                         teacher_weight=teacher_weight, hidden_size=hidden_size,
                         gamma=gamma, max_coefficient=max_coefficient)

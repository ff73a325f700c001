"""sktransfer.adaptation: gradient reversal, the DANN schedule and the DANN,
CDAN, CORAL, MMD and MCC losses, tested directly on tensors; every loss's
parameter checks, run when a fit starts."""

import numpy as np
import pytest
import torch

from sktransfer import DomainAdaptClassifier
from sktransfer.adaptation import (
    AdaptationLoss,
    CDANLoss,
    coral_loss,
    DANNLoss,
    EpochSelfTrainingLoss,
    mcc_loss,
    MCCLoss,
    METHODS,
    mmd_loss,
    MMDLoss,
    reverse_gradient,
    SelfTrainingLoss,
    VADALoss,
)
from sktransfer.adaptation._functional import dann_coefficient
from sktransfer.adaptation._methods import resolve_method
from sktransfer.training import StrongAugment

from bar_shift import SmallCNN


# -- the losses -----------------------------------------------------------------
def test_gradient_reversal():
    x = torch.ones(3, requires_grad=True)
    (reverse_gradient(x, 0.5) * 2).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), -1.0))


def test_dann_schedule():
    assert dann_coefficient(0.0) == 0.0
    assert dann_coefficient(0.5) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert dann_coefficient(1.0) > 0.9999


def test_dann_loss_reverses_into_the_features():
    torch.manual_seed(0)
    loss = DANNLoss(hidden_size=8).build(4, 3)
    loss.progress = 1.0
    features = torch.randn(10, 4, requires_grad=True)
    value = loss(features[:5], torch.randn(5, 3), features[5:], torch.randn(5, 3))
    value.backward()
    disc_grad = loss.discriminator[0].weight.grad
    assert value.item() > 0 and disc_grad is not None
    # the features get the opposite of the gradient the discriminator's loss
    # would give them without reversal
    reference = DANNLoss(hidden_size=8, max_coefficient=-1.0).build(4, 3)
    reference.load_state_dict(loss.state_dict())
    reference.progress = 1.0
    f2 = features.detach().clone().requires_grad_(True)
    reference(f2[:5], None, f2[5:], None).backward()
    torch.testing.assert_close(features.grad, -f2.grad)


def test_cdan_randomized_when_the_joint_map_is_large():
    small = CDANLoss(hidden_size=8).build(4, 3)
    large = CDANLoss(hidden_size=8, randomized_dim=16).build(8, 3)
    assert not small.randomized and large.randomized
    fs, ft = torch.randn(6, 8), torch.randn(6, 8)
    value = large(fs, torch.randn(6, 3), ft, torch.randn(6, 3))
    assert torch.isfinite(value)


@pytest.mark.parametrize("loss_class", [DANNLoss, CDANLoss])
@pytest.mark.parametrize("n_features, n_classes, width", [
    (100, 10, 100),     # a small network: as wide as its features
    (16, 3, 64),        # never narrower than 64
    (1280, 10, 1024),   # an ImageNet backbone: 1024, as in the TLL
])
def test_auto_discriminator_width_follows_the_features(loss_class, n_features,
                                                        n_classes, width):
    loss = loss_class(hidden_size="auto").build(n_features, n_classes)
    assert loss.discriminator[0].out_features == width


@pytest.mark.parametrize("loss_class", [DANNLoss, CDANLoss, VADALoss])
@pytest.mark.parametrize("n_features", [16, 100, 1280])
def test_default_discriminator_is_1024_wide(loss_class, n_features):
    # the TLL's width, whatever the features: width 100 on the LeNet's 100
    # features cost DANN 0.21 of MNIST-M accuracy (0.69 against 0.91, seed 0)
    loss = loss_class().build(n_features, 10)
    assert loss.discriminator[0].out_features == 1024
    assert loss.discriminator[3].in_features == 1024


def test_alignment_losses_are_small_for_equal_domains_and_grow_with_the_shift():
    torch.manual_seed(0)
    source = torch.randn(64, 5)
    same = torch.randn(64, 5)
    moved = torch.randn(64, 5) * 3 + 2
    assert coral_loss(source, same) < coral_loss(source, moved)
    assert mmd_loss(source, same) < mmd_loss(source, moved)
    assert mmd_loss(source, source).abs() < 1e-5
    assert coral_loss(source, source) == 0


def test_mmd_gradient_is_finite_for_identical_features():
    # ReLU features are often identical (e.g. all zero); the loss must not NaN.
    features = torch.zeros(8, 5, requires_grad=True)
    mmd_loss(features[:4], features[4:]).backward()
    assert torch.isfinite(features.grad).all()


def test_mmd_warmup_follows_the_dann_schedule():
    from sktransfer.adaptation import MMDLoss

    torch.manual_seed(0)
    source, target = torch.randn(16, 3), torch.randn(16, 3) + 2
    plain = MMDLoss(warmup=False)
    warm = MMDLoss()
    for progress in (0.0, 0.5):
        plain.progress = warm.progress = progress
        expected = plain(source, None, target, None) * dann_coefficient(progress)
        torch.testing.assert_close(warm(source, None, target, None), expected)
    assert warm(source, None, target, None) > 0


def test_mcc_prefers_confident_distinct_predictions():
    confident = torch.eye(4).repeat(4, 1) * 10
    confused = torch.zeros(16, 4)
    assert mcc_loss(confident) < mcc_loss(confused)


# -- parameter checks ------------------------------------------------------------
@pytest.mark.parametrize("loss, name", [
    (EpochSelfTrainingLoss(threshold=1.5), "threshold"),
    (EpochSelfTrainingLoss(momentum=1.0), "momentum"),
    (EpochSelfTrainingLoss(refresh_every=0), "refresh_every"),
    (EpochSelfTrainingLoss(refresh_every="sometimes"), "refresh_every"),
    (EpochSelfTrainingLoss(strong="strong"), "strong"),
    (SelfTrainingLoss(threshold=-0.1), "threshold"),
    (SelfTrainingLoss(weak=3), "weak"),
    (MCCLoss(temperature=0.0), "temperature"),
    (DANNLoss(hidden_size=0), "hidden_size"),
    (CDANLoss(randomized_dim=0), "randomized_dim"),
    (MMDLoss(kernel_num=0), "kernel_num"),
    (VADALoss(refine=1.5), "refine"),
    (EpochSelfTrainingLoss(strong=StrongAugment), "strong"),
    (VADALoss(radius=0.0), "radius"),
    (VADALoss(entropy=-1.0), "entropy"),
])
def test_a_loss_parameter_out_of_range_is_refused_at_fit_before_training(loss, name,
                                                                          monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("fit went on to read the data")

    monkeypatch.setattr(DomainAdaptClassifier, "_fit_data", no_training)
    X = np.zeros((8, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 1, 0, 1, -1, -1, -1, -1])
    clf = DomainAdaptClassifier(model=SmallCNN(), weights=None, method=loss, epochs=1)
    with pytest.raises(ValueError, match=f"'{name}' parameter of {type(loss).__name__}"):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"source_only"}))
def test_every_method_checks_each_of_its_parameters_and_accepts_its_defaults(method):
    import inspect

    loss = resolve_method(method)
    loss.check_parameters()
    parameters = set()   # DIRTTLoss passes **kwargs on to VADALoss: every __init__
    for cls in type(loss).__mro__:
        if "__init__" in vars(cls) and issubclass(cls, AdaptationLoss):
            parameters |= set(inspect.signature(cls.__init__).parameters)
    assert set(loss._parameter_constraints) == parameters - {"self", "kwargs"}


def test_numpy_scalars_and_the_full_refinement_are_accepted():
    EpochSelfTrainingLoss(threshold=np.float32(0.8), refresh_every=np.int64(2)).check_parameters()
    assert EpochSelfTrainingLoss().refresh_every == "auto"
    EpochSelfTrainingLoss(refresh_every="auto").check_parameters()
    MCCLoss(temperature=np.float64(1.5)).check_parameters()
    VADALoss(refine=1.0).check_parameters()   # DIRT-T only: after a warm start from VADA


def test_losses_have_scikit_learn_parameters_and_repr():
    """get_params/set_params read the constructor's arguments; the repr shows the
    changed ones (so GridSearchCV's cv_results_ tell candidates apart), and an
    estimator reaches them as method__<name>."""
    from sklearn.base import clone

    from sktransfer import DomainAdaptClassifier
    from sktransfer.adaptation import CDANLoss, EpochSelfTrainingLoss, VADALoss

    loss = CDANLoss(max_coefficient=0.5)
    assert loss.get_params() == {"entropy_conditioning": True, "gamma": 10.0,
                                 "hidden_size": 1024, "max_coefficient": 0.5,
                                 "randomized_dim": 1024}
    assert repr(loss) == "CDANLoss(max_coefficient=0.5)"
    assert repr(VADALoss(teacher_weight=0.1, gamma=3.0)) == "VADALoss(gamma=3.0, teacher_weight=0.1)"
    assert repr(EpochSelfTrainingLoss(momentum=0.5)) == "EpochSelfTrainingLoss(momentum=0.5)"
    with pytest.raises(ValueError, match="Invalid parameter 'coefficient' for CDANLoss"):
        loss.set_params(coefficient=1.0)
    clf = DomainAdaptClassifier(method=CDANLoss())
    assert clf.get_params()["method__gamma"] == 10.0
    copy = clone(clf).set_params(method__gamma=2.0)
    assert copy.method.gamma == 2.0 and clf.method.gamma == 10.0  # clone copied it


@pytest.mark.parametrize("returned, shown", [
    (lambda fs: fs.mean(0), r"a tensor of shape \(256,\)"),  # the hidden layer
    (lambda fs: None, "None"),
])
def test_an_adaptation_loss_that_is_not_a_scalar_is_named(returned, shown):
    def gap(fs, ls, ft, lt):
        return returned(fs)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 20), -np.ones(20, dtype=int)]
    clf = DomainAdaptClassifier(model=None, method=gap, epochs=1, device="cpu")
    with pytest.raises(TypeError, match=f"method=FunctionLoss.*gap.* returned {shown}: "
                                        "an adaptation loss returns a scalar"):
        clf.fit(X, y)


def test_a_training_step_that_is_not_a_domain_adaptation_step_is_refused(monkeypatch):
    from sktransfer.adaptation import AdaptationLoss
    from sktransfer.training import TrainingStep

    class Gap(AdaptationLoss):
        training_step = TrainingStep

        def forward(self, fs, ls, ft, lt):
            return (fs.mean(0) - ft.mean(0)).pow(2).sum()

    import sktransfer.training._loop as core

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the method was checked")

    monkeypatch.setattr(core.Trainer, "fit", no_training)
    X = np.zeros((8, 3), dtype=np.float32)
    y = np.array([0, 1, 0, 1, -1, -1, -1, -1])
    with pytest.raises(TypeError, match="Gap.training_step = .*TrainingStep.* is not a "
                                         "subclass of sktransfer.training.DomainAdaptationStep"):
        DomainAdaptClassifier(model=None, method=Gap(), device="cpu").fit(X, y)


def test_loss_parameters_that_are_modules_are_read_and_cloned():
    """A transform given as strong= lives among the module's children: get_params
    left it out, and clone dropped it (strong=None)."""
    from sklearn.base import clone
    from torchvision.transforms import v2

    from sktransfer.adaptation import DIRTTLoss, SelfTrainingLoss

    loss = SelfTrainingLoss(strong=v2.RandomHorizontalFlip(p=0.25))
    assert isinstance(loss.get_params()["strong"], v2.RandomHorizontalFlip)
    assert clone(loss).strong.p == 0.25
    assert repr(DIRTTLoss(domain=0.01, entropy=0.5)) == "DIRTTLoss(domain=0.01, entropy=0.5)"
    clf = DomainAdaptClassifier(method=DIRTTLoss()).set_params(method__domain=0.1)
    assert clf.method.domain == 0.1

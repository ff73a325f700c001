"""scheduler=: the named schedules and any torch.optim.lr_scheduler class."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from sktransfer import DomainAdaptClassifier, FineTuneClassifier
from sktransfer.training import Trainer
from sktransfer.training._setup import (
    build_scheduler,
    check_scheduler,
    scheduler_interval,
    SchedulerSpec,
)

LR = 1e-2
N_BATCHES = 4  # 120 samples in batches of 32


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    return StandardScaler().fit_transform(X), y


def mlp(**params):
    defaults = dict(model=None, epochs=4, lr=LR, batch_size=32, device="cpu",
                    random_state=0)
    defaults.update(params)
    return FineTuneClassifier(**defaults)


def lrs(clf):
    return [record["lr"] for record in clf.history_]


def test_a_per_epoch_schedule_steps_once_an_epoch(blobs):
    clf = mlp(epochs=5, scheduler=(StepLR, {"step_size": 2, "gamma": 0.1})).fit(*blobs)
    np.testing.assert_allclose(lrs(clf), [LR, LR, LR * 0.1, LR * 0.1, LR * 0.01])
    assert clf.score(*blobs) > 0.8


def test_the_interval_can_be_given(blobs):
    per_epoch = mlp(epochs=3, scheduler=(ExponentialLR, {"gamma": 0.5})).fit(*blobs)
    per_batch = mlp(epochs=3, scheduler=(ExponentialLR, {"gamma": 0.5}, "batch")).fit(*blobs)
    np.testing.assert_allclose(lrs(per_epoch), [LR, LR * 0.5, LR * 0.25])
    np.testing.assert_allclose(lrs(per_batch),
                               [LR, LR * 0.5 ** N_BATCHES, LR * 0.5 ** (2 * N_BATCHES)])


def test_one_cycle_steps_per_batch_and_fills_in_its_length(blobs):
    clf = mlp(epochs=4, scheduler=OneCycleLR).fit(*blobs)  # a bare class: no kwargs
    assert lrs(clf)[0] == pytest.approx(LR / 25)  # OneCycleLR's div_factor
    assert lrs(clf)[2] > lrs(clf)[3]  # annealing over the fit's 16 steps
    clf = mlp(epochs=2, scheduler=(CyclicLR, {"base_lr": LR / 10, "max_lr": LR,
                                              "step_size_up": 2})).fit(*blobs)
    # 4 steps an epoch over a cycle of 4: back at base_lr as epoch 2 starts
    np.testing.assert_allclose(lrs(clf), [LR / 10, LR / 10])


@pytest.mark.parametrize("scheduler", [
    (OneCycleLR, {"pct_start": 0.4}, "epoch"),              # total_steps: the epochs
    (OneCycleLR, {"pct_start": 0.4, "epochs": 5}, "epoch"),  # steps_per_epoch: 1
])
def test_one_cycle_stepped_per_epoch_spans_the_epochs(blobs, scheduler):
    clf = mlp(epochs=5, scheduler=scheduler).fit(*blobs)
    # 5 steps, the peak after 0.4 * 5 - 1 = 1 of them: max_lr as epoch 2 starts.
    assert lrs(clf)[0] == pytest.approx(LR / 25)
    assert lrs(clf)[1] == pytest.approx(LR, rel=1e-6)
    assert lrs(clf)[-1] < lrs(clf)[0]  # annealed to the end of the fit, not cut off


def test_one_cycle_given_epochs_fills_in_the_batches_of_an_epoch(blobs):
    # 4 epochs of 4 batches, the peak after 0.3125 * 16 - 1 = 4 steps: as epoch 2
    # starts.
    kwargs = {"pct_start": 0.3125, "epochs": 4}
    clf = mlp(epochs=4, scheduler=(OneCycleLR, kwargs)).fit(*blobs)
    assert lrs(clf)[1] == pytest.approx(LR, rel=1e-6)
    assert lrs(clf)[3] < lrs(clf)[2] < lrs(clf)[1]
    assert clf.scheduler[1] == {"pct_start": 0.3125, "epochs": 4}  # never changed


def test_named_cosine_is_the_torch_class_stepped_per_batch(blobs):
    epochs = 5
    named = mlp(epochs=epochs, scheduler="cosine").fit(*blobs)
    torch_form = mlp(epochs=epochs, scheduler=(
        CosineAnnealingLR, {"T_max": epochs * N_BATCHES}, "batch")).fit(*blobs)
    assert lrs(named) == lrs(torch_form)
    np.testing.assert_array_equal(named.predict_proba(blobs[0]),
                                  torch_form.predict_proba(blobs[0]))


def test_reduce_on_plateau_reduces_only_on_a_plateau(blobs):
    plateau = (ReduceLROnPlateau, {"patience": 0, "factor": 0.5})
    # A rate too small to move the loss: every epoch after the first is a
    # plateau. (Equal batches: the epoch's mean loss does not hang on the order.)
    stuck = mlp(lr=1e-7, batch_size=40, optimizer="sgd", scheduler=plateau).fit(*blobs)
    np.testing.assert_allclose(lrs(stuck), [1e-7, 1e-7, 5e-8, 2.5e-8])
    learning = mlp(lr=LR, batch_size=40, optimizer="sgd", scheduler=plateau).fit(*blobs)
    assert lrs(learning) == [LR] * 4


class RecordingPlateau(ReduceLROnPlateau):
    seen = []

    def step(self, metrics):
        type(self).seen.append(metrics)
        super().step(metrics)


@pytest.mark.parametrize("early_stopping, key", [(True, "valid_loss"),
                                                  (False, "train_loss")])
def test_reduce_on_plateau_follows_the_validation_loss(blobs, early_stopping, key):
    RecordingPlateau.seen = []
    clf = mlp(epochs=3, scheduler=RecordingPlateau, early_stopping=early_stopping,
              patience=10).fit(*blobs)
    assert RecordingPlateau.seen == [record[key] for record in clf.history_]


def test_domain_adaptation_takes_a_torch_schedule(blobs):
    X, y = blobs
    y = y.copy()
    y[80:] = -1
    clf = DomainAdaptClassifier(method="coral", model=None, epochs=3, lr=LR,
                                scheduler=(StepLR, {"step_size": 1, "gamma": 0.5}),
                                device="cpu", random_state=0).fit(X, y)
    np.testing.assert_allclose(lrs(clf), [LR, LR / 2, LR / 4])


def test_partial_fit_keeps_the_rate_constant(blobs):
    clf = mlp(scheduler=(StepLR, {"step_size": 1, "gamma": 0.1}))
    for _ in range(2):
        clf.partial_fit(*blobs, classes=np.unique(blobs[1]))
    assert lrs(clf) == [LR, LR]


def test_a_torch_schedule_clones_and_is_never_changed(blobs):
    scheduler = (MultiStepLR, {"milestones": [1, 2], "gamma": 0.5})
    clf = mlp(epochs=3, scheduler=scheduler)
    copy = clone(clf)
    assert copy.get_params()["scheduler"] == scheduler
    copy.fit(*blobs)
    assert copy.get_params()["scheduler"] == scheduler
    assert copy.scheduler[1] == {"milestones": [1, 2], "gamma": 0.5}
    np.testing.assert_allclose(lrs(copy), [LR, LR / 2, LR / 4])
    assert clone(copy).get_params()["scheduler"] == scheduler


def test_the_named_schedules_step_per_batch():
    assert scheduler_interval("onecycle") == scheduler_interval("cosine") == "batch"
    assert scheduler_interval(None) is None
    assert check_scheduler(LinearLR) == SchedulerSpec(LinearLR, {}, "epoch")
    assert check_scheduler((OneCycleLR, {})).interval == "batch"
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert isinstance(build_scheduler("onecycle", optimizer, epochs=2, n_batches=4),
                      OneCycleLR)
    assert isinstance(build_scheduler("onecycle", optimizer, epochs=4, n_batches=1),
                      CosineAnnealingLR)  # too short for a warm-up
    per_epoch = build_scheduler((OneCycleLR, {}, "epoch"), optimizer, epochs=3,
                                n_batches=10)
    assert per_epoch.total_steps == 3


def test_the_trainer_refuses_an_unknown_interval():
    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler_interval"):
        Trainer(module, optimizer, device=torch.device("cpu"), scheduler_interval="step")


@pytest.mark.parametrize(
    "scheduler, match",
    [
        ("step", "scheduler"),
        (torch.optim.SGD, "not a torch.optim.lr_scheduler class"),
        ((dict, {}), "not a torch.optim.lr_scheduler class"),
        ((StepLR,), "tuple"),
        ((StepLR, {"step_size": 2}, "batch", "extra"), "tuple"),
        ((StepLR, [("step_size", 2)]), "dict"),
        ((StepLR, {"stepsize": 2}), "do not fit StepLR"),
        ((StepLR, {}), "do not fit StepLR.*step_size"),
        ((StepLR, {"step_size": 2, "optimizer": None}), "passes the optimizer"),
        ((StepLR, {"step_size": 2}, "step"), "interval"),
        ((ReduceLROnPlateau, {}, "batch"), "per batch"),
        ((SequentialLR, {"schedulers": [], "milestones": []}), "LambdaLR"),
        ((MultiStepLR, {"milestones": 3}), "MultiStepLR.*failed"),  # torch's own check
    ],
)
def test_bad_schedules_are_refused_before_training(blobs, scheduler, match, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started before the schedule was checked")

    monkeypatch.setattr(Trainer, "fit", no_training)
    with pytest.raises(ValueError, match=match):
        mlp(scheduler=scheduler).fit(*blobs)

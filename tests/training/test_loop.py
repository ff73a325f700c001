"""sktransfer.training.Trainer (training/_loop.py): the loop runs a TrainingStep
and nothing else."""

import pytest
import torch


def test_trainer_refuses_an_object_that_is_not_a_step():
    from sktransfer.training import Trainer

    module = torch.nn.Linear(2, 2)
    trainer = Trainer(module, torch.optim.SGD(module.parameters(), lr=0.1),
                      device=torch.device("cpu"))

    class DuckStep:  # has the methods, but not the contract
        def batches(self, epoch):
            return []

        def loss(self, batch):
            return torch.zeros(())

    with pytest.raises(TypeError, match="TrainingStep"):
        trainer.fit(DuckStep(), epochs=1, n_batches=1)


def test_a_fit_whose_weights_turn_nan_stops_with_an_error():
    """A NaN loss (here a custom adaptation loss) makes the weights NaN: the fit
    stops after that epoch with scikit-learn's kind of error instead of
    training on and predicting from NaN, and the estimator stays unfitted."""
    import numpy as np
    from sklearn.utils.validation import check_is_fitted
    from sklearn.exceptions import NotFittedError

    from sktransfer import DomainAdaptClassifier

    def nan_gap(fs, ls, ft, lt):
        return (fs.mean() - ft.mean()) * float("nan")

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 20), -np.ones(20, dtype=int)]
    clf = DomainAdaptClassifier(model=None, method=nan_gap, epochs=3, device="cpu")
    with pytest.raises(ValueError, match="training diverged: the weights are not finite "
                                         "after epoch 1"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)


def test_outputs_that_overflow_at_prediction_are_said():
    """Weights that stay finite (the fit's check passes) can overflow float32
    on large inputs, as after a fit at lr=1e8 on unscaled features: NaN
    probabilities were returned without a word (and read as certainty)."""
    import numpy as np
    import torch

    from sktransfer import DomainAdaptClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 20), -np.ones(20, dtype=int)]
    clf = DomainAdaptClassifier(model=None, epochs=1, device="cpu", random_state=0).fit(X, y)
    with torch.no_grad():
        for parameter in clf.module_.parameters():
            parameter.fill_(1e18)
    for method in ("predict_proba", "predict", "decision_function", "predict_log_proba"):
        with pytest.warns(UserWarning, match=rf"DomainAdaptClassifier.{method}: the "
                                             r"network's outputs are not finite \(NaN or "
                                             r"inf\) for 1 of the 3 samples, the first at "
                                             r"sample 1: .* Lower lr"):
            getattr(clf, method)(np.r_[X[:1] * 0, np.abs(X[:1]) * 1e4, X[:1] * 0])


def test_epoch_metrics_given_as_tensors_are_recorded_as_numbers():
    """A step's epoch_metrics returning a 0-d tensor kept the estimator from
    being saved safely ("history_ ... not a plain value")."""
    import io

    import numpy as np

    import sktransfer
    from sktransfer import DomainAdaptClassifier
    from sktransfer.adaptation import CORALLoss
    from sktransfer.training import DomainAdaptationStep

    class Step(DomainAdaptationStep):
        def epoch_metrics(self):
            return {**super().epoch_metrics(), "gap": torch.tensor(0.5),
                    "share": np.float32(0.25)}

    class Coral(CORALLoss):
        training_step = Step

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 20), -np.ones(20, dtype=int)]
    clf = DomainAdaptClassifier(model=None, method=Coral(), epochs=1, device="cpu").fit(X, y)
    record = clf.history_[-1]
    assert type(record["gap"]) is float and type(record["share"]) is float
    clf.set_params(method="coral")  # a loss of this test's module is not savable
    buffer = io.BytesIO()
    sktransfer.save(clf, buffer)
    buffer.seek(0)
    assert sktransfer.load(buffer).history_[-1]["gap"] == 0.5


def test_a_continued_fit_that_diverges_keeps_the_model_it_started_from():
    import numpy as np

    from sktransfer import DomainAdaptClassifier

    poison = {"on": False}

    def gap(fs, ls, ft, lt):
        value = (fs.mean() - ft.mean()) ** 2
        return value * float("nan") if poison["on"] else value

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 20), -np.ones(20, dtype=int)]
    clf = DomainAdaptClassifier(model=None, method=gap, epochs=2, device="cpu").fit(X, y)
    before = clf.predict_proba(X)
    poison["on"] = True
    with pytest.raises(ValueError, match="training diverged"):
        clf.set_params(warm_start=True).fit(X, y)
    assert len(clf.history_) == 2
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def _coral_with(step_class):
    from sktransfer.adaptation import CORALLoss

    class Coral(CORALLoss):
        training_step = step_class

    return Coral()


def _adaptation_data():
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 20), -np.ones(20, dtype=int)]
    return X, y


@pytest.mark.parametrize("metrics, error, match", [
    ({"gap": torch.ones(3)}, TypeError,
     r"Step.epoch_metrics\(\)\['gap'\] is a Tensor of shape \(3,\): a history record "
     "holds numbers"),
    ({"train_loss": 0.5}, ValueError, "'train_loss' is a key the loop writes"),
    ({"duration": 0.5}, ValueError, "'duration' is a key the loop writes"),
])
def test_epoch_metrics_that_a_record_cannot_hold_are_refused_naming_the_key(
        metrics, error, match):
    """A vector in a record crashed a Checkpoint's JSON after the first epoch
    (naming neither key nor step), and a loop key was overwritten silently."""
    from sktransfer import DomainAdaptClassifier
    from sktransfer.training import DomainAdaptationStep

    class Step(DomainAdaptationStep):
        def epoch_metrics(self):
            return {**super().epoch_metrics(), **metrics}

    with pytest.raises(error, match=match):
        DomainAdaptClassifier(model=None, method=_coral_with(Step), epochs=1,
                              device="cpu").fit(*_adaptation_data())


@pytest.mark.parametrize("returned, match", [
    (lambda loss: loss.expand(4), r"a tensor of shape \(4,\) and dtype torch.float32"),
    (lambda loss: (loss, loss), "a tuple"),
    (lambda loss: float(loss), "a float"),
])
def test_a_step_loss_that_is_not_one_float_tensor_is_refused_naming_the_step(
        returned, match):
    from sktransfer import DomainAdaptClassifier
    from sktransfer.training import DomainAdaptationStep

    class Step(DomainAdaptationStep):
        def loss(self, batch):
            return returned(super().loss(batch))

    with pytest.raises(TypeError, match=r"Step.loss\(batch\) returned " + match
                       + ": a step's loss is one float tensor of one element"):
        DomainAdaptClassifier(model=None, method=_coral_with(Step), epochs=1,
                              device="cpu").fit(*_adaptation_data())


def test_a_loss_of_one_element_in_any_shape_and_lists_in_epoch_metrics_are_taken():
    """What backward() takes, a (1,) loss (an adaptation loss of shape (1,) adds
    to the 0-d supervised loss), and what a record holds, lists of numbers."""
    import numpy as np
    from sktransfer import DomainAdaptClassifier
    from sktransfer.adaptation import CORALLoss
    from sktransfer.training import DomainAdaptationStep

    class Step(DomainAdaptationStep):
        def epoch_metrics(self):
            return {**super().epoch_metrics(), "per_class": (0.25, np.float64(0.75)),
                    "parts": {"a": 1, "b": None}}

    class Coral(CORALLoss):
        training_step = Step

        def forward(self, *parts):
            return super().forward(*parts).reshape(1)

    clf = DomainAdaptClassifier(model=None, method=Coral(), epochs=2, device="cpu")
    clf.fit(*_adaptation_data())
    record = clf.history_[-1]
    # a tuple is kept as the list a checkpoint's JSON gives back on resume
    assert record["per_class"] == [0.25, 0.75] and record["parts"] == {"a": 1, "b": None}
    assert isinstance(record["train_loss"], float)

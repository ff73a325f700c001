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

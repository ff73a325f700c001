"""sktransfer.training's callbacks (training/_callbacks.py): hook order, a user
callback stopping training, copies never changed, a failing or interrupted fit,
bad callbacks, EarlyStopping and the named default callbacks."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sktransfer.training import (Callback, Checkpoint, EarlyStopping, EpochLogger,
                                 MLflowLogger, TensorBoardLogger)
from sktransfer.training._callbacks import epoch_line, HOOKS

from failing_step import fail_in_second_epoch
from tiny_fits import InterruptAt, mlp


class Recorder(Callback):
    """Records every hook it sees, with the epoch and the history length."""

    def __init__(self):
        self.calls = []

    def on_fit_begin(self, state):
        self.calls.append(("on_fit_begin", state.epoch, len(state.history)))

    def on_epoch_begin(self, state):
        self.calls.append(("on_epoch_begin", state.epoch, len(state.history)))

    def on_batch_end(self, state, loss):
        assert loss.ndim == 0 and torch.isfinite(loss)
        self.calls.append(("on_batch_end", state.epoch, len(state.history)))

    def on_epoch_end(self, state):
        self.calls.append(("on_epoch_end", state.epoch, len(state.history)))

    def on_fit_end(self, state):
        self.calls.append(("on_fit_end", state.epoch, len(state.history)))


class RecordingOnly(Recorder):
    """Shares one list across copies, so a test sees what the fitted copy saw."""

    def __init__(self, calls):
        self.calls = calls

    def __deepcopy__(self, memo):
        return RecordingOnly(self.calls)


def test_hooks_are_called_in_order(blobs):
    X, y = blobs
    calls = []
    mlp(epochs=2, callbacks=[RecordingOnly(calls)]).fit(X, y)
    batches = -(-len(X) // 16)
    expected = [("on_fit_begin", 0, 0)]
    for epoch in range(2):
        expected.append(("on_epoch_begin", epoch, epoch))
        expected += [("on_batch_end", epoch, epoch)] * batches
        expected.append(("on_epoch_end", epoch + 1, epoch + 1))
    expected.append(("on_fit_end", 2, 2))
    assert calls == expected
    assert set(hook for hook, *_ in calls) == set(HOOKS)


class StopAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, state):
        if len(state.history) >= self.epochs:
            state.stop_training = True


def test_a_user_callback_stops_training(blobs):
    X, y = blobs
    clf = mlp(epochs=10, callbacks=[StopAfter(3)]).fit(X, y)
    assert len(clf.history_) == 3 and clf.n_iter_ == 3
    assert not clf.interrupted_
    assert clf.predict(X).shape == (len(X),)


def test_callbacks_are_copied_never_changed(blobs):
    X, y = blobs
    recorder = Recorder()
    clf = mlp(epochs=2, callbacks=[recorder]).fit(X, y)
    assert recorder.calls == []  # fit trained a copy
    assert clf.callbacks[0] is recorder
    cloned = clone(clf)
    assert cloned.callbacks[0] is not recorder
    assert isinstance(cloned.callbacks[0], Recorder)
    np.testing.assert_array_equal(cloned.fit(X, y).predict_proba(X), clf.predict_proba(X))


def test_callbacks_survive_joblib_and_grid_search(blobs, tmp_path):
    X, y = blobs
    clf = mlp(epochs=6, callbacks=[StopAfter(2)])
    joblib.dump(clf.fit(X, y), tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    assert isinstance(loaded.callbacks[0], StopAfter)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert len(clone(loaded).fit(X, y).history_) == 2
    grid = GridSearchCV(mlp(epochs=6, callbacks=[StopAfter(2)]), {"lr": [1e-3, 1e-2]},
                        cv=2, n_jobs=2).fit(X, y)
    assert len(grid.best_estimator_.history_) == 2
    assert grid.best_estimator_.callbacks[0].epochs == 2


class StateAtEnd(Callback):
    """Records what ``on_fit_end`` sees (shared by copies, like RecordingOnly)."""

    def __init__(self, seen):
        self.seen = seen

    def __deepcopy__(self, memo):
        return StateAtEnd(self.seen)

    def on_fit_end(self, state):
        self.seen.append((state.error, state.interrupted, len(state.history),
                          state.module.training))


class FailsAtEnd(Callback):
    def on_fit_end(self, state):
        raise ValueError("a callback that fails too")


def test_a_failing_fit_ends_the_callbacks_and_raises_its_error(blobs, monkeypatch):
    X, y = blobs
    fail_in_second_epoch(monkeypatch, batches_per_epoch=-(-len(X) // 16))
    calls, seen = [], []
    clf = mlp(epochs=3, callbacks=[RecordingOnly(calls), StateAtEnd(seen)])
    with pytest.raises(RuntimeError, match="genuine error") as raised:
        clf.fit(X, y)
    ((error, interrupted, finished, training),) = seen
    assert error is raised.value and not interrupted and finished == 1
    assert not training  # the module is put in eval mode first
    assert calls[-1] == ("on_fit_end", 1, 1)
    assert not hasattr(clf, "interrupted_")  # a failed fit sets no fitted attribute
    # A callback failing at on_fit_end does not hide the error of the fit.
    with pytest.warns(RuntimeWarning, match="FailsAtEnd.*a callback that fails too"):
        with pytest.raises(RuntimeError, match="genuine error"):
            mlp(epochs=3, callbacks=[FailsAtEnd(), StateAtEnd(seen)]).fit(X, y)
    assert len(seen) == 2  # the callbacks after it still ended


def test_a_finished_or_interrupted_fit_ends_with_no_error(blobs):
    X, y = blobs
    seen = []
    mlp(epochs=2, callbacks=[StateAtEnd(seen)]).fit(X, y)
    mlp(epochs=3, callbacks=[InterruptAt(epoch=1), StateAtEnd(seen)]).fit(X, y)
    assert seen == [(None, False, 2, False), (None, True, 1, False)]


@pytest.mark.parametrize("bad", ["progress", 3, [print], [Recorder]])
def test_callbacks_not_given_as_a_list_of_instances_are_refused(blobs, bad):
    X, y = blobs
    with pytest.raises((ValueError, TypeError), match="callback"):
        mlp(callbacks=bad if isinstance(bad, list) else [bad]).fit(X, y)


def test_early_stopping_callback_keeps_the_best_state():
    module = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    assert not stopper.update({"epoch": 1, "valid_loss": 1.0}, module)
    best = {k: v.clone() for k, v in module.state_dict().items()}
    with torch.no_grad():
        module.weight.add_(1.0)
    assert not stopper.update({"epoch": 2, "valid_loss": 2.0}, module)
    assert stopper.update({"epoch": 3, "valid_loss": 3.0}, module)
    assert stopper.best_epoch_ == 1
    torch.testing.assert_close(stopper.best_state_["weight"], best["weight"])


def test_epoch_line_and_pickled_callbacks():
    line = epoch_line({"epoch": 3, "train_loss": 0.5, "valid_loss": None,
                       "valid_score": None, "lr": 1e-3, "duration": 0.2})
    assert line.startswith("epoch   3") and "valid" not in line
    record = {"epoch": 1, "train_loss": 0.5, "valid_loss": 0.4, "valid_score": 0.9,
              "lr": 1e-3, "duration": 0.2}
    assert "valid_score 0.9000" in epoch_line(record)
    assert "valid_r2 0.9000" in epoch_line(record, "valid_r2")
    checkpoint = pickle.loads(pickle.dumps(Checkpoint("somewhere", monitor="train_loss")))
    assert checkpoint.monitor == "train_loss" and "Checkpoint(" in repr(checkpoint)


def test_hooks_get_keyword_arguments(blobs):
    X, y = blobs
    seen = []

    class Future(Callback):
        def on_batch_end(self, state, **kwargs):
            seen.append(sorted(kwargs))

    mlp(epochs=1, callbacks=[Future()]).fit(X, y)
    assert seen and all(names == ["loss"] for names in seen)


def test_a_continued_fit_that_raises_leaves_the_history_as_it_was(blobs):
    """The history is appended to in place by a warm start: an error in the
    continued fit puts it back, with the other attributes."""

    class FailAtEpoch(Callback):
        def on_epoch_end(self, state, **kwargs):
            if state.epoch == 3:
                raise RuntimeError("a failure in the continued fit")

    X, y = blobs
    clf = mlp(epochs=2).fit(X, y)
    history, n_iter = list(clf.history_), clf.n_iter_
    clf.set_params(warm_start=True, callbacks=[FailAtEpoch()])
    with pytest.raises(RuntimeError, match="continued fit"):
        clf.fit(X, y)
    assert clf.history_ == history and clf.n_iter_ == n_iter == len(history)


def test_early_stopping_on_a_key_the_history_lacks_warns(blobs):
    X, y = blobs
    with pytest.warns(UserWarning, match="no 'val_acc', so it will never stop"):
        mlp(epochs=2, callbacks=[EarlyStopping(1, monitor="val_acc")]).fit(X, y)
    # a key that is there but has no value (no validation set): it never stops
    # either, and says so
    with pytest.warns(UserWarning, match="no value of 'valid_loss'"):
        mlp(epochs=2, callbacks=[EarlyStopping(1, monitor="valid_loss")]).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with a validation set, nothing to say
        mlp(epochs=2, early_stopping=True,
            callbacks=[EarlyStopping(1, monitor="valid_loss")]).fit(X, y)


def test_named_default_callbacks_are_replaced_or_dropped(blobs, capsys):
    X, y = blobs
    by_score = EarlyStopping(2, monitor="valid_score", lower_is_better=False)
    clf = mlp(epochs=30, early_stopping=True, verbose=1,
              callbacks=[("early_stopping", by_score), ("epoch_logger", None)])
    clf.fit(X, y)
    assert "epoch   1" not in capsys.readouterr().out  # the epoch lines were dropped
    scores = [r["valid_score"] for r in clf.history_]
    # stopped by the score: 2 epochs without a higher accuracy than the best
    best = int(np.argmax(scores))
    assert len(scores) == 30 or len(scores) - 1 - best == 2
    assert "best_value_" not in vars(by_score)  # the parameter was copied, not used


@pytest.mark.parametrize("callbacks, message", [
    ([object()], "not a callback"),
    ([("x", object())], "not a callback"),
    ([("early_stopping",)], "not a callback"),
    ([(EarlyStopping(), "name")], "not a callback"),
    ([("a", EarlyStopping()), ("a", EarlyStopping())], "given twice"),
    ([("epoch_loger", None)], r"\('epoch_loger', None\) drops the default.*'epoch_logger'"),
])
def test_bad_callbacks_are_refused_before_training(blobs, callbacks, message):
    X, y = blobs
    with pytest.raises(ValueError, match=message):
        mlp(callbacks=callbacks).fit(X, y)


def test_early_stopping_monitor_direction_and_load_best():
    module = torch.nn.Linear(2, 1)
    higher = EarlyStopping(1, monitor="valid_score", lower_is_better=False, load_best=False)
    assert not higher.update({"epoch": 1, "valid_score": 0.5}, module)
    assert not higher.update({"epoch": 2, "valid_score": 0.7}, module)
    assert higher.update({"epoch": 3, "valid_score": 0.6}, module)
    assert higher.best_epoch_ == 2 and higher.best_value_ == 0.7
    assert higher.best_state_ is None and higher.misses_ == 1
    missing = EarlyStopping(1)
    assert not missing.update({"epoch": 1, "train_loss": 0.3}, module)  # no valid_loss
    assert missing.best_epoch_ is None
    assert "patience=1" in repr(missing) and "misses_" not in repr(missing)


@pytest.mark.parametrize("make, message", [
    (lambda tmp: Checkpoint(tmp / "a_file"), "is a file, not a folder"),
    (lambda tmp: Checkpoint(tmp / "a_file" / "{fingerprint}"), "is a file, not a folder"),
    (lambda tmp: Checkpoint(3), "must be a path"),
    (lambda tmp: Checkpoint(tmp, lower_is_better="no"), "lower_is_better='no'"),
    (lambda tmp: Checkpoint(tmp, monitor=None), "monitor=None"),
    (lambda tmp: Checkpoint(tmp, resume=1), "resume=1"),
    (lambda tmp: TensorBoardLogger(tmp / "a_file" / "run"), "is a file, not a folder"),
    (lambda tmp: EpochLogger(score_label=1), "score_label=1"),
    (lambda tmp: EpochLogger(log="print"), "log='print'"),
    (lambda tmp: EarlyStopping(0), "patience=0"),
    (lambda tmp: EarlyStopping(monitor=["valid_loss"]), "monitor="),
    (lambda tmp: EarlyStopping(min_delta=-1), "min_delta=-1"),
    (lambda tmp: EarlyStopping(load_best="yes"), "load_best='yes'"),
    (lambda tmp: MLflowLogger(experiment_name=3), "experiment_name=3"),
])
def test_bad_callback_arguments_are_refused_before_the_network_is_built(
        blobs, tmp_path, monkeypatch, make, message):
    """Callback.check_params runs when fit starts: a Checkpoint or TensorBoard
    folder that is a file, or an argument of the wrong type, is named before
    any network is built (it failed later, or never)."""
    import sktransfer.classifiers._base as base

    (tmp_path / "a_file").write_text("not a folder")

    def no_network(*args, **kwargs):
        raise AssertionError("the network was built before the callbacks were checked")

    monkeypatch.setattr(base, "mlp_backbone", no_network)
    X, y = blobs
    with pytest.raises((ValueError, TypeError), match=message):
        mlp(callbacks=[make(tmp_path)]).fit(X, y)


def test_check_params_of_a_user_callback_runs_when_fit_starts(blobs):
    class NeedsPositive(Callback):
        def __init__(self, n=1):
            self.n = n

        def check_params(self):
            if self.n <= 0:
                raise ValueError(f"NeedsPositive(n={self.n}) must be > 0")

    X, y = blobs
    mlp(callbacks=[NeedsPositive(1)]).fit(X, y)
    with pytest.raises(ValueError, match=r"NeedsPositive\(n=0\)"):
        mlp(callbacks=[NeedsPositive(0)]).fit(X, y)


def test_a_callback_that_cannot_be_copied_is_named():
    """Each fit runs copies of the callbacks: one that holds a lock from its
    __init__ failed with pickle's bare "cannot pickle '_thread.lock' object"."""
    import threading

    from sktransfer import FineTuneClassifier

    class Locked(Callback):
        def __init__(self):
            self.lock = threading.Lock()

    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu",
                             callbacks=[EpochLogger(), Locked()])
    with pytest.raises(TypeError, match=r"callbacks\[1\] = Locked\(.*cannot be copied .*"
                                        "Make locks, open files and writers in "
                                        "on_fit_begin"):
        clf.fit(X, [0, 1] * 8)


def test_an_error_in_a_losss_target_view_names_the_view():
    """A custom loss's target_augments entry that fails on the input (an image
    view on texts) says which entry and loss raised, and how to declare the
    inputs it takes."""
    from sktransfer import DomainAdaptClassifier
    from sktransfer.adaptation import AdaptationLoss

    def broken_view(batch):
        raise AttributeError("no flip here")

    class Views(AdaptationLoss):
        target_augments = [None, broken_view]

        def forward(self, fs, ls, ft, lt, ft2, lt2):
            return (fs.mean(0) - ft.mean(0)).pow(2).sum()

    rng = np.random.default_rng(0)
    X = rng.random((16, 3, 8, 8)).astype(np.float32)
    y = np.r_[[0, 1] * 4, [-1] * 8]
    with pytest.raises(AttributeError, match="no flip here") as info:
        DomainAdaptClassifier(model="simple_cnn", weights=None, method=Views(), epochs=1,
                              device="cpu").fit(X, y)
    assert any("target_augments[1] of Views" in note and "modalities" in note
               for note in info.value.__notes__)

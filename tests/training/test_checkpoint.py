"""sktransfer.training.Checkpoint: an interrupted fit resumed exactly, the best
and last weights, and the fingerprint that refuses another fit's folder."""

import os

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from sktransfer import DomainAdaptClassifier
from sktransfer.training import Checkpoint, EarlyStopping

from tiny_fits import cnn, images_task, InterruptAt, mlp


def test_checkpoint_resumes_an_interrupted_fit_exactly(tmp_path):
    X, y = images_task()  # with the default augmentation: random draws to restore
    reference = cnn().fit(X, y)
    folder = tmp_path / "run"
    interrupted = cnn(callbacks=[Checkpoint(folder), InterruptAt(epoch=2)]).fit(X, y)
    assert interrupted.interrupted_ and len(interrupted.history_) == 2
    assert sorted(os.listdir(folder)) == ["best.safetensors", "last.safetensors",
                                          "last_training_state.pt"]
    resumed = cnn(callbacks=[Checkpoint(folder)]).fit(X, y)
    assert not resumed.interrupted_
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))
    # A finished fit's folder gives that model back at once.
    again = cnn(callbacks=[Checkpoint(folder), InterruptAt(epoch=0, batch=1)]).fit(X, y)
    assert not again.interrupted_
    np.testing.assert_array_equal(again.predict_proba(X), reference.predict_proba(X))


def test_a_resume_refuses_weights_and_state_of_different_epochs(tmp_path, blobs):
    # The weights and the training state are two files written one after the
    # other: a process stopped between the two writes left epoch k+1's weights
    # beside epoch k's optimizer and epoch count, and the resumed fit trained
    # that epoch again without a word.
    import shutil

    X, y = blobs
    folder = tmp_path / "run"
    mlp(epochs=4, callbacks=[Checkpoint(folder), InterruptAt(epoch=1)]).fit(X, y)
    shutil.copy(folder / "last_training_state.pt", tmp_path / "state_after_1.pt")
    mlp(epochs=4, callbacks=[Checkpoint(folder), InterruptAt(epoch=2)]).fit(X, y)
    shutil.copy(tmp_path / "state_after_1.pt", folder / "last_training_state.pt")
    with pytest.raises(ValueError, match=r"last.safetensors holds the weights of epoch 2 "
                                         r"and last_training_state.pt the state of epoch 1"):
        mlp(epochs=4, callbacks=[Checkpoint(folder)]).fit(X, y)


def test_a_resumed_fit_keeps_early_stoppings_best_epoch(tmp_path):
    # Early stopping's best epoch came before the interruption: the resumed
    # fit must end with that epoch's weights, as the uninterrupted fit does.
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=40, n_features=5, n_informative=3,
                               n_redundant=0, random_state=0)
    settings = dict(epochs=5, early_stopping=True, patience=10, batch_size=8, lr=1e-2)
    reference = mlp(**settings).fit(X, y)
    losses = [record["valid_loss"] for record in reference.history_]
    assert int(np.argmin(losses)) < 2  # what makes the check below mean something
    folder = tmp_path / "run"
    interrupted = mlp(**settings, callbacks=[Checkpoint(folder), InterruptAt(epoch=2)])
    assert len(interrupted.fit(X, y).history_) == 2
    resumed = mlp(**settings, callbacks=[Checkpoint(folder)]).fit(X, y)
    assert resumed.history_ == reference.history_ or \
        [r["valid_loss"] for r in resumed.history_] == losses
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))


@pytest.mark.parametrize("settings", [
    dict(epochs=5, early_stopping=True, patience=10, batch_size=8, lr=1e-2),
    dict(epochs=8, early_stopping=True, patience=2, batch_size=8, lr=5e-2),  # stops early
], ids=["runs-all-epochs", "stops-early"])
def test_a_resume_after_every_epoch_ends_as_the_uninterrupted_fit(tmp_path, settings):
    # Ctrl-C in a callback after the Checkpoint, once it wrote epoch k: also
    # after the last epoch (no epoch left to run) and after the epoch early
    # stopping ended the fit.
    from sklearn.datasets import make_classification

    from sktransfer.training import Callback

    class CtrlCAfterEpoch(Callback):
        def __init__(self, at):
            self.at = at

        def on_epoch_end(self, state, **kwargs):
            if state.epoch == self.at:
                raise KeyboardInterrupt

    X, y = make_classification(n_samples=40, n_features=5, n_informative=3,
                               n_redundant=0, random_state=0)
    reference = mlp(**settings).fit(X, y)
    for epoch in range(1, len(reference.history_) + 1):
        folder = tmp_path / str(epoch)
        mlp(**settings, callbacks=[Checkpoint(folder), CtrlCAfterEpoch(epoch)]).fit(X, y)
        resumed = mlp(**settings, callbacks=[Checkpoint(folder)]).fit(X, y)
        assert len(resumed.history_) == len(reference.history_), epoch
        np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))


def test_a_fit_stopped_by_a_callback_is_not_returned_to_a_fit_without_it(tmp_path, blobs):
    from sktransfer.training import Callback

    class StopAfterOne(Callback):
        def on_epoch_end(self, state, **kwargs):
            state.stop_training = True

    X, y = blobs
    stopped = mlp(epochs=5, callbacks=[StopAfterOne(), Checkpoint(tmp_path)]).fit(X, y)
    assert len(stopped.history_) == 1
    again = mlp(epochs=5, callbacks=[StopAfterOne(), Checkpoint(tmp_path)]).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), stopped.predict_proba(X))
    with pytest.raises(ValueError, match=r"stopped after epoch 1 of 5 by .*StopAfterOne\(\)"):
        mlp(epochs=5, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    # the estimator's own early stopping prints with verbose: the same fit
    settings = dict(epochs=30, early_stopping=True, patience=1, lr=0.3)
    first = mlp(**settings, verbose=1, callbacks=[Checkpoint(tmp_path / "es")]).fit(X, y)
    assert len(first.history_) < 30
    quiet = mlp(**settings, callbacks=[Checkpoint(tmp_path / "es")]).fit(X, y)
    np.testing.assert_array_equal(quiet.predict_proba(X), first.predict_proba(X))


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_continued_fits_get_a_folder_of_their_own(tmp_path, blobs, how):
    X, y = blobs

    def call(clf):
        if how == "partial_fit":
            return clf.partial_fit(X, y, classes=[0, 1, 2])
        return clf.fit(X, y)

    # one folder: the second call is told what is going on, and the first
    # call's files stay (a rerun of the script returns that fit at once)
    folder = tmp_path / "run"
    clf = call(mlp(epochs=2, warm_start=how == "warm_start",
                   callbacks=[Checkpoint(folder)]))
    before = (folder / "last_training_state.pt").read_bytes()
    with pytest.raises(ValueError, match=r"continues a fitted estimator \(partial_fit or "
                                         r"warm_start, from epoch \d\).*\{fingerprint\}"):
        call(clf)
    assert (folder / "last_training_state.pt").read_bytes() == before
    # '{fingerprint}': each call its own folder, and a rerun returns each at once
    runs = []
    for _ in range(2):
        clf = mlp(epochs=2, warm_start=how == "warm_start",
                  callbacks=[Checkpoint(tmp_path / "fits" / "{fingerprint}")])
        runs.append([call(clf).predict_proba(X), call(clf).predict_proba(X)])
    assert len(os.listdir(tmp_path / "fits")) == 2
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_resume_matches_callback_states_by_kind_not_position(tmp_path):
    # verbose adds the progress bar and the epoch logger before the user's
    # callbacks: the resumed fit's list differs, early stopping's state still
    # reaches early stopping; and its log=print is no other fit.
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=40, n_features=5, n_informative=3,
                               n_redundant=0, random_state=0)
    settings = dict(epochs=5, early_stopping=True, patience=10, batch_size=8, lr=1e-2)
    reference = mlp(**settings).fit(X, y)
    folder = tmp_path / "run"
    mlp(**settings, callbacks=[Checkpoint(folder), InterruptAt(epoch=2)]).fit(X, y)
    resumed = mlp(**settings, verbose=1, callbacks=[Checkpoint(folder)]).fit(X, y)
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))


def test_a_stateful_callback_after_the_checkpoint_is_refused(tmp_path, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="EarlyStopping, a callback with a state, comes "
                                         "after the Checkpoint.*before"):
        mlp(epochs=2, callbacks=[Checkpoint(tmp_path), EarlyStopping(2)]).fit(X, y)
    mlp(epochs=2, callbacks=[EarlyStopping(2), Checkpoint(tmp_path)]).fit(X, y)
    # nothing to resume: the order is the user's
    mlp(epochs=2, callbacks=[Checkpoint(tmp_path, resume=False), EarlyStopping(2)]).fit(X, y)


def test_a_state_a_checkpoint_cannot_hold_is_named_when_written(tmp_path, blobs):
    from sktransfer.training import Callback

    class Mean(Callback):
        def state_dict(self):
            return {"mean": np.float64(0.5)}

    X, y = blobs
    with pytest.raises(TypeError, match=r"Mean.state_dict\(\)\['mean'\] is a float64"):
        mlp(epochs=2, callbacks=[Mean(), Checkpoint(tmp_path)]).fit(X, y)


def test_a_monitor_the_history_lacks_is_said(tmp_path, blobs):
    X, y = blobs
    with pytest.warns(UserWarning, match="Checkpoint: the history has no 'valid_los'") \
            as record:
        mlp(epochs=2, early_stopping=True,
            callbacks=[Checkpoint(tmp_path, monitor="valid_los")]).fit(X, y)
    assert len([w for w in record if "valid_los" in str(w.message)]) == 1
    with pytest.warns(UserWarning, match="no value of 'valid_loss' .no validation set"):
        mlp(epochs=2, callbacks=[EarlyStopping(1)]).fit(X, y)


def test_checkpoint_keeps_the_best_and_last_weights(tmp_path, blobs):
    from safetensors.torch import load_file

    X, y = blobs
    clf = mlp(epochs=5, early_stopping=True, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    last = load_file(tmp_path / "last.safetensors")
    best = load_file(tmp_path / "best.safetensors")
    assert set(last) == set(best) == set(clf.module_.state_dict())
    losses = [r["valid_loss"] for r in clf.history_]
    best_epoch = int(np.argmin(losses))
    if best_epoch != len(losses) - 1:
        assert any(not torch.equal(last[k], best[k]) for k in last)
    # early stopping restored the best epoch, which the best file holds
    for key, value in clf.module_.state_dict().items():
        torch.testing.assert_close(value, best[key])


def test_an_early_stopped_fit_is_returned_at_once(tmp_path, blobs):
    """Stopped early, the fit returns its best epoch's weights; the same fit
    again returns that model, without training on from its last epoch."""
    from sktransfer.training import Callback

    class CountEpochs(Callback):
        def on_epoch_end(self, state, **kwargs):
            epochs.append(state.epoch)

    X, y = blobs
    settings = dict(epochs=30, early_stopping=True, patience=2, lr=0.3)
    epochs = []
    first = mlp(**settings, callbacks=[Checkpoint(tmp_path), CountEpochs()]).fit(X, y)
    assert len(first.history_) < 30 and len(epochs) == len(first.history_)
    epochs.clear()
    again = mlp(**settings, callbacks=[Checkpoint(tmp_path), CountEpochs()]).fit(X, y)
    assert epochs == [] and again.history_ == first.history_
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_a_score_is_best_when_highest(tmp_path, blobs):
    from safetensors import safe_open

    X, y = blobs
    clf = mlp(epochs=5, early_stopping=True, patience=10, lr=3e-3, callbacks=[
        Checkpoint(tmp_path, monitor="valid_score", lower_is_better=False)]).fit(X, y)
    scores = [record["valid_score"] for record in clf.history_]
    with safe_open(tmp_path / "best.safetensors", "pt") as file:
        assert float(file.metadata()["value"]) == max(scores)


def test_checkpoint_refuses_another_fit(tmp_path, blobs):
    X, y = blobs
    mlp(epochs=2, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    with pytest.raises(ValueError, match="not this one"):
        mlp(epochs=3, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    fresh = mlp(epochs=3, callbacks=[Checkpoint(tmp_path, resume=False)]).fit(X, y)
    assert len(fresh.history_) == 3


def test_checkpoint_with_domain_adaptation_resumes(tmp_path):
    X, y = images_task()
    X_all = np.concatenate([X, 255 - X])
    y_all = np.concatenate([y, -np.ones(len(y), dtype=int)])
    params = dict(model="simple_cnn", weights=None, image_size=16, epochs=3, batch_size=8,
                  device="cpu", random_state=0, method="dann")
    DomainAdaptClassifier(callbacks=[Checkpoint(tmp_path), InterruptAt(epoch=1)],
                          **params).fit(X_all, y_all)
    resumed = DomainAdaptClassifier(callbacks=[Checkpoint(tmp_path)], **params)
    resumed.fit(X_all, y_all)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3]
    assert resumed.predict(X).shape == (len(X),)


def test_checkpoint_refuses_a_refit_with_other_parameters_or_data(tmp_path, blobs):
    X, y = blobs
    mlp(epochs=2, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    with pytest.raises(ValueError, match="not this one"):
        mlp(epochs=2, lr=1e-2, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    with pytest.raises(ValueError, match="not this one"):
        mlp(epochs=2, callbacks=[Checkpoint(tmp_path)]).fit(X[::-1], y[::-1])
    with pytest.raises(ValueError, match="not this one"):
        mlp(epochs=2, random_state=1, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    after = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert after == before  # the first fit's files are kept
    # the same fit still resumes (returns the finished model)
    same = mlp(epochs=2, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    assert len(same.history_) == 2


def test_checkpoint_per_fit_folders_keep_cross_validation_honest(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    plain = mlp(epochs=3, batch_size=32)
    expected = cross_val_score(plain, X, y, cv=3)
    keyed = mlp(epochs=3, batch_size=32,
                callbacks=[Checkpoint(str(tmp_path / "cv-{fingerprint}"))])
    np.testing.assert_array_equal(cross_val_score(keyed, X, y, cv=3), expected)
    assert len(os.listdir(tmp_path)) == 3  # one folder per fold
    # a shared folder is refused at the second fold instead of returning fold 1's model
    shared = mlp(epochs=3, batch_size=32, callbacks=[Checkpoint(tmp_path / "shared")])
    with pytest.raises(ValueError, match="not this one"):
        cross_val_score(shared, X, y, cv=3, error_score="raise")
    # the per-fit folders resume: the same scores again, from the files
    np.testing.assert_array_equal(cross_val_score(keyed, X, y, cv=3), expected)
    grid = GridSearchCV(mlp(epochs=2, batch_size=32,
                            callbacks=[Checkpoint(str(tmp_path / "gs-{fingerprint}"))]),
                        {"lr": [1e-5, 1e-2]}, cv=2).fit(X, y)
    reference = GridSearchCV(mlp(epochs=2, batch_size=32), {"lr": [1e-5, 1e-2]},
                             cv=2).fit(X, y)
    np.testing.assert_array_equal(grid.cv_results_["mean_test_score"],
                                  reference.cv_results_["mean_test_score"])


def test_fingerprint_is_the_same_in_another_process_and_sees_starting_weights():
    """A function given as a parameter is described by its name, code and
    closure, not by its repr (which holds a memory address that differs between
    processes; a set in the closure iterates in the process's hash order), and
    the starting weights count."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import numpy as np, torch
        from sktransfer import FineTuneClassifier
        from sktransfer.classifiers._base import FitData
        from sktransfer.classifiers._fingerprint import fit_fingerprint
        from sktransfer.inputs import ArraySource

        def scaled(scale):
            def shift(images):
                return images * scale
            return shift
        clf = FineTuneClassifier(model=None, augment=scaled({0.5, "a", "b"}),
                                 random_state=0)
        data = FitData(ArraySource(torch.zeros(4, 3)), np.zeros(4, dtype=np.int64),
                       np.ones(4), np.arange(4), 0)
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 2)
        torch.nn.init.constant_(net.weight, 0.5)
        print(fit_fingerprint(clf, data, start_epoch=0, schedule=True, network=net))
        torch.nn.init.constant_(net.weight, 0.25)
        print(fit_fingerprint(clf, data, start_epoch=0, schedule=True, network=net))
    """)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    assert runs[0] == runs[1]  # the same fit, the same digest in each process
    assert runs[0][0] != runs[0][1]  # other starting weights, another fit


def test_a_replaced_default_callback_is_another_fit(tmp_path):
    X, y = make_blobs(n_samples=90, centers=3, n_features=6, random_state=0)
    mlp(epochs=2, early_stopping=True, callbacks=[Checkpoint(tmp_path)]).fit(X, y)
    other = ("early_stopping", EarlyStopping(1, monitor="valid_score",
                                             lower_is_better=False))
    with pytest.raises(ValueError, match="not this one"):
        mlp(epochs=2, early_stopping=True,
            callbacks=[Checkpoint(tmp_path), other]).fit(X, y)


def _fingerprint(estimator):
    from sktransfer.classifiers._base import FitData
    from sktransfer.classifiers._fingerprint import fit_fingerprint
    from sktransfer.inputs import ArraySource

    data = FitData(ArraySource(torch.zeros(4, 3)), np.zeros(4, dtype=np.int64),
                   np.ones(4), np.arange(4), 0)
    torch.manual_seed(0)
    return fit_fingerprint(estimator, data, start_epoch=0, schedule=True,
                           network=torch.nn.Linear(3, 2))


def test_losses_and_closures_that_differ_in_a_setting_are_other_fits(tmp_path):
    """The fingerprint reads an adaptation loss's parameters and a user loss's
    plain attributes, and a closure's values: two candidates of a grid search
    that differ only there never share a checkpoint folder."""
    from sktransfer.adaptation import AdaptationLoss, CDANLoss, SelfTrainingLoss

    class Gap(AdaptationLoss):
        def __init__(self, ramp=True):
            super().__init__()
            self.ramp = ramp

        def forward(self, fs, ls, ft, lt):
            gap = (fs.mean(0) - ft.mean(0)).pow(2).sum()
            return gap * self.progress if self.ramp else gap

    def scaled_gap(scale):
        def gap(fs, ls, ft, lt):
            return scale * (fs.mean(0) - ft.mean(0)).pow(2).sum()
        return gap

    def da(method):
        return DomainAdaptClassifier(model=None, method=method, random_state=0)

    pairs = [(CDANLoss(max_coefficient=0.0), CDANLoss(max_coefficient=50.0)),
             (SelfTrainingLoss(momentum=0.9), SelfTrainingLoss(momentum=0.5)),
             (Gap(ramp=True), Gap(ramp=False)),
             (scaled_gap(0.0), scaled_gap(100.0))]
    for first, second in pairs:
        assert _fingerprint(da(first)) != _fingerprint(da(second)), (first, second)
    assert _fingerprint(da(scaled_gap(1.0))) == _fingerprint(da(scaled_gap(1.0)))
    assert _fingerprint(da(Gap(ramp=False))) == _fingerprint(da(Gap(ramp=False)))
    # A grid over a loss's setting (reached as method__<name>) gives each
    # candidate its own folder, and the scores of fits without a checkpoint.
    X, y = make_blobs(n_samples=80, centers=2, n_features=4, random_state=0)
    y = np.where(np.arange(80) < 40, y, -1)
    scoring = lambda est, X_, y_: est.score(X_[y_ != -1], y_[y_ != -1])  # noqa: E731
    grid = {"method__max_coefficient": [0.0, 50.0]}
    keyed = GridSearchCV(
        DomainAdaptClassifier(model=None, method=CDANLoss(), epochs=2, device="cpu",
                              random_state=0,
                              callbacks=[Checkpoint(str(tmp_path / "{fingerprint}"))]),
        grid, cv=2, scoring=scoring).fit(X, y)
    plain = GridSearchCV(DomainAdaptClassifier(model=None, method=CDANLoss(), epochs=2,
                                               device="cpu", random_state=0),
                         grid, cv=2, scoring=scoring).fit(X, y)
    assert len(os.listdir(tmp_path)) == 4 + 1  # 2 candidates x 2 folds, and the refit
    np.testing.assert_array_equal(keyed.cv_results_["mean_test_score"],
                                  plain.cv_results_["mean_test_score"])
    assert [str(p["method__max_coefficient"]) for p in keyed.cv_results_["params"]] \
        == ["0.0", "50.0"]


def test_fingerprint_reads_closures_over_arrays_tensors_and_empty_cells():
    """Closures over tensors or large arrays that differ only inside collided
    (described by their truncated str or no state); an empty closure cell
    crashed the fit; an object with no __dict__ was described by a str that
    holds its memory address (another fingerprint in every process)."""
    import threading

    def over(value):
        def augment(images):
            return images + float(value.sum() * 0)
        return augment

    def late():
        def augment(images):
            return images * later
        fingerprint = _fingerprint(mlp(augment=augment))
        later = 1.0  # noqa: F841 (assigned after the function: an empty cell)
        return fingerprint

    big = np.zeros(5000)
    other = big.copy()
    other[2500] = 1.0
    assert _fingerprint(mlp(augment=over(big))) != _fingerprint(mlp(augment=over(other)))
    assert _fingerprint(mlp(augment=over(torch.zeros(3)))) != \
        _fingerprint(mlp(augment=over(torch.tensor([0.0, 1.0, 0.0]))))
    assert _fingerprint(mlp(augment=over(big))) == _fingerprint(mlp(augment=over(big.copy())))
    assert len(late()) == 32
    # an object without __dict__: its slots; no readable state: never the same fit
    class Noise:
        __slots__ = ("std",)

        def __init__(self, std):
            self.std = std

        def __call__(self, images):
            return images

    assert _fingerprint(mlp(augment=Noise(0.0))) != _fingerprint(mlp(augment=Noise(0.9)))
    assert _fingerprint(mlp(augment=Noise(0.5))) == _fingerprint(mlp(augment=Noise(0.5)))
    lock = threading.Lock()
    assert _fingerprint(mlp(augment=over(lock))) != _fingerprint(mlp(augment=over(lock)))
    assert len(_fingerprint(mlp(augment=over(torch.tensor([1 + 2j]).conj())))) == 32


def test_values_nested_too_deep_to_read_never_make_two_fits_alike():
    """Beyond the depth the fingerprint reads, values collapsed to their type, so
    two deep closures that differed only down there shared a folder."""
    def nested(leaf, depth=12):
        value = leaf
        for _ in range(depth):
            value = [value]
        return value

    def over(value):
        def augment(images):
            return images if value else images
        return augment

    assert _fingerprint(mlp(augment=over(nested(0.0)))) != \
        _fingerprint(mlp(augment=over(nested(1.0))))


def test_a_resuming_checkpoint_without_a_seed_warns_at_the_first_fit(tmp_path):
    """With random_state=None each fit draws its own seed, so no later fit can
    resume it: the user hears it at the fit whose crash they would want to
    resume, not only from the refusal afterwards (the docs' example had no
    seed)."""
    import warnings

    X, y = make_blobs(n_samples=32, centers=2, random_state=0)
    with pytest.warns(UserWarning, match="with random_state=None each fit draws its "
                                         "own seed.*set random_state to an int"):
        mlp(random_state=None, epochs=1,
            callbacks=[Checkpoint(str(tmp_path / "a"))]).fit(X, y)
    with pytest.raises(ValueError, match="random_state=None, or a RandomState, draws "
                                         "another seed"):
        mlp(random_state=None, epochs=1,
            callbacks=[Checkpoint(str(tmp_path / "a"))]).fit(X, y)
    with pytest.warns(UserWarning, match="random_state=RandomState"):
        mlp(random_state=np.random.RandomState(0), epochs=1,
            callbacks=[Checkpoint(str(tmp_path / "d"))]).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # seeded, or a checkpoint that does not resume
        mlp(epochs=1, callbacks=[Checkpoint(str(tmp_path / "b"))]).fit(X, y)
        mlp(random_state=None, epochs=1,
            callbacks=[Checkpoint(str(tmp_path / "c"), resume=False)]).fit(X, y)

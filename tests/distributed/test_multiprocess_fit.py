"""One fit over two CPU processes (gloo): ``devices=2`` against one process.

Each test here starts real worker processes (PyTorch's spawn), so they are few
and small: a tiny MLP on flat features, a few batches.
"""

import ast
import multiprocessing
import os
import pickle
import signal
import threading
import time

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import sktransfer
from rank_callbacks import CountEpochs, CrashOnceOnRank, MarkStarted, RaiseOnRank, RecordHistory, StopOnRank
from sktransfer import DomainAdaptClassifier, FineTuneClassifier, FineTuneRegressor
from sktransfer.training import Checkpoint
from text_models import sentiment_texts, write_tiny_bert



def _data(n=75, n_features=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = (rng.normal(size=(n, n_features)) + y[:, None]).astype(np.float32)
    return X, y


# 75 rows, batches of 16: the last global batch has 11 rows, split 6 + 5 (one
# padding row on rank 1); uneven sample weights: the loss scale matters.
PARAMS = dict(model=None, epochs=4, batch_size=16, random_state=0, hidden_layer_sizes=(16,),
              early_stopping=True, validation_fraction=0.2, patience=10)


@pytest.fixture(scope="module")
def two_process_fit(tmp_path_factory):
    X, y = _data()
    weights = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    folder = tmp_path_factory.mktemp("ranks")
    clf = FineTuneClassifier(
        devices=2, verbose=1,
        callbacks=[RecordHistory(str(folder)), Checkpoint(str(folder / "ckpt"))], **PARAMS)
    clf.fit(X, y, sample_weight=weights)
    single = FineTuneClassifier(**PARAMS).fit(X, y, sample_weight=weights)
    return clf, single, X, y, folder


def test_two_processes_take_the_steps_of_one(two_process_fit):
    clf, single, X, _, _ = two_process_fit
    # the same global batches, the gradients averaged: the same weights, up to
    # float rounding of the split sums
    np.testing.assert_allclose(clf.predict_proba(X), single.predict_proba(X), atol=1e-5)
    assert len(clf.history_) == len(single.history_) == 4
    for ours, theirs in zip(clf.history_, single.history_):
        for key in ("train_loss", "valid_loss", "valid_score", "lr"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key
    assert clf.n_iter_ == 4 and not clf.interrupted_


def test_every_rank_sees_the_same_history(two_process_fit):
    _, _, _, _, folder = two_process_fit
    histories = [ast.literal_eval((folder / f"history-{rank}.txt").read_text())
                 for rank in (0, 1)]
    for history in histories:  # each rank timed its own epochs
        for record in history:
            record.pop("duration")
    assert histories[0] == histories[1]


def test_only_rank_0_writes(two_process_fit, capfd):
    clf, _, _, _, folder = two_process_fit
    assert sorted(p.name for p in (folder / "ckpt").iterdir())  # rank 0 wrote its checkpoint
    # (the epoch logger's lines were printed while the fixture ran: check a fresh fit)
    X, y = _data(n=20)
    FineTuneClassifier(**{**PARAMS, "epochs": 2, "early_stopping": False},
                       devices=2, verbose=1).fit(X, y)
    out = capfd.readouterr().out
    assert out.count("epoch") == 2, out  # one line per epoch, not one per rank


def test_the_result_pickles_and_saves(two_process_fit, tmp_path):
    clf, _, X, _, _ = two_process_fit
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X),
                                  expected)
    clf = clone(clf).set_params(callbacks=None, verbose=0)  # a safe file holds data only
    clf.__dict__.update({k: v for k, v in vars(two_process_fit[0]).items() if k.endswith("_")})
    sktransfer.save(clf, tmp_path / "clf.skt")
    loaded = sktransfer.load(tmp_path / "clf.skt")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.devices == 2 and clone(loaded).get_params()["devices"] == 2


def test_an_error_in_one_rank_is_raised_in_the_caller():
    X, y = _data(n=40)
    clf = FineTuneClassifier(**{**PARAMS, "epochs": 3, "early_stopping": False},
                             devices=2, callbacks=[RaiseOnRank(rank=1, epoch=1)])
    with pytest.raises(ValueError, match="a genuine error on rank 1") as info:
        clf.fit(X, y)
    assert any("Raised in rank 1" in note for note in info.value.__notes__)
    assert not multiprocessing.active_children()
    assert not hasattr(clf, "module_")  # a failed fit leaves a new estimator unfitted


def test_a_stop_asked_on_one_rank_stops_every_rank():
    X, y = _data(n=40)
    clf = FineTuneClassifier(**{**PARAMS, "epochs": 5, "early_stopping": False},
                             devices=2, callbacks=[StopOnRank(rank=1, epoch=2)])
    clf.fit(X, y)  # without agreement, rank 0 would wait for rank 1 forever
    assert len(clf.history_) == 2


@pytest.mark.parametrize("target", ["process", "other_thread"])
def test_ctrl_c_stops_every_worker(tmp_path, target):
    """Ctrl-C stops the fit whichever thread of the caller the kernel hands the
    signal to: ``"other_thread"`` delivers it to a thread that is not the main
    one, which only sets Python's flag (a wait without a timeout in the main
    thread would never see it, and the fit would run on)."""
    X, y = _data(n=40)
    marker = tmp_path / "started"
    clf = FineTuneClassifier(**{**PARAMS, "epochs": 1, "early_stopping": False})
    if target == "process":  # a fitted estimator keeps its model; a new one stays new
        clf.fit(X, y)
        before, history = clf.predict_proba(X), clf.history_
    clf.set_params(epochs=100_000, devices=2, callbacks=[MarkStarted(str(marker))])

    def interrupt():
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if target == "process":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    # Python's Ctrl-C handler, as in an interactive session: a test run started
    # as a background job (`cmd &` in a script) inherits SIGINT ignored, and the
    # signal would never reach the fit.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert marker.exists()
    assert not multiprocessing.active_children()
    if target == "process":
        assert clf.history_ == history  # no epoch came back from the workers
        np.testing.assert_array_equal(clf.predict_proba(X), before)
    else:
        assert not hasattr(clf, "module_") and not hasattr(clf, "history_")


@pytest.mark.slow
def test_clone_and_grid_search_over_two_processes():
    X, y = _data(n=48)
    clf = FineTuneClassifier(**{**PARAMS, "epochs": 2, "early_stopping": False}, devices=2)
    assert clone(clf).get_params() == clf.get_params()
    pickle.dumps(clf)
    search = GridSearchCV(clf, {"lr": [1e-2, 1e-3]}, cv=2, n_jobs=1, refit=False).fit(X, y)
    best = clf.set_params(**search.best_params_).fit(X, y)
    single = clone(best).set_params(devices=1).fit(X, y)
    np.testing.assert_allclose(best.predict_proba(X), single.predict_proba(X), atol=1e-5)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.slow
def test_a_search_of_several_jobs_runs_fits_of_several_processes():
    """joblib's loky workers set the start method "loky", which a spawned rank
    read from its parent before any code ran ("cannot find context for
    'loky'"): every fit of cross_val_score(n_jobs=2) failed."""
    from sklearn.model_selection import cross_val_score

    X, y = _data(n=48)
    clf = FineTuneClassifier(**{**PARAMS, "epochs": 1, "early_stopping": False},
                             devices=2)
    try:
        scores = cross_val_score(clf, X, y, cv=2, n_jobs=2, error_score="raise")
    finally:  # joblib keeps its workers for the next call: none left for other tests
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    assert np.isfinite(scores).all()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dann", "self_training"])
def test_domain_adaptation_over_two_processes(method):
    Xs, ys = _data(n=40, seed=0)
    Xt, _ = _data(n=40, seed=1)
    X = np.concatenate([Xs, Xt + 0.5])
    y = np.concatenate([ys, -np.ones(40, dtype=int)])
    params = dict(model=None, epochs=2, batch_size=16, random_state=0, method=method,
                  hidden_layer_sizes=(16,))
    ours = DomainAdaptClassifier(devices=2, **params).fit(X, y)
    single = DomainAdaptClassifier(**params).fit(X, y)
    assert [set(r) for r in ours.history_] == [set(r) for r in single.history_]
    # the adaptation loss sees each rank's half of the batches: close, not equal
    agreement = np.mean(ours.predict(Xt + 0.5) == single.predict(Xt + 0.5))
    assert agreement > 0.8


@pytest.mark.slow
def test_regressor_over_two_processes():
    X, y = _data(n=40)
    target = X[:, 0] * 2.0 + 1.0
    params = dict(model=None, epochs=3, batch_size=8, random_state=0,
                  hidden_layer_sizes=(16,))
    ours = FineTuneRegressor(devices=2, **params).fit(X, target)
    single = FineTuneRegressor(**params).fit(X, target)
    np.testing.assert_allclose(ours.predict(X), single.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_crashed_fit_resumes_from_rank_0s_checkpoint(tmp_path):
    X, y = _data(n=40)
    params = {**PARAMS, "epochs": 4, "early_stopping": False}
    crash = CrashOnceOnRank(str(tmp_path / "crashed"), rank=1, epoch=2)
    clf = FineTuneClassifier(devices=2, callbacks=[
        crash, Checkpoint(str(tmp_path / "ckpt")), CountEpochs(str(tmp_path))], **params)
    with pytest.raises(RuntimeError, match="a crash"):
        clf.fit(X, y)
    clf.fit(X, y)  # rank 0 resumes from its checkpoint and sends it to rank 1
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3, 4]
    # both ranks trained only the epochs after the checkpoint
    assert [(tmp_path / f"epochs-{rank}.txt").read_text() for rank in (0, 1)] == ["2", "2"]
    single = FineTuneClassifier(**params).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), single.predict_proba(X), atol=1e-5)


@pytest.mark.slow
def test_a_finished_early_stopped_fit_is_returned_at_once_over_two_processes(tmp_path):
    """Rank 0's checkpoint says the fit finished: every rank skips training (rank
    1 alone would train on and wait for a rank 0 that has left)."""
    X, y = _data()
    params = {**PARAMS, "epochs": 40, "patience": 1, "lr": 0.3}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = FineTuneClassifier(devices=2, callbacks=[
        Checkpoint(str(tmp_path / "ckpt")), CountEpochs(str(tmp_path / "a"))], **params)
    first.fit(X, y)
    assert len(first.history_) < 40
    again = FineTuneClassifier(devices=2, callbacks=[
        Checkpoint(str(tmp_path / "ckpt")), CountEpochs(str(tmp_path / "b"))], **params)
    again.fit(X, y)
    assert again.history_ == first.history_
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    assert [(tmp_path / "b" / f"epochs-{rank}.txt").read_text() for rank in (0, 1)] \
        == ["0", "0"]  # no rank trained


@pytest.mark.slow
def test_a_language_model_fits_over_two_processes(tmp_path):
    """Texts travel to the workers; the parameters a step leaves without a
    gradient (BERT's pooler) do not stall the gradient averaging."""
    model = "hf:" + str(write_tiny_bert(tmp_path / "bert"))
    X, y = sentiment_texts(n=24)
    params = dict(model=model, weights=None, epochs=2, batch_size=8, random_state=0)
    ours = FineTuneClassifier(devices=2, **params).fit(X, y)
    single = FineTuneClassifier(**params).fit(X, y)
    # close, not equal: each rank draws its own dropout masks
    np.testing.assert_allclose(ours.predict_proba(X), single.predict_proba(X), atol=0.02)
    assert [r["epoch"] for r in ours.history_] == [1, 2]


def test_validation_scores_the_model_that_is_kept():
    """With BatchNorm, each rank's running statistics differ until rank 0's are
    sent to all: the last record's validation loss is the fitted model's."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=48)
    X = (rng.uniform(0, 255, size=(48, 16, 16, 3)) * (0.5 + 0.5 * y[:, None, None, None])
         ).astype(np.uint8)
    clf = FineTuneClassifier(model="simple_cnn", weights=None, epochs=2, batch_size=8,
                             random_state=0, early_stopping=True, validation_fraction=0.25,
                             patience=5, augment=None, devices=2).fit(X, y)
    _, valid = clf._split(y, clf._seed(), np.arange(len(y)))  # the fit's own split
    proba = np.clip(clf.predict_proba(X[valid]), 1e-7, 1)
    loss = -np.mean(np.log(proba[np.arange(len(valid)), y[valid]]))
    assert clf.history_[-1]["valid_loss"] == pytest.approx(loss, rel=1e-4)

"""TensorBoardLogger and MLflowLogger: each epoch's record, written and read back."""

import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

from sktransfer import DomainAdaptClassifier, FineTuneClassifier
from sktransfer.training import Callback, MLflowLogger, TensorBoardLogger
from sktransfer.training._loggers import epoch_metrics

from failing_step import fail_in_second_epoch

EPOCHS = 3


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    return StandardScaler().fit_transform(X), y


def mlp(**params):
    defaults = dict(model=None, epochs=EPOCHS, lr=1e-2, device="cpu", random_state=0)
    defaults.update(params)
    return FineTuneClassifier(**defaults)


class InterruptInSecondEpoch(Callback):
    def on_batch_end(self, state, loss):
        if state.epoch == 1:
            raise KeyboardInterrupt


def scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_epoch_metrics_are_the_numbers_of_a_record():
    record = {"epoch": 2, "train_loss": 0.5, "valid_loss": None, "valid_score": None,
              "lr": 1e-3, "duration": 0.25, "adaptation_loss": 0.125}
    assert epoch_metrics(record) == {"train_loss": 0.5, "lr": 1e-3, "duration": 0.25,
                                     "adaptation_loss": 0.125}


def test_tensorboard_gets_every_epoch(blobs, tmp_path):
    log_dir = tmp_path / "runs" / "mlp"
    logger = TensorBoardLogger(log_dir)
    clf = mlp(early_stopping=True, patience=10, callbacks=[logger]).fit(*blobs)
    logged = scalars(log_dir)
    assert set(logged) == {"train_loss", "valid_loss", "valid_score", "lr", "duration"}
    for key in ("train_loss", "valid_loss", "valid_score", "lr"):
        expected = [(r["epoch"], r[key]) for r in clf.history_]
        assert [step for step, _ in logged[key]] == list(range(1, EPOCHS + 1))
        np.testing.assert_allclose([value for _, value in logged[key]],
                                   [value for _, value in expected], rtol=1e-6)
    # The parameter itself was copied, never opened or changed.
    assert vars(logger) == {"log_dir": log_dir}
    assert repr(logger) == f"TensorBoardLogger(log_dir={log_dir!r})"


def test_tensorboard_gets_the_parts_of_an_adaptation_loss(blobs, tmp_path):
    X, y = blobs
    y = y.copy()
    y[60:] = -1
    DomainAdaptClassifier(method="coral", model=None, epochs=2, device="cpu",
                          random_state=0,
                          callbacks=[TensorBoardLogger(tmp_path)]).fit(X, y)
    logged = scalars(tmp_path)
    assert {"supervised_loss", "adaptation_loss", "train_loss"} <= set(logged)
    assert [step for step, _ in logged["adaptation_loss"]] == [1, 2]


def test_loggers_open_nothing_before_fit_and_survive_clone(blobs, tmp_path):
    log_dir = tmp_path / "tb"
    clf = mlp(callbacks=[TensorBoardLogger(log_dir),
                         MLflowLogger(experiment_name="e", tracking_uri="file:/nowhere")])
    copy = pickle.loads(pickle.dumps(clone(clf)))
    assert not log_dir.exists()
    assert repr(copy.callbacks) == repr(clf.callbacks)
    assert copy.callbacks[0] is not clf.callbacks[0]
    copy.set_params(callbacks=copy.callbacks[:1]).fit(*blobs)
    assert set(scalars(log_dir)) >= {"train_loss", "lr"}
    assert vars(copy.callbacks[0]) == {"log_dir": log_dir}  # copied at fit, unchanged


def test_a_failing_fit_closes_the_tensorboard_writer(blobs, tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    closed = []
    real_close = SummaryWriter.close

    def close(writer):
        closed.append(writer)
        real_close(writer)

    monkeypatch.setattr(SummaryWriter, "close", close)
    fail_in_second_epoch(monkeypatch, batches_per_epoch=-(-len(blobs[0]) // 32))
    with pytest.raises(RuntimeError, match="genuine error"):
        mlp(batch_size=32, callbacks=[TensorBoardLogger(tmp_path)]).fit(*blobs)
    assert len(closed) == 1
    assert [step for step, _ in scalars(tmp_path)["train_loss"]] == [1]


def test_missing_tensorboard_says_how_to_install_it(blobs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        mlp(callbacks=[TensorBoardLogger(tmp_path)]).fit(*blobs)


def test_missing_mlflow_says_how_to_install_it(blobs, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ImportError, match="pip install mlflow"):
        mlp(callbacks=[MLflowLogger()]).fit(*blobs)


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A local file store (MLflow 3 asks for this variable to use one)."""
    pytest.importorskip("mlflow", reason="MLflowLogger needs mlflow (optional): "
                                         "pip install mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return "file:" + str(tmp_path / "mlruns")


def runs_of(uri, experiment_name):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    return client, runs


def test_mlflow_gets_every_epoch(blobs, mlflow_store):
    logger = MLflowLogger(experiment_name="sktransfer", tracking_uri=mlflow_store,
                          run_name="mlp")
    clf = mlp(early_stopping=True, patience=10, callbacks=[logger]).fit(*blobs)
    mlp(epochs=1, callbacks=[logger]).fit(*blobs)  # a second fit: a second run
    client, runs = runs_of(mlflow_store, "sktransfer")
    assert [run.info.run_name for run in runs] == ["mlp", "mlp"]
    assert [run.info.status for run in runs] == ["FINISHED", "FINISHED"]
    run_id = runs[0].info.run_id
    for key in ("train_loss", "valid_loss", "valid_score", "lr", "duration"):
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == list(range(1, EPOCHS + 1))
        np.testing.assert_allclose([m.value for m in history],
                                   [r[key] for r in clf.history_])
    assert set(runs[1].data.metrics) == {"train_loss", "lr", "duration"}
    assert vars(logger) == {"experiment_name": "sktransfer",
                            "tracking_uri": mlflow_store, "run_name": "mlp"}


def test_mlflow_marks_an_interrupted_fit_killed(blobs, mlflow_store):
    logger = MLflowLogger(experiment_name="stopped", tracking_uri=mlflow_store)
    clf = mlp(callbacks=[logger, InterruptInSecondEpoch()]).fit(*blobs)
    assert clf.interrupted_
    client, (run,) = runs_of(mlflow_store, "stopped")
    assert run.info.status == "KILLED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]


def test_mlflow_marks_a_failed_fit_failed(blobs, mlflow_store, monkeypatch):
    fail_in_second_epoch(monkeypatch, batches_per_epoch=-(-len(blobs[0]) // 32))
    logger = MLflowLogger(experiment_name="failed", tracking_uri=mlflow_store)
    with pytest.raises(RuntimeError, match="genuine error"):
        mlp(batch_size=32, callbacks=[logger]).fit(*blobs)
    client, (run,) = runs_of(mlflow_store, "failed")
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]

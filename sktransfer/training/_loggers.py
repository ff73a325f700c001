"""Callbacks that log each epoch's history record to an experiment tracker.

:class:`TensorBoardLogger` (``pip install tensorboard``) and
:class:`MLflowLogger` (``pip install mlflow``). Both trackers are optional
dependencies, imported when a fit begins, by this module alone; nothing is
opened before then, so the loggers copy, clone and pickle like any parameter.
"""

import os
import time
from numbers import Real

from ._callbacks import Callback, check_folder


def epoch_metrics(record):
    """The numbers of a history record worth logging, by name: ``train_loss``,
    ``valid_loss``, ``valid_score``, ``lr``, ``duration`` and what the step
    adds (``supervised_loss``, ``adaptation_loss``), those that are set."""
    return {key: float(value) for key, value in record.items()
            if key != "epoch" and isinstance(value, Real) and not isinstance(value, bool)}


def _summary_writer(log_dir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError("TensorBoardLogger needs tensorboard: pip install tensorboard "
                          "(or pip install 'sktransfer[tensorboard]').") from exc
    return SummaryWriter(log_dir=os.fsdecode(log_dir))


def _mlflow_client(tracking_uri):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ImportError("MLflowLogger needs mlflow: pip install mlflow (or "
                          "mlflow-skinny, or pip install 'sktransfer[mlflow]').") from exc
    return MlflowClient(tracking_uri=tracking_uri)


def _mlflow_metrics(metrics, step):
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    return [Metric(key, value, timestamp, step) for key, value in metrics.items()]


def _experiment_id(client, name):
    """The id of experiment ``name``, created if missing (by this fit or, at
    the same time, by another process)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # created meanwhile by a parallel fit
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


class TensorBoardLogger(Callback):
    """Log every epoch's history record to TensorBoard.

    At each epoch's end, every number of its record (``train_loss``,
    ``valid_loss``, ``valid_score``, ``lr``, ``duration``, and
    ``supervised_loss`` / ``adaptation_loss`` for domain adaptation; those
    that are set) is written as a scalar of that name, at the step
    ``record["epoch"]`` (from 1, counting on across ``warm_start`` fits).

    Needs tensorboard (``pip install tensorboard``), imported when a fit begins.

    Parameters
    ----------
    log_dir : str or path-like, default="runs"
        The folder of the event files, created when a fit begins (not before:
        the logger copies and clones like any parameter). Each fit adds an event
        file; give each run (each candidate of a grid search) its own folder to
        see them apart in TensorBoard.

    See Also
    --------
    MLflowLogger : The same records in an MLflow run.

    Examples
    --------
    >>> from sktransfer import FineTuneClassifier
    >>> from sktransfer.training import TensorBoardLogger
    >>> clf = FineTuneClassifier(callbacks=[TensorBoardLogger("runs/lite0")])
    """

    main_process_only = True  # writes: rank 0 only

    def __init__(self, log_dir="runs"):
        self.log_dir = log_dir

    def check_params(self, **kwargs):
        check_folder(self, "log_dir", self.log_dir)

    def on_fit_begin(self, state, **kwargs):
        self._writer = _summary_writer(self.log_dir)

    def on_epoch_end(self, state, **kwargs):
        record = state.history[-1]
        for key, value in epoch_metrics(record).items():
            self._writer.add_scalar(key, value, record["epoch"])
        self._writer.flush()  # a live TensorBoard sees each epoch as it ends

    def on_fit_end(self, state, **kwargs):
        writer = self.__dict__.pop("_writer", None)
        if writer is not None:
            writer.close()


class MLflowLogger(Callback):
    """Log every epoch's history record to an MLflow run.

    Each fit is a new run of ``experiment_name``; at each epoch's end every
    number of its record (as for :class:`TensorBoardLogger`) is logged as a
    metric of that name at the step ``record["epoch"]``. The run ends
    ``FINISHED``, ``KILLED`` after a KeyboardInterrupt, or ``FAILED`` when the
    fit raised an error. The logger talks to the tracking server through an
    :class:`mlflow.tracking.MlflowClient`, not MLflow's active run, which it
    leaves alone.

    Needs mlflow (``pip install mlflow``, or the lighter ``mlflow-skinny``),
    imported when a fit begins.

    Parameters
    ----------
    experiment_name : str or None, default=None
        Created if missing. None: the ``MLFLOW_EXPERIMENT_NAME`` environment
        variable, or MLflow's ``"Default"`` experiment.
    tracking_uri : str or None, default=None
        Where runs are stored: a server (``"http://localhost:5000"``), a
        database (``"sqlite:///mlflow.db"``), or a folder
        (``"file:/path/to/mlruns"``, which MLflow 3 refuses unless the
        environment variable ``MLFLOW_ALLOW_FILE_STORE=true`` is set). None:
        MLflow's default (the ``MLFLOW_TRACKING_URI`` environment variable, or
        a store in the working directory: ``mlflow.db`` in recent versions).
    run_name : str or None, default=None
        The name of each run; None lets MLflow pick one.

    See Also
    --------
    TensorBoardLogger : The same records as TensorBoard scalars.

    Examples
    --------
    >>> from sktransfer import FineTuneClassifier
    >>> from sktransfer.training import MLflowLogger
    >>> clf = FineTuneClassifier(callbacks=[
    ...     MLflowLogger(experiment_name="lite0", tracking_uri="sqlite:///mlflow.db")])
    """

    main_process_only = True  # writes: rank 0 only

    def __init__(self, *, experiment_name=None, tracking_uri=None, run_name=None):
        self.experiment_name = experiment_name
        self.tracking_uri = tracking_uri
        self.run_name = run_name

    def check_params(self, **kwargs):
        for name in ("experiment_name", "tracking_uri", "run_name"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"MLflowLogger({name}={value!r}): must be a str or None.")

    def on_fit_begin(self, state, **kwargs):
        client = _mlflow_client(self.tracking_uri)
        name = (self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
                or "Default")
        run = client.create_run(_experiment_id(client, name), run_name=self.run_name)
        self._client, self._run_id = client, run.info.run_id

    def on_epoch_end(self, state, **kwargs):
        record = state.history[-1]
        metrics = _mlflow_metrics(epoch_metrics(record), record["epoch"])
        self._client.log_batch(self._run_id, metrics=metrics)

    def on_fit_end(self, state, **kwargs):
        client = self.__dict__.pop("_client", None)
        run_id = self.__dict__.pop("_run_id", None)
        if client is not None:
            status = ("FAILED" if state.error is not None
                      else "KILLED" if state.interrupted else "FINISHED")
            client.set_terminated(run_id, status=status)

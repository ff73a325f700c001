"""TrainingHistoryDisplay (``plotting/_history.py``): the lines are the recorded
values, from a history, a fitted estimator or a Pipeline; ax= handling."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import FineTuneClassifier  # noqa: E402
from sktransfer.plotting import TrainingHistoryDisplay  # noqa: E402

from plot_data import blobs, hand_history  # noqa: E402


def test_history_lines_are_the_recorded_values():
    history = hand_history()
    display = TrainingHistoryDisplay.from_history(history, name="DA")
    assert list(display.axes_) == ["loss", "adaptation", "score", "lr"]
    assert sorted(display.lines_) == ["adaptation_loss", "lr", "supervised_loss",
                                      "train_loss", "valid_loss", "valid_score"]
    epochs = [r["epoch"] for r in history]
    for key, line in display.lines_.items():
        expected = [np.nan if r[key] is None else r[key] for r in history]
        np.testing.assert_array_equal(line.get_xdata(), epochs)
        np.testing.assert_allclose(line.get_ydata(), expected)
    loss_ax = display.axes_["loss"]
    assert display.ax_ is loss_ax
    assert len(loss_ax.get_lines()) == 3  # train, supervised, validation
    assert len(display.axes_["adaptation"].get_lines()) == 1
    assert display.lines_["adaptation_loss"].axes is display.axes_["adaptation"]
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert labels == ["train loss", "supervised loss (train)", "validation loss"]
    assert display.axes_["lr"].get_yscale() == "linear"  # 1e-3..5e-3: no decade
    assert display.figure_._suptitle.get_text() == "DA"
    for panel_ax in display.axes_.values():
        assert panel_ax.get_xlabel() == "epoch" and panel_ax.figure is display.figure_


def test_history_without_validation_or_adaptation_draws_two_panels():
    history = [{"epoch": e, "train_loss": 1.0 / e, "valid_loss": None,
                "valid_score": None, "lr": 10.0 ** -e, "duration": 0.1}
               for e in (1, 2, 3)]
    display = TrainingHistoryDisplay.from_history(history)
    assert list(display.axes_) == ["loss", "lr"]
    assert sorted(display.lines_) == ["lr", "train_loss"]
    assert display.axes_["lr"].get_yscale() == "log"
    assert display.axes_["loss"].get_legend() is None  # one line: no legend
    with pytest.raises(ValueError, match="no values recorded.*score"):
        TrainingHistoryDisplay.from_history(history, panels=["score"])
    with pytest.raises(ValueError, match="unknown panels"):
        TrainingHistoryDisplay.from_history(history, panels=["accuracy"])
    with pytest.raises(ValueError, match="empty"):
        TrainingHistoryDisplay.from_history([])


def test_history_from_fitted_domain_adapt_classifier(adapted):
    _, after, *_ = adapted
    display = TrainingHistoryDisplay.from_estimator(after)
    history = after.history_
    assert len(history) == 3
    np.testing.assert_allclose(display.lines_["train_loss"].get_ydata(),
                               [r["train_loss"] for r in history])
    np.testing.assert_allclose(display.lines_["lr"].get_ydata(),
                               [r["lr"] for r in history])
    np.testing.assert_array_equal(display.lines_["train_loss"].get_xdata(), [1, 2, 3])
    for key in ("supervised_loss", "adaptation_loss"):  # when the history has them
        if key in history[0]:
            np.testing.assert_allclose(display.lines_[key].get_ydata(),
                                       [r[key] for r in history])
        else:
            assert key not in display.lines_
    assert ("adaptation" in display.axes_) == ("adaptation_loss" in history[0])
    assert "valid_loss" not in display.lines_  # no early stopping: no validation
    assert display.figure_._suptitle.get_text() == "DomainAdaptClassifier"


def test_history_from_finetune_with_validation_and_pipeline():
    X_source, y, _ = blobs()
    pipe = make_pipeline(StandardScaler(), FineTuneClassifier(
        model=None, epochs=3, early_stopping=True, patience=5, device="cpu",
        random_state=0)).fit(X_source, y)
    display = TrainingHistoryDisplay.from_estimator(pipe)
    history = pipe[-1].history_
    assert list(display.axes_) == ["loss", "score", "lr"]
    np.testing.assert_allclose(display.lines_["valid_score"].get_ydata(),
                               [r["valid_score"] for r in history])
    np.testing.assert_allclose(display.lines_["valid_loss"].get_ydata(),
                               [r["valid_loss"] for r in history])


def test_history_honours_ax():
    history = hand_history()
    _, ax = plt.subplots()
    display = TrainingHistoryDisplay.from_history(history, ax=ax, panels=["loss"])
    assert display.ax_ is ax and display.axes_ == {"loss": ax}
    assert display.figure_ is ax.figure and display.bounding_ax_ is None
    assert len(ax.get_lines()) == 3

    fig, ax = plt.subplots()  # one Axes, several panels: its area is split
    display = TrainingHistoryDisplay.from_history(history, ax=ax, panels=["loss", "lr"])
    assert display.bounding_ax_ is ax and not ax.axison
    assert all(a.figure is fig and a is not ax for a in display.axes_.values())

    fig, axes = plt.subplots(1, 2)
    display = TrainingHistoryDisplay.from_history(history, ax=axes,
                                                  panels=["score", "lr"])
    assert display.axes_["score"] is axes[0] and display.axes_["lr"] is axes[1]
    assert display.lines_["lr"].axes is axes[1]
    with pytest.raises(ValueError, match="at least 4 Axes"):
        TrainingHistoryDisplay.from_history(history, ax=axes)

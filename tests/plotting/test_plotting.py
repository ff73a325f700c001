"""sktransfer.plotting as a whole (``plotting/_base.py``): scikit-learn's
ConfusionMatrixDisplay, the missing-matplotlib error, the docstring examples."""

import doctest
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from sktransfer.plotting import (  # noqa: E402
    ConfusionMatrixDisplay,
    DomainShiftDisplay,
    TopLossesDisplay,
    TrainingHistoryDisplay,
)

from plot_data import hand_history, proba_task  # noqa: E402

INSTALL = 'pip install "sktransfer[plot]"'


def test_confusion_matrix_display_is_sklearns(adapted):
    import sklearn.metrics

    assert ConfusionMatrixDisplay is sklearn.metrics.ConfusionMatrixDisplay
    _, after, X_source, y_source, _ = adapted
    display = ConfusionMatrixDisplay.from_estimator(after, X_source, y_source)
    assert display.confusion_matrix.sum() == len(y_source)


# -- without matplotlib ------------------------------------------------------------

def test_missing_matplotlib_gives_a_clear_error(monkeypatch, adapted):
    _, after, X_source, y_source, X_target = adapted
    proba, classes, y_true = proba_task(n=4)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    calls = [
        lambda: TrainingHistoryDisplay.from_estimator(after),
        lambda: TrainingHistoryDisplay.from_history(hand_history()),
        lambda: TrainingHistoryDisplay([1], [1.0]).plot(),
        lambda: DomainShiftDisplay.from_estimator(after, X_source, X_target),
        lambda: DomainShiftDisplay.from_features(X_source, X_target),
        lambda: TopLossesDisplay.from_predictions(np.zeros((4, 4, 4)), y_true, proba,
                                                  classes),
        lambda: TopLossesDisplay.from_estimator(after, X_source, y_source),
    ]
    for call in calls:
        with pytest.raises(ImportError, match="requires matplotlib") as info:
            call()
        assert INSTALL in str(info.value)


def test_import_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import sktransfer.plotting as p\n"
            "assert not any(m.startswith('matplotlib.') for m in sys.modules)\n"
            "try:\n"
            "    p.TopLossesDisplay.from_predictions([], [], [], [])\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert INSTALL in result.stdout


# -- docstring examples ------------------------------------------------------------

@pytest.mark.parametrize("name", ["sktransfer.plotting._history",
                                  "sktransfer.plotting._domain_shift",
                                  "sktransfer.plotting._top_losses"])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS
                             | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("display", [DomainShiftDisplay, TrainingHistoryDisplay])
def test_shared_docstring_entries_are_filled_in(display):
    # The docstrings write "<<ax>>" and the like for entries kept once in _base.
    for documented in (display, display.plot):
        assert "<<" not in documented.__doc__
    assert "ax : matplotlib Axes or array-like of Axes" in display.plot.__doc__
    assert "bounding_ax_ : matplotlib Axes or None" in display.__doc__

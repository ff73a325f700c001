"""The public API carries type hints, and the package says so (PEP 561)."""

import inspect
import os
import typing

import pytest

import sktransfer
from sktransfer import DomainAdaptClassifier, FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import load_image_folder
from sktransfer.persistence import read_header

PUBLIC = [
    FineTuneClassifier.fit, FineTuneClassifier.partial_fit, FineTuneClassifier.predict,
    FineTuneClassifier.predict_proba, FineTuneClassifier.predict_log_proba,
    FineTuneClassifier.decision_function, FineTuneClassifier.transform,
    DomainAdaptClassifier.fit, DomainAdaptClassifier.score,
    PretrainedFeatureExtractor.fit, PretrainedFeatureExtractor.transform,
    sktransfer.save, sktransfer.load, read_header, load_image_folder,
]


@pytest.mark.parametrize("function", PUBLIC, ids=lambda f: f.__qualname__)
def test_public_functions_are_annotated(function):
    hints = typing.get_type_hints(function)  # resolves: no broken annotation
    parameters = [name for name in inspect.signature(function).parameters if name != "self"]
    assert "return" in hints
    assert set(parameters) <= set(hints), set(parameters) - set(hints)


def test_py_typed_marker_ships():
    assert os.path.isfile(os.path.join(os.path.dirname(sktransfer.__file__), "py.typed"))

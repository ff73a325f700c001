"""The Examples sections of the public docstrings run as doctests."""

import doctest
import importlib

import pytest

MODULES = [
    "sktransfer.feature_extraction._extractor",
    "sktransfer.classifiers.finetune",
    "sktransfer.datasets",
    "sktransfer.classifiers.domain_adapt",
    "sktransfer.metrics",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0

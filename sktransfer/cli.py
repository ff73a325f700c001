"""The ``sktransfer`` command line: ``extract``, ``fit``, ``predict`` and ``info``.

Run ``sktransfer --help`` (or ``python -m sktransfer --help``) and
``sktransfer <command> --help``; ``docs/cli.md`` shows a session.

The model decides what a command reads, never the strings: an image model
reads folders, images and files of image paths; a text model (``--model
all-MiniLM-L6-v2``, the default with ``--text-column``, or ``hf:<repo or
folder>``) reads a table's text column or a file of one text per line.

Exit codes: 0 on success, 2 for bad input (a missing or empty folder, one class
only, an image that does not decode, a missing column or an empty text, an
output that cannot be written, an unknown model, a file that is not an
sktransfer model, a bad option), with one
line on stderr naming the problem, 1 when a model is trained but cannot be
saved, and 130 when Ctrl-C interrupts a command. Anything else is a bug, and
shows its traceback.

Every file a command writes appears whole or not at all: it is written under a
temporary name in the same folder, then renamed over the output.

The estimators, torch, scikit-learn and pandas are imported inside the commands
that use them, not here: importing them takes seconds, and ``--help``,
``--version`` and a bad option should answer at once.
"""

import argparse
import contextlib
import json
import math
import os
import pathlib
import re
import sys
import time
import warnings

from ._utils.files import replacing
from ._version import __version__

#: The exit code of a bad input (argparse's code for a bad option).
EXIT_BAD_INPUT = 2
#: The exit code of a failure that is not the input's fault.
EXIT_FAILURE = 1
#: The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

_FEATURE_FORMATS = (".parquet", ".npy", ".csv")
#: Tables that text commands read, by suffix (``--text-column`` names the column).
_TABLE_FORMATS = (".csv", ".tsv", ".parquet")
#: ``--model`` when it is not given: an image model, or a text model when the
#: command is given a text column.
_IMAGE_MODEL = "efficientnet_lite0"
_TEXT_MODEL = "all-MiniLM-L6-v2"
#: Probabilities in predict's CSV: six significant digits.
_PROBABILITY_FORMAT = "%.6g"


class BadInput(Exception):
    """What the user gave cannot be used: one line on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class Failure(Exception):
    """The job could not be done for another reason: one line, exit code 1."""

    exit_code = EXIT_FAILURE


class Interrupted(Exception):
    """Ctrl-C stopped the command, which says what it left: exit code 130."""

    exit_code = EXIT_INTERRUPTED


def _one_line(exc):
    """The message of ``exc`` on one line, without the API's prefixes (``X[3] = ``,
    ``load_image_folder: ``) that mean nothing on the command line."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^load_image_folder: ", "", text)
    text = re.sub(r"^X\[\d+\] = ", "", text)
    return text or type(exc).__name__


@contextlib.contextmanager
def _bad_input(prefix=""):
    """Turn the errors that sktransfer raises for bad data or parameters
    (ValueError, OSError) into :class:`BadInput`."""
    try:
        yield
    except (BadInput, Failure, Interrupted):
        raise
    except (ValueError, OSError) as exc:
        raise BadInput(prefix + _one_line(exc)) from exc


# -- option types --------------------------------------------------------------
def _weights(text):
    """``none`` (any case) is random initialisation; a checkpoint path (one with a
    path separator or a checkpoint suffix such as ``.pth``) becomes a
    ``pathlib.Path``, as the API wants it; anything else is a weights name."""
    if text.lower() == "none":
        return None
    if text == "DEFAULT":  # answered without importing torch
        return text
    from .backbones._factory import looks_like_path

    return pathlib.Path(text) if looks_like_path(text) else text


def _image_size(text):
    """``224`` (shorter side, centre crop) or ``224x160`` (height x width)."""
    parts = text.lower().split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: give an int (224) or HEIGHTxWIDTH (224x160)"
        ) from None
    if len(numbers) > 2 or min(numbers) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: give an int (224) or HEIGHTxWIDTH (224x160)")
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def _number(convert, accepts, what):
    """An argparse type: ``convert(text)`` when ``accepts`` it, else an error
    saying the text is not ``what``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accepts(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_positive = _number(int, lambda v: v >= 1, "a positive integer")
_count = _number(int, lambda v: v >= 0, "a non-negative integer")
_seed = _number(int, lambda v: 0 <= v < 2**32, f"a seed: an integer from 0 to {2**32 - 1}")


def _freeze(text):
    """``backbone``, ``none`` or a number of stages, as FineTuneClassifier's
    ``freeze`` takes them."""
    if text.lower() in ("backbone", "none"):
        return text.lower()
    try:
        return _count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not backbone, none or a number of stages") from None


#: FineTuneClassifier's defaults of the parameters that fit's training options
#: set, which their help shows. The options default to None (not given): only
#: those given are passed, and refused with ``--estimator features``.
#: (``--freeze none`` is not passed: the estimator trains everything by default.)
_TRAINING = {"unfreeze_after": None, "augment": "default", "early_stopping": False,
             "patience": 3}
#: fit's options that train the network, as the estimators name them.
_TRAINING_OPTIONS = ("freeze", "unfreeze_after", "augment", "early_stopping",
                     "patience", "epochs", "lr")
#: fit's --estimator that learns numbers (FineTuneRegressor), and those that
#: train the network (the training options apply to them).
_REGRESSOR = "finetune-regressor"
#: Names of pickles, which fit's safe file is not.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck")
_TRAINED = ("finetune", _REGRESSOR)


# -- inputs --------------------------------------------------------------------
def read_images(source, *, model_fitted=False):
    """The image paths that ``source`` names, and their labels.

    Parameters
    ----------
    source : str
        A folder of class subfolders (``root/<class>/<image>``, read with
        :func:`sktransfer.datasets.load_image_folder`), a flat folder of images
        (sorted by name, hidden files skipped), an image file, or a text file
        listing one image path per line (blank lines and lines starting with
        ``#`` skipped; relative paths are relative to the working directory).
    model_fitted : bool, default=False
        Whether the paths are read for a fitted model's ``predict`` (the advice
        of the error for a line that is not a file: a text model cannot be
        chosen there).

    Returns
    -------
    paths : list of str
    labels : list of str or None
        The class of each path when ``source`` has class subfolders, else None.

    Raises
    ------
    BadInput
        When ``source`` does not exist, holds no image, has an empty class
        folder or lists a file that does not exist.
    """
    from .datasets import (IMAGE_EXTENSIONS, is_image_name, list_image_files,
                           load_image_folder)

    if not os.path.exists(source):
        raise BadInput(f"{source!r} does not exist")
    if os.path.isdir(source):
        with _bad_input(), os.scandir(source) as entries:
            has_classes = any(e.is_dir() and not e.name.startswith(".") for e in entries)
        if has_classes:
            with _bad_input():
                paths, labels = load_image_folder(source)
            return list(paths), [str(label) for label in labels]
        with _bad_input():
            paths = list_image_files(source)
        if not paths:
            raise BadInput(f"{source!r} holds no image: no class subfolder and no file "
                           f"ending with {', '.join(IMAGE_EXTENSIONS)}")
        return paths, None
    if is_image_name(source):
        return [source], None
    try:
        with open(source, encoding="utf-8-sig") as file:
            lines = file.read().splitlines()
    except UnicodeDecodeError:
        raise BadInput(f"{source!r} is neither an image nor a text file of image "
                       "paths (one per line)") from None
    except OSError as exc:
        raise BadInput(f"cannot read {source!r}: {exc.strerror or exc}") from None
    paths = []
    for number, line in enumerate(lines, 1):
        path = line.strip()
        if not path or path.startswith("#"):
            continue
        if os.path.isdir(path):
            raise BadInput(f"{path!r} (line {number} of {source!r}) is a folder: a "
                           "list names image files, one per line; give the folder "
                           "itself as an input instead")
        if not os.path.isfile(path):
            advice = ("this model reads images; to predict texts, fit a model on "
                      "texts (sktransfer fit ... --text-column)" if model_fitted else
                      f"read it with a text model: --model {_TEXT_MODEL}")
            raise BadInput(f"{path!r} (line {number} of {source!r}) does not exist; if "
                           f"{source!r} holds texts, not image paths, {advice}")
        paths.append(path)
    if not paths:
        raise BadInput(f"{source!r} lists no image path")
    return paths, None


def read_image_table(source, *, image_column, label_column=None):
    """The image paths that a table's ``image_column`` lists, and its labels.

    Parameters
    ----------
    source : str
        A table (``.csv``, ``.tsv`` or ``.parquet``). A relative path is
        relative to the table's folder, so a table travels with its images.
    image_column : str
        The column of image paths.
    label_column : str or None
        The column of labels or target values (read as strings), or None.

    Returns
    -------
    paths : list of str
    labels : list of str or None

    Raises
    ------
    BadInput
        When ``source`` is not a table, a column is missing, a cell is missing
        or empty, or a path names no file (the message names its row).
    """
    if not os.path.exists(source):
        raise BadInput(f"{source!r} does not exist")
    if not source.lower().endswith(_TABLE_FORMATS) or os.path.isdir(source):
        raise BadInput(f"--image-column names a column of a table "
                       f"({', '.join(_TABLE_FORMATS)}); {source!r} is not one")
    cells, labels = _read_table(source, image_column, label_column,
                                option="--image-column")
    folder = os.path.dirname(source)
    paths = []
    for row, cell in enumerate(cells, 1):
        path = os.path.join(folder, cell)
        if not os.path.isfile(path):
            raise BadInput(f"row {row} of {source!r}, column {image_column!r}: "
                           f"{path!r} does not exist (relative paths are relative to "
                           "the table's folder)")
        paths.append(path)
    return paths, labels


def _read_all(sources, image_column=None, label_column=None, *, model_fitted=False):
    """:func:`read_images` (:func:`read_image_table` with an ``image_column``)
    of several sources, concatenated; labels only when every source has them.
    ``model_fitted``: the sources are read for a fitted model's ``predict``."""
    paths, labels = [], []
    for source in sources:
        more, more_labels = (read_images(source, model_fitted=model_fitted)
                             if image_column is None else
                             read_image_table(source, image_column=image_column,
                                              label_column=label_column))
        paths += more
        labels = None if labels is None or more_labels is None else labels + more_labels
    return paths, labels


def read_texts(source, *, text_column=None, label_column=None, fitted_column=None):
    """The texts that ``source`` holds, and their labels.

    Parameters
    ----------
    source : str
        A table (``.csv``, ``.tsv`` or ``.parquet``; every CSV cell is read as a
        string, so ``NA`` is a text, not a missing value) or any other file,
        read as UTF-8 text of one text per line.
    text_column : str or None
        The table's column of texts; None for a table of one column, or for
        a table that has ``fitted_column``.
    label_column : str or None
        The table's column of labels (read as strings), or None.
    fitted_column : str or None
        The column of texts a model was fitted on (its ``feature_names_in_``):
        the one read from a table of several columns when ``text_column`` is
        None.

    Returns
    -------
    texts : list of str
    labels : list of str or None

    Raises
    ------
    BadInput
        When ``source`` does not exist or is a folder or an image, a column is
        missing (the message lists the table's columns), a cell is missing or
        empty, or a line of a text file is empty (the message names its row or
        line, counted from 1; a table's rows are counted under its header).
    """
    from .datasets import is_image_name

    if not os.path.exists(source):
        raise BadInput(f"{source!r} does not exist")
    if os.path.isdir(source) or is_image_name(source):
        what = "a folder" if os.path.isdir(source) else "an image"
        raise BadInput(f"{source!r} is {what}, and the model reads text: give a table "
                       f"({', '.join(_TABLE_FORMATS)}) with --text-column, or a file of "
                       "one text per line")
    if source.lower().endswith(_TABLE_FORMATS):
        return _read_table(source, text_column, label_column, fitted_column)
    if text_column is not None or label_column is not None:
        raise BadInput(f"{source!r} is not a table ({', '.join(_TABLE_FORMATS)}): "
                       "--text-column and --label-column name a table's columns; a "
                       "file of one text per line has neither")
    try:  # universal newlines: \r\n ends a line; other separators stay in the text
        with open(source, encoding="utf-8-sig") as file:
            lines = file.read().split("\n")
    except UnicodeDecodeError:
        raise BadInput(f"{source!r} is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"cannot read {source!r}: {exc.strerror or exc}") from None
    if lines[-1] == "":  # the last line's newline
        lines.pop()
    if not lines:
        raise BadInput(f"{source!r} holds no text")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise BadInput(f"line {number} of {source!r} is empty: the file holds one "
                           "text per line")
    return lines, None


def _read_table(source, text_column, label_column, fitted_column=None,
                option="--text-column"):
    """:func:`read_texts` of a table."""
    import pandas as pd

    try:
        if source.lower().endswith(".parquet"):
            frame = pd.read_parquet(source)
        else:
            frame = pd.read_csv(source, sep="\t" if source.lower().endswith(".tsv")
                                else ",", dtype=str, keep_default_na=False,
                                encoding="utf-8")
    except ImportError:
        raise BadInput(f"reading {source!r} needs pyarrow: pip install pyarrow, or "
                       "give a .csv") from None
    except UnicodeDecodeError:
        raise BadInput(f"{source!r} is not UTF-8 text") from None
    except (ValueError, OSError) as exc:  # pandas' ParserError is a ValueError
        raise BadInput(f"cannot read {source!r} as a table: {_one_line(exc)}") from None
    frame.columns = columns = [str(column) for column in frame.columns]
    if text_column is None and len(columns) != 1 and fitted_column in columns:
        text_column = fitted_column  # the column the model was fitted on
    if text_column is None:
        if len(columns) != 1:
            fitted = ("" if fitted_column is None else
                      f" (the model was fitted on the column {fitted_column!r}, which "
                      "it lacks)")
            raise BadInput(f"{source!r} has the columns {_names(columns, 20)}{fitted}: "
                           "say which holds the texts with --text-column")
        text_column = columns[0]
    for name, column in ((option, text_column), ("--label-column", label_column)):
        if column is not None and column not in columns:
            raise BadInput(f"{source!r} has no column {column!r} ({name}); its "
                           f"columns: {_names(columns, 20)}")
    if len(frame) == 0:
        raise BadInput(f"{source!r} has no rows")
    texts = _cells(frame[text_column], source, text_column, text=True)
    labels = None if label_column is None else \
        _cells(frame[label_column], source, label_column, text=False)
    return texts, labels


def _cells(column, source, name, *, text):
    """The cells of a table's ``column`` as strings; a missing or empty cell (a
    non-string text) is refused, naming its row."""
    import pandas as pd

    cells = column.tolist()
    for row, value in enumerate(cells, 1):
        where = f"row {row} of {source!r}, column {name!r}"
        # None, NaN, and pandas' NA and NaT of nullable and datetime columns
        if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
            raise BadInput(f"{where}: the cell is missing (empty or NaN)")
        if isinstance(value, str) and not value.strip():
            raise BadInput(f"{where}: the cell is empty")
        if text and not isinstance(value, str):
            raise BadInput(f"{where}: {value!r:.40} is a {type(value).__name__}, "
                           "not a text")
    return cells if text else [str(value) for value in cells]


def _read_all_texts(sources, text_column, label_column, fitted_column=None):
    """:func:`read_texts` of several sources, concatenated."""
    texts, labels = [], []
    for source in sources:
        more, more_labels = read_texts(source, text_column=text_column,
                                       label_column=label_column,
                                       fitted_column=fitted_column)
        texts += more
        labels = None if labels is None or more_labels is None else labels + more_labels
    return texts, labels


def _modality(model):
    """What ``model`` (a ``--model`` value) reads: ``"image"`` or ``"text"``."""
    from .backbones._factory import backbone_modality

    return backbone_modality(model)


def _resolve_model(args):
    """Set ``args.model`` (its default follows the input: a text model when a
    column is named) and return whether the command reads texts; an image model
    given a text column is refused."""
    columns = [f"--{name.replace('_', '-')}" for name in ("text_column", "label_column")
               if getattr(args, name, None) is not None]
    images = getattr(args, "image_column", None) is not None
    if images and args.text_column is not None:
        raise BadInput("--image-column and --text-column: a table holds images or texts; "
                       "name one")
    if getattr(args, "model", None) is None:
        args.model = _TEXT_MODEL if columns and not images else _IMAGE_MODEL
    text = _modality(args.model) == "text"
    if images and text:
        raise BadInput(f"--image-column names a table's column of image paths, but "
                       f"--model {args.model!r} is a text model")
    if images:
        return False
    if columns and not text:
        raise BadInput(f"{' and '.join(columns)} {_name_verb(columns)} a table's "
                       f"columns of texts, but --model {args.model!r} is not a text model: use "
                       f"{_TEXT_MODEL} (the default with --text-column) or "
                       "hf:<repo or folder>")
    return text


def _name_verb(options):
    return "names" if len(options) == 1 else "name"


def _text_layer(layer):
    """A text model's ``--layer``: the index of a hidden state."""
    if layer is None:
        return None
    try:
        return int(layer)
    except ValueError:
        raise BadInput(f"--layer {layer!r}: a text model's layer is the index of a "
                       "hidden state, an integer (0: the embeddings)") from None


# -- outputs -------------------------------------------------------------------
#: Suffixes of data files, which a model written by fit must not take.
_NOT_MODEL_SUFFIXES = (".csv", ".tsv", ".parquet", ".npy", ".npz", ".txt", ".json")


def _given(inputs):
    """The command's input paths as a list (one, or several)."""
    return [inputs] if isinstance(inputs, str) else list(inputs)


def _check_not_an_input(path, inputs):
    """Refuse an output (or a ``.npy``'s companion file) that would replace
    what the command reads: an input file itself, or an image inside an input
    folder. Other files in an input folder are not read, and may be written
    (``-o photos/features.csv``, then again)."""
    from .datasets import is_image_name

    written = [path]
    if path.lower().endswith(".npy"):
        written += [_sidecar(path, "paths"), _sidecar(path, "labels")]
    for output in written:
        if not os.path.isfile(output):
            continue
        for given in inputs:
            if not os.path.exists(given):
                continue  # refused, naming it, when it is read
            if os.path.isdir(given):
                folder = os.path.realpath(given)
                if not (is_image_name(output) and os.path.commonpath(
                        [folder, os.path.realpath(output)]) == folder):
                    continue
                what = f"an image of the input folder {given!r}"
            elif os.path.samefile(given, output):
                what = f"the input {given!r}"
            else:
                continue
            raise BadInput(f"-o {path!r} would write over {what}"
                           + ("" if output == path else f" (as {output!r})")
                           + ": write the output elsewhere")


def _check_output(path, formats=None, *, stdout=False, inputs=()):
    """Refuse, before any work, an output that cannot be written, or that
    would replace what the command reads of its ``inputs``
    (:func:`_check_not_an_input`)."""
    if path == "-" and stdout:
        return
    if not path:
        raise BadInput("-o is empty: give the file to write")
    _check_not_an_input(path, inputs)
    if formats is not None and not path.lower().endswith(formats):
        raise BadInput(f"cannot tell the format of {path!r}: its name must end with "
                       f"{' or '.join(formats)}")
    if path.lower().endswith(".parquet"):
        try:
            import pyarrow  # noqa: F401  (pandas writes parquet with it)
        except ImportError:
            raise BadInput(f"writing {path!r} needs pyarrow: pip install pyarrow, or "
                           "write .npy or .csv") from None
    if os.path.isdir(path):
        raise BadInput(f"cannot write {path!r}: it is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BadInput(f"cannot write {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path)
                                          and not os.access(path, os.W_OK)):
        raise BadInput(f"cannot write {path!r}: permission denied")


@contextlib.contextmanager
def _writing(path):
    """:func:`~sktransfer._utils.files.replacing` (durable), with an OSError
    reported as a :class:`BadInput` naming ``path``."""
    try:
        with replacing(path, durable=True) as temporary:
            yield temporary
    except OSError as exc:
        raise BadInput(f"cannot write {path!r}: {exc.strerror or exc}") from exc


def _size(nbytes):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def _sidecar(path, what):
    """``features.npy`` -> ``features.paths.txt``."""
    return os.path.splitext(path)[0] + f".{what}.txt"


def _write_lines(path, values):
    with _writing(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
        file.writelines(f"{value}\n" for value in values)


def _sidecars(path, labels, *, text):
    """The files that go beside a ``.npy`` of features: the paths of images (texts,
    which may hold line breaks, follow the rows of the input instead) and the
    labels."""
    if not path.lower().endswith(".npy"):
        return []
    return ([] if text else [_sidecar(path, "paths")]) + (
        [_sidecar(path, "labels")] if labels is not None else [])


def _write_features(path, features, inputs, labels, *, text=False):
    """Features to ``path``; ``inputs`` are the image paths or the texts."""
    import numpy as np

    if path.lower().endswith(".npy"):
        # np.save(name) would add ".npy" to ".NPY" (and to a temporary name)
        with _writing(path) as temporary, open(temporary, "wb") as file:
            np.save(file, features)
        if not text:
            _write_lines(_sidecar(path, "paths"), inputs)
        if labels is not None:
            _write_lines(_sidecar(path, "labels"), labels)
        # A companion that this .npy has not, left by a former .npy of the same
        # name, describes other rows: removed with the matrix it went with.
        for what in [*(["paths"] if text else []), *(["labels"] if labels is None else [])]:
            stale = _sidecar(path, what)
            if os.path.islink(stale) or os.path.isfile(stale):
                os.remove(stale)  # a link itself, not what it points to
        return
    import pandas as pd

    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
    if labels is not None:
        frame.insert(0, "label", labels)
    frame.insert(0, "text" if text else "path", inputs)
    with _writing(path) as temporary:
        if path.lower().endswith(".parquet"):
            frame.to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False)


# -- estimators ----------------------------------------------------------------
def _progress(args):
    return sys.stderr.isatty() if args.progress is None else args.progress


def _parts(estimator):
    """The steps of a Pipeline, or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    return [step for _, step in steps] if steps is not None else [estimator]


def _configure(estimator, *, progress, **values):
    """Set ``device``, ``batch_size``, ``num_workers`` (when given) and the
    progress bars on sktransfer's estimators in ``estimator``."""
    from .persistence import SAFE_CLASSES

    for part in _parts(estimator):
        if not isinstance(part, tuple(SAFE_CLASSES.values())):
            continue
        params = part.get_params(deep=False)
        updates = {k: v for k, v in values.items() if k in params and v is not None}
        if "progress" in params:
            updates["progress"] = progress
        if "verbose" in params:
            updates["verbose"] = 1 if progress else 0
        part.set_params(**updates)


def _network_options(parser, *, layer=False):
    group = parser.add_argument_group("network")
    group.add_argument("--model", default=argparse.SUPPRESS,
                       help=f"backbone: an image model ({_IMAGE_MODEL}, the default; "
                            "simple_cnn, a torchvision name such as resnet50, "
                            f"timm:<name>) or a text model ({_TEXT_MODEL}, the default "
                            "with --text-column; hf:<repo or folder>)")
    group.add_argument("--weights", type=_weights, default="DEFAULT",
                       help="DEFAULT, a torchvision weights name (IMAGENET1K_V2), a "
                            "checkpoint path (with a '/' or a suffix such as .pth: "
                            "./weights), or 'none' for random initialisation")
    if layer:
        group.add_argument("--layer", default=None,
                           help="an inner layer to take features from (sktransfer "
                                "layers MODEL lists them; a text model's hidden-state "
                                "index, 0 the embeddings); default: the penultimate "
                                "features")
    group.add_argument("--image-size", type=_image_size, default=None, metavar="SIZE",
                       help="resize the shorter side and crop the centre SIZE square, "
                            "or HEIGHTxWIDTH; default: the weights' own preprocessing")
    group.add_argument("--max-length", type=_positive, default=None, metavar="N",
                       help="text models: tokens kept per text (longer texts are "
                            "truncated, with a warning); default: the model's own")
    _run_options(parser)
    group.add_argument("--random-state", type=_seed, default=0, metavar="SEED",
                       help="seed of the random initialisation (--weights none), of "
                            "the training and of the validation split")


def _run_options(parser, *, defaults=True):
    group = parser.add_argument_group("running")
    group.add_argument("--batch-size", type=_positive,
                       default=64 if defaults else None, metavar="N",
                       help="images or texts per forward pass")
    group.add_argument("--num-workers", type=_count,
                       default=0 if defaults else None, metavar="N",
                       help="DataLoader workers that decode the images (tokenize the "
                            "texts)")
    group.add_argument("--device", default="auto" if defaults else None,
                       help="auto (CUDA when available), cpu, cuda, cuda:1, mps")
    group.add_argument("--progress", action=argparse.BooleanOptionalAction,
                       default=None,
                       help="show progress bars (default: when stderr is a terminal)")


# -- commands ------------------------------------------------------------------
def _read_inputs(args, text):
    """The inputs of extract and fit (paths or texts) and their labels."""
    if text:
        return read_texts(args.root, text_column=args.text_column,
                          label_column=args.label_column)
    if getattr(args, "image_column", None) is not None:
        return read_image_table(args.root, image_column=args.image_column,
                                label_column=args.label_column)
    return read_images(args.root)


def _extract(args, say):
    from .feature_extraction import PretrainedFeatureExtractor, feature_cache_info

    _check_output(args.output, _FEATURE_FORMATS, inputs=_given(args.root))
    text = _resolve_model(args)
    inputs, labels = _read_inputs(args, text)
    extractor = PretrainedFeatureExtractor(
        model=args.model, weights=args.weights,
        layer=_text_layer(args.layer) if text else args.layer,
        image_size=args.image_size, max_length=args.max_length,
        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
        progress=_progress(args), random_state=args.random_state, cache=args.cache)
    before = feature_cache_info()
    start = time.perf_counter()
    with _bad_input():
        features = extractor.fit_transform(inputs)
    elapsed = time.perf_counter() - start
    hits = feature_cache_info().hits - before.hits if args.cache else 0
    _write_features(args.output, features, inputs, labels, text=text)
    noun = ("text" if text else "image") + ("" if len(inputs) == 1 else "s")
    cached = f", {hits} from the cache" if args.cache else ""
    say(f"{len(inputs)} {noun}{cached}: {features.shape[1]} features each, in "
        f"{elapsed:.1f} s")
    sidecars = _sidecars(args.output, labels, text=text)
    say(f"wrote {' and '.join([args.output, *sidecars])}")
    return 0


def _training_parameters(args):
    """The parameters of FineTuneClassifier that the training options set: only
    those given, so that the others keep the estimator's defaults."""
    # Left unset (None), an option keeps the estimator's default.
    given = {name: getattr(args, name) for name in _TRAINING_OPTIONS
             if getattr(args, name) is not None}
    named = [*given, *(["save_interrupted"] if args.save_interrupted else [])]
    options = ", ".join("--" + name.replace("_", "-") for name in named)
    if named and args.estimator not in _TRAINED:
        raise BadInput(f"{options} {'applies' if len(named) == 1 else 'apply'} to "
                       "training the network: add --estimator finetune (--estimator "
                       "features keeps the network frozen)")
    if "patience" in given and not args.early_stopping:
        raise BadInput("--patience is how many epochs without improvement early "
                       "stopping waits: add --early-stopping")
    if given.get("freeze") == "none":
        del given["freeze"]  # the estimator's default: everything trains
    if given.get("augment") == "none":
        given["augment"] = None
    return given


def _make_estimator(args, options):
    if args.estimator in _TRAINED:
        from .classifiers import FineTuneClassifier, FineTuneRegressor

        cls = FineTuneRegressor if args.estimator == _REGRESSOR else FineTuneClassifier
        return cls(
            model=args.model, weights=args.weights, image_size=args.image_size, max_length=args.max_length,
            batch_size=args.batch_size,
            num_workers=args.num_workers, device=args.device,
            random_state=args.random_state, verbose=2 if _progress(args) else 1,
            **options)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from .feature_extraction import PretrainedFeatureExtractor

    return make_pipeline(
        PretrainedFeatureExtractor(
            model=args.model, weights=args.weights, image_size=args.image_size,
            max_length=args.max_length, batch_size=args.batch_size, num_workers=args.num_workers,
            device=args.device, progress=_progress(args),
            random_state=args.random_state),
        LogisticRegression(max_iter=1000))


def _split(paths, labels, fraction, seed, root, noun="images", *, stratify=True):
    """A hold-out, stratified unless ``stratify`` is False (numeric targets):
    (train paths, train labels, validation paths, validation labels); no
    validation when ``fraction`` is 0. ``noun`` names the rows (images or
    texts)."""
    if fraction == 0:
        return paths, labels, [], []
    from sklearn.model_selection import train_test_split

    if not stratify:
        n_validation = math.ceil(fraction * len(paths))
        if n_validation < 2 or len(paths) - n_validation < 2:
            raise BadInput(f"{root!r} has {len(paths)} {noun}: a validation share of "
                           f"{fraction} leaves fewer than 2 on a side; add {noun}, or "
                           "change --validation-fraction (0 skips validation)")
        train, validation, y_train, y_validation = train_test_split(
            paths, labels, test_size=fraction, random_state=seed)
        return train, y_train, validation, y_validation

    n, n_classes = len(paths), len(set(labels))
    n_validation = math.ceil(fraction * n)
    if n_validation < n_classes or n - n_validation < n_classes:
        raise BadInput(
            f"{root!r} has {n} {noun} of {n_classes} classes: a validation share of "
            f"{fraction} ({n_validation} {noun}) leaves too few for every class on each "
            f"side; add {noun}, or change --validation-fraction (0 skips validation)")
    try:
        train, validation, y_train, y_validation = train_test_split(
            paths, labels, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as exc:
        raise BadInput(f"cannot hold out a stratified validation share of {root!r}: "
                       f"{_one_line(exc)} (every class needs at least 2 {noun}, or "
                       "pass --validation-fraction 0)") from None
    return train, y_train, validation, y_validation


def _check_savable(model):
    """Refuse, before training, a model that the safe file cannot name (``hf:``
    models, timm's hub and folder sources): fit would train it, then fail to
    save it."""
    if not model.startswith(("hf:", "timm:")):
        return  # an unknown name is reported when the estimator builds it
    from .persistence._limits import backbone_problem

    problem = backbone_problem(model)
    if problem is not None:
        raise BadInput(f"fit saves the model with sktransfer.save, whose safe format "
                       f"cannot hold it: {problem}; train it in Python and save it "
                       "with joblib instead")


def _numbers(labels, args):
    """The regression targets of fit's ``labels`` (strings) as floats; a cell
    that is not a finite number is refused, naming its row."""
    values = []
    for row, label in enumerate(labels, 1):
        value = _number_or_none(label)
        if value is None:
            raise BadInput(f"row {row} of {args.root!r}, column {args.label_column!r}: "
                           f"{label!r:.40} is not a finite number, and --estimator "
                           f"{_REGRESSOR} learns numbers")
        values.append(value)
    return values


def _labeled_inputs(args, text):
    """fit's inputs, their labels (at least two classes) and the sorted classes;
    for the regressor, the inputs, their targets (floats) and None."""
    if args.estimator == _REGRESSOR and (args.label_column is None or not (
            text or args.image_column is not None)):
        raise BadInput(f"--estimator {_REGRESSOR} learns a number per input: give a "
                       f"table ({', '.join(_TABLE_FORMATS)}) with --image-column (or "
                       "--text-column, with a text model) and --label-column naming "
                       "its column of numbers")
    inputs, labels = _read_inputs(args, text)
    if args.estimator == _REGRESSOR:
        return inputs, _numbers(labels, args), None
    table = text or args.image_column is not None
    if labels is None and args.image_column is not None:
        raise BadInput("fit needs labels: name the table's column of labels with "
                       "--label-column")
    if labels is None and text:
        raise BadInput(f"fit needs labels: {args.root!r} is not a table with "
                       "--label-column (name the column of labels with --label-column)"
                       if args.root.lower().endswith(_TABLE_FORMATS) else
                       f"fit needs labels: {args.root!r} holds texts only; give a table "
                       f"({', '.join(_TABLE_FORMATS)}) with --text-column and "
                       "--label-column")
    if labels is None:
        raise BadInput(f"{args.root!r} has no class subfolder: fit needs a folder of "
                       "one subfolder per class (ROOT/<class>/<image>)")
    classes = sorted(set(labels))
    if len(classes) < 2:
        where = (f"column {args.label_column!r} holds one label" if table
                 else "has one class")
        need = ("labels" if table else "class subfolders")
        raise BadInput(f"{args.root!r} {where} only ({classes[0]!r}): fit needs at "
                       f"least 2 {need}")
    return inputs, labels, classes


def _fit(args, say):
    if args.output == "-":
        raise BadInput("fit saves the model to a file: give -o model.sktransfer")
    suffix = os.path.splitext(args.output)[1].lower()
    if suffix in _PICKLE_SUFFIXES:
        raise BadInput(f"-o {args.output!r}: fit writes a safe file that "
                       f"sktransfer.load reads, not the pickle that joblib.load "
                       f"expects of a {suffix} name: give -o model.sktransfer")
    from .datasets import is_image_name

    if suffix in _NOT_MODEL_SUFFIXES or is_image_name(args.output):
        raise BadInput(f"-o {args.output!r}: fit writes a model, and {suffix} names "
                       "another kind of file: give -o model.sktransfer")
    options = _training_parameters(args)
    _check_output(args.output, inputs=[args.root])
    text = _resolve_model(args)
    _check_savable(args.model)
    noun = "texts" if text else "images"
    inputs, labels, classes = _labeled_inputs(args, text)
    train, y_train, validation, y_validation = _split(
        inputs, labels, args.validation_fraction, args.random_state, args.root, noun,
        stratify=classes is not None)
    if not text:
        _check_decodable(validation)
    estimator = _make_estimator(args, options)
    if text and args.text_column is not None:
        import pandas as pd

        # As a one-column table, so that the model remembers the column's name
        # (``feature_names_in_``) and predict finds it in a table of several.
        train = pd.DataFrame({args.text_column: train})
    what = (f"{len(classes)} classes ({_names(classes)})" if classes is not None else
            f"targets from {min(labels):g} to {max(labels):g}")
    say(f"training {args.estimator} ({args.model}) on {len(train)} {noun} of "
        f"{what}, validating on {len(validation)}")
    start = time.perf_counter()
    with _bad_input():
        estimator.fit(train, y_train)
    elapsed = time.perf_counter() - start
    # FineTuneClassifier stops cleanly on Ctrl-C, keeping the last finished
    # epoch's weights, and says so in ``interrupted_``; a Pipeline lets the
    # KeyboardInterrupt through, to main.
    if args.estimator in _TRAINED and estimator.interrupted_:
        when = (f"after {estimator.n_iter_} epoch(s)" if estimator.epochs == "auto"
                else f"after {estimator.n_iter_} of {estimator.epochs} epochs")
        if not args.save_interrupted:
            raise Interrupted(f"{when}: nothing saved (--save-interrupted saves the "
                              "model of the last finished epoch)")
        _save(estimator, args.output)
        raise Interrupted(f"{when}: saved the model of the last finished epoch to "
                          f"{args.output}")
    say(f"trained in {elapsed:.1f} s")
    if validation:
        _configure(estimator, progress=_progress(args))  # bars while scoring
        if classes is None:
            with _bad_input():
                predicted = estimator.predict(validation)
            _say_regression(y_validation, predicted, say, "validation R²", noun)
        else:
            with _bad_input():
                accuracy = estimator.score(validation, y_validation)
            say(f"validation accuracy: {accuracy:.3f} ({len(validation)} {noun})")
    _save(estimator, args.output)
    say(f"saved {args.output} ({_size(os.path.getsize(args.output))})")
    return 0


def _check_decodable(paths):
    """Decode the images held out for validation before training: they are
    read only after it, and a bad one would then end the command with the
    trained model unsaved. (The training images are read in the first epoch.)"""
    from .inputs._sources import decode_image

    if len(paths) > 500:
        print(f"decoding the {len(paths)} held-out images first", file=sys.stderr,
              flush=True)
    for path in paths:
        try:
            decode_image(path, where=repr(path))
        except (ValueError, OSError) as exc:
            raise BadInput(f"{_one_line(exc)} (held out for validation, checked "
                           "before training)") from exc


def _save(estimator, path):
    """Save a trained ``estimator`` to ``path`` whole or not at all; any failure
    (a full disk included) is a :class:`Failure`: the input was fine."""
    from .persistence import save

    _configure(estimator, progress=False)  # the saved model shows no bars by default
    try:
        with replacing(path, durable=True) as temporary:
            save(estimator, temporary)
    except (OSError, TypeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            _one_line(exc)
        raise Failure(f"trained, but cannot save to {path!r}: {reason}") from exc


def _load_model(path):
    import warnings

    from .persistence import load

    if not os.path.exists(path):
        raise BadInput(f"{path!r} does not exist")
    if os.path.isdir(path):
        raise BadInput(f"{path!r} is a folder, not a model file")
    with warnings.catch_warnings():
        # A saved ``cache`` folder is dropped by load; the command line does not
        # use it, so that warning would only be noise.
        warnings.filterwarnings("ignore", message=r".*sets cache=", category=UserWarning)
        with _bad_input():
            return load(path)


def _predict(args, say):
    import numpy as np
    import pandas as pd

    _check_output(args.output, (".csv",), stdout=True,
                  inputs=[args.model, *_given(args.inputs)])
    model = _load_model(args.model)
    from .backbones._factory import estimator_reads_text

    text = estimator_reads_text(model)
    if args.image_column is not None and text:
        raise BadInput(f"--image-column names a table's column of image paths, but "
                       f"{args.model!r} is a model of texts")
    columns = [f"--{name.replace('_', '-')}" for name in ("text_column", "label_column")
               if getattr(args, name) is not None]
    if args.image_column is None and columns and not text:
        raise BadInput(f"{' and '.join(columns)} {_name_verb(columns)} a table's "
                       f"columns of texts, but {args.model!r} is a model of images "
                       "(a table of image paths: --image-column)")
    if text:
        # A model fitted on a table's named column finds it in a new table.
        fitted = getattr(model, "feature_names_in_", None)
        paths, labels = _read_all_texts(args.inputs, args.text_column, args.label_column,
                                        None if fitted is None else str(fitted[0]))
    else:
        paths, labels = _read_all(args.inputs, args.image_column, args.label_column,
                                  model_fitted=True)
    noun = "texts" if text else "images"
    _configure(model, progress=_progress(args), device=args.device,
               batch_size=args.batch_size, num_workers=args.num_workers)
    start = time.perf_counter()
    classes = np.asarray(getattr(model, "classes_", []))
    with _bad_input():
        if hasattr(model, "predict_proba") and len(classes):
            proba = np.asarray(model.predict_proba(paths))
            predicted = classes[proba.argmax(axis=1)]
        else:
            proba, predicted = None, np.asarray(model.predict(paths))
    elapsed = time.perf_counter() - start
    frame = pd.DataFrame({"text" if text else "path": paths})
    if labels is not None:
        frame["label"] = labels
    frame["predicted"] = predicted
    if proba is not None:
        for j, name in enumerate(classes):
            frame[f"proba_{name}"] = proba[:, j]
    if args.output == "-":
        frame.to_csv(sys.stdout, index=False, float_format=_PROBABILITY_FORMAT)
    else:
        with _writing(args.output) as temporary:
            frame.to_csv(temporary, index=False, float_format=_PROBABILITY_FORMAT)
    say(f"{len(paths)} {noun} predicted in {elapsed:.1f} s"
        + ("" if args.output == "-" else f": wrote {args.output}"))
    if labels is not None and not len(classes) and args.label_column is not None:
        targets = [_number_or_none(label) for label in labels]
        if None in targets:
            row = targets.index(None) + 1
            raise BadInput(f"row {row}, column {args.label_column!r}: "
                           f"{labels[row - 1]!r:.40} is not a finite number, and "
                           f"{args.model!r} predicts numbers")
        _say_regression(targets, predicted, say,
                        f"R² against the labels ({args.label_column!r})", noun)
    elif labels is not None and len(classes):
        _say_accuracy(labels, predicted, classes, say,
                      "the class folders" if not text and args.label_column is None
                      else f"the labels ({args.label_column!r})", noun)
    return 0


def _number_or_none(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _say_regression(targets, predicted, say, what, noun):
    """R² (``what`` names it) and the mean absolute error of numeric predictions
    against ``targets``."""
    import numpy as np

    targets = np.asarray(targets, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    mae = float(np.mean(np.abs(targets - predicted)))
    spread = float(np.sum((targets - targets.mean()) ** 2))
    r2 = 1.0 - float(np.sum((targets - predicted) ** 2)) / spread if spread > 0 else \
        float("nan")
    say(f"{what}: {r2:.3f}, mean absolute error: {mae:.4g} ({len(targets)} {noun})")


def _names(values, most=10):
    values = [str(v) for v in values]
    more = f" and {len(values) - most} more" if len(values) > most else ""
    return ", ".join(values[:most]) + more


def _say_accuracy(labels, predicted, classes, say, source="the class folders",
                  noun="images"):
    """The accuracy against the labels (``source``: the class folders, a label
    column), over the rows whose labels are classes of the model; a warning on
    stderr names the others, which no prediction can match."""
    import numpy as np

    labels = np.asarray(labels)
    known = np.isin(labels, np.asarray(classes).astype(str)) if len(classes) else \
        np.ones(len(labels), dtype=bool)
    if not known.all():
        unknown = sorted(set(labels[~known]))
        what = (f"accuracy over the {known.sum()} {noun} of the others"
                if known.any() else "no accuracy")
        print(f"sktransfer predict: warning: {source} {_names(unknown)} "
              f"are not classes of the model ({_names(classes)}): {what}",
              file=sys.stderr, flush=True)
        if not known.any():
            return
    hits = labels[known] == np.asarray(predicted)[known].astype(str)
    say(f"accuracy against {source}: {float(np.mean(hits)):.3f}"
        + ("" if known.all() else f" ({known.sum()} {noun})"))


def _layers(args, say):
    from .backbones import list_layers

    with _bad_input():
        names = list_layers(args.model)
    for name in names:
        print(name)
    return 0


# -- info: the file's header only ------------------------------------------------
def _escape(text):
    """``text`` with every character that could move the cursor, start a line or
    colour the terminal (control and format characters, line and paragraph
    separators) written as its Python escape: a file's strings are printed, never
    obeyed (a crafted file could otherwise forge a line of the output)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def _show(value, limit=300):
    """One escaped line for a decoded value: a string as it is, a long or
    multi-dimensional array as its shape, anything else as its repr."""
    import numpy as np

    if isinstance(value, np.ndarray) and (value.ndim != 1 or value.size > 100):
        text = f"<array of shape {value.shape}, dtype {value.dtype}>"
    elif isinstance(value, np.ndarray):
        text = repr(value.tolist())
    else:
        text = value if isinstance(value, str) else repr(value)
    text = _escape(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _print_params(params, indent):
    if params:
        print(f"{indent}parameters")
        names = {key: _escape(key) for key in params}
        width = max(len(name) for name in names.values())
        for key, value in params.items():
            print(f"{indent}  {names[key]:<{width}}  {_show(value)}")


def _classes(classes):
    if classes is None:
        return "- (not in the header)"
    try:
        names = [_show(str(c), 80) for c in classes[:20]]
        return f"{', '.join(names)}{', ...' if len(classes) > 20 else ''} ({len(classes)})"
    except TypeError:  # not a sequence (a crafted or unreadable value)
        return _show(classes)


def _info(args, say):
    """Print what :func:`sktransfer.persistence.describe` reads from the header."""
    import sklearn
    import torch

    from .persistence import describe

    if not os.path.exists(args.model):
        raise BadInput(f"{args.model!r} does not exist")
    if os.path.isdir(args.model):
        raise BadInput(f"{args.model!r} is a folder, not a model file")
    try:
        description = describe(args.model)
    except (ValueError, OSError) as exc:
        raise BadInput(_one_line(exc)) from None
    if args.json:  # json.dumps writes ASCII: control characters come escaped
        print(json.dumps({"path": args.model, "size_bytes": description.size_bytes,
                          "tensors": len(description.tensors),
                          "weights": description.n_weights,
                          "tensor_bytes": description.tensor_bytes,
                          "problems": list(description.problems),
                          "document": description.document}, indent=2))
        return 0
    estimator = description.estimator
    saved = ", ".join(f"{library} {version}"
                      for library, version in description.versions.items())
    here = f"sktransfer {__version__}, torch {torch.__version__}, scikit-learn " \
           f"{sklearn.__version__}"
    fitted = {True: "yes", False: "no"}.get(
        description.fitted, "- (its scikit-learn steps keep it in their skops bytes)")
    rows = [
        ("file", args.model),
        ("size", f"{_size(description.size_bytes)}: {len(description.tensors)} "
                 f"tensors, {description.n_weights:,} stored weights"),
        ("estimator", estimator.estimator + (f" of {len(estimator.steps)} steps"
                                             if estimator.estimator == "Pipeline" else "")),
        ("fitted", fitted),
        ("outputs", f"{_show(description.n_outputs)} (a regressor)")
        if description.classes is None and description.n_outputs is not None
        else ("classes", _classes(description.classes)),
        ("format", f"{description.format} version {description.format_version}"),
        ("saved with", saved),
    ]
    if not saved.startswith(here):
        rows.append(("running", here))
    rows += [("load", f"refuses it: {problem}") for problem in description.problems]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {_show(value, limit=1000)}")
    _print_params(estimator.params, "")
    for number, (name, step) in enumerate(estimator.steps, 1):
        kind = step.estimator
        if step.library == "scikit-learn":
            kind += " (scikit-learn, stored with skops)"
        elif step.fitted:
            kind += " (fitted)"
        print(f"step {number}: {_escape(name)}  {_show(kind)}")
        _print_params(step.params, "  ")
    for key, value in sorted(description.other.items()):  # what later versions add
        print(f"{_escape(key)}  {_show(json.dumps(value), limit=200)}")
    return 0


# -- the parser ----------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line: ``prog: error: ...``."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT,
                  f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _FORMATTER(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, but not None: an option left unset keeps the
    estimator's default, which its help names."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def _input_output(parser, name, metavar, help, *, output, nargs=None, **output_options):
    """A command's positional input ``name`` and its ``-o FILE``."""
    parser.add_argument(name, metavar=metavar, nargs=nargs, help=help)
    parser.add_argument("-o", "--output", metavar="FILE", help=output, **output_options)


def _text_options(parser, *, labels_help):
    group = parser.add_argument_group("texts (a text model: --model all-MiniLM-L6-v2 "
                                      "or hf:<repo or folder>)")
    group.add_argument("--text-column", default=None, metavar="NAME",
                       help="the column of texts of a .csv, .tsv or .parquet table "
                            "(default: its only column); a text model reads any other "
                            "file as one text per line")
    group.add_argument("--label-column", default=None, metavar="NAME",
                       help=labels_help)


def _extract_arguments(parser):
    _input_output(parser, "root", "ROOT", "folder, image or text file of paths; with a "
                                          "text model, a table or a text file of texts",
                  output="features.parquet, features.npy or features.csv", required=True)
    _text_options(parser, labels_help="a column of labels to write beside the features")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="keep each image's features in DIR: a rerun recomputes "
                             "only new or changed images")
    _network_options(parser, layer=True)


def _image_table_option(parser):
    parser.add_argument_group("tables of image paths").add_argument(
        "--image-column", default=None, metavar="NAME",
        help="read ROOT as a table (.csv, .tsv, .parquet) whose column NAME holds "
             "image paths, relative to the table's folder; --label-column names its "
             "labels or numbers")


def _fit_arguments(parser):
    _input_output(parser, "root", "ROOT", "folder of one subfolder per class; a table "
                                          "with --image-column (images) or, with a text "
                                          "model, --text-column (texts)",
                  output="where to save the model (e.g. model.sktransfer)", required=True)
    _text_options(parser, labels_help="the table's column of labels (numbers for "
                                      f"--estimator {_REGRESSOR})")
    _image_table_option(parser)
    parser.add_argument("--estimator", choices=("features", *_TRAINED),
                        default="features",
                        help="features = PretrainedFeatureExtractor + "
                             "LogisticRegression; finetune = FineTuneClassifier; "
                             f"{_REGRESSOR} = FineTuneRegressor (numbers in "
                             "--label-column of a table)")
    parser.add_argument("--validation-fraction", type=_fraction, default=0.2,
                        metavar="F", help="share of the inputs held out (stratified by "
                                          "class) to report the accuracy, or R² and the "
                                          "mean absolute error (0: none)")
    _training_options(parser)
    _network_options(parser)


def _predict_arguments(parser):
    parser.add_argument("model", metavar="MODEL",
                        help="a file that fit (sktransfer.save) wrote")
    _input_output(parser, "inputs", "INPUT", "images to predict (texts, for a model "
                                              "of texts)", nargs="+",
                  output="predictions.csv, or - for stdout", default="-")
    _text_options(parser, labels_help="a column of labels to report the accuracy "
                                      "(or, for a regressor, R²) against")
    _image_table_option(parser)
    _run_options(parser, defaults=False)


def _info_arguments(parser):
    parser.add_argument("model", metavar="MODEL", help="a file that sktransfer.save wrote")
    parser.add_argument("--json", action="store_true",
                        help="print the header document as JSON")


def _layers_arguments(parser):
    parser.add_argument("model", metavar="MODEL", help="a backbone name, as --model "
                                                       "takes it")


def _training_options(parser):
    group = parser.add_argument_group(f"training (--estimator finetune, {_REGRESSOR})")
    group.add_argument("--epochs", type=_positive, default=None, metavar="N",
                       help="training epochs (default: the estimator's \"auto\": 10 for "
                            "images; for a text model, about 120 optimizer steps, "
                            "3 to 30 epochs)")
    group.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the estimator's, 0.001)")
    group.add_argument("--freeze", type=_freeze, default=None, metavar="WHAT",
                       help="what trains besides the new head: backbone (nothing: a "
                            "linear probe), none (everything) or K (the last K stages "
                            "of the backbone) (default: none)")
    group.add_argument("--unfreeze-after", type=_count, metavar="N", default=None,
                       help="train the head (and the BatchNorm layers) alone for N "
                            "epochs first, then as --freeze says")
    group.add_argument("--augment", default=None,
                       choices=("default", "randaugment", "trivialaugment", "none"),
                       help="augmentation of the training images: default (flips, "
                            "crops, brightness and contrast), randaugment or "
                            "trivialaugment (torchvision's, per image), none "
                            f"(default: {_TRAINING['augment']})")
    group.add_argument("--early-stopping", action="store_true", default=None,
                       help="hold out 10%% of the training images and stop when their "
                            "loss has not improved for --patience epochs, keeping the "
                            "best weights")
    group.add_argument("--patience", type=_positive, default=None, metavar="N",
                       help="epochs without improvement that --early-stopping waits "
                            f"(default: {_TRAINING['patience']})")
    group.add_argument("--save-interrupted", action="store_true",
                       help="on Ctrl-C, save the model of the last finished epoch to "
                            "-o (the exit code is 130 all the same); without it, -o is "
                            "left as it was")


#: Each subcommand: what runs it, what adds its arguments, its one-line help,
#: its description and an example.
_COMMANDS = {
    "extract": (
        _extract, _extract_arguments,
        "feature vectors of images or texts, to .parquet, .npy or .csv",
        "Feature vectors of every image under ROOT from a frozen pretrained network. "
        "ROOT is a folder of class subfolders (the labels go alongside), a flat folder "
        "of images, an image, or a text file of image paths, one per line. .parquet "
        "and .csv get the columns path, [label], f0..fN; .npy gets the matrix, with "
        "the paths in <name>.paths.txt (and labels in <name>.labels.txt). With a "
        "text model (the default with --text-column), ROOT is a table (.csv, .tsv, "
        ".parquet) whose --text-column holds the texts, or a file of one text per "
        "line; the outputs have a text column instead of path (.npy: rows in the "
        "input's order).",
        "sktransfer extract photos/ -o features.parquet --cache ~/.cache/sk; "
        "sktransfer extract reviews.csv --text-column text -o features.parquet"),
    "fit": (
        _fit, _fit_arguments,
        "train a classifier or a regressor on class subfolders or a table, and save it",
        "Train on ROOT/<class>/<image> (or on a table's --image-column or, with a text "
        "model, --text-column, and its --label-column), hold out a validation share "
        "(stratified for classes), print its accuracy (R² and the mean absolute error "
        "for numbers) and the time, then save the model with sktransfer.save. "
        "--estimator features: frozen features + logistic regression (fast); "
        "finetune: FineTuneClassifier (trains the network); finetune-regressor: "
        "FineTuneRegressor, numbers in --label-column.",
        "sktransfer fit photos/ -o model.sktransfer --estimator finetune --epochs 5; "
        "sktransfer fit reviews.csv --text-column text --label-column label "
        "-o model.sktransfer; sktransfer fit angles.csv --image-column path "
        "--label-column angle --estimator finetune-regressor -o model.sktransfer"),
    "predict": (
        _predict, _predict_arguments,
        "predicted class and class probabilities (or numbers) of images or texts, "
        "to .csv",
        "Predict with a saved model. Each INPUT is a folder (of class subfolders or "
        "of images), an image, a text file of image paths, or a table with "
        "--image-column. The CSV has the columns "
        "path, [label], predicted, proba_<class>... (probabilities with 6 significant "
        "digits; a regressor's CSV has no proba_ columns, and --label-column reports "
        "R² and the mean absolute error). A model of texts reads tables (the column "
        "--text-column names, or "
        "the only one) and files of one text per line, and writes a text column "
        "instead of path; --label-column reports the accuracy.",
        "sktransfer predict model.sktransfer new_photos/ -o predictions.csv"),
    "info": (
        _info, _info_arguments,
        "what a saved model is, from its header (nothing is loaded)",
        "Print the estimator class, its parameters, its classes, the versions that "
        "saved it and the file's size, reading the safetensors header only: no "
        "weights are loaded, nothing is unpickled, no model is built.",
        "sktransfer info model.sktransfer"),
    "layers": (
        _layers, _layers_arguments,
        "the inner layers of a backbone, for --layer",
        "Print the names of the inner layers of backbone MODEL, one per line: what "
        "extract --layer takes. The network is built with random weights (the names "
        "do not depend on them), so nothing is downloaded.",
        "sktransfer layers resnet18"),
}


def build_parser():
    """The ``sktransfer`` argument parser, with its subcommands."""

    parser = _Parser(
        prog="sktransfer",
        description="Pretrained networks on images and texts: extract features, "
                    "train a classifier, predict, inspect a saved model.",
        epilog="Each command has its --help. Exit codes: 0 ok, 2 bad input (one line "
               "on stderr), 1 trained but not saved, 130 interrupted (Ctrl-C).")
    parser.add_argument("--version", action="version", version=f"sktransfer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = {}  # name -> its parser, whose errors name the command
    for name, (run, arguments, summary, description, example) in _COMMANDS.items():
        command = commands.add_parser(name, formatter_class=_FORMATTER, help=summary,
                                      description=description,
                                      epilog=f"example: {example}")
        arguments(command)
        command.set_defaults(run=run)
        parser.commands[name] = command
    return parser


def main(argv=None):
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the
    exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # as parse_args would, in the words of the parser they were given to
        before = argv[:argv.index(args.command)] if args.command in argv else []
        main_ones = [item for item in before if item in unknown]
        if main_ones:
            parser.error(f"unrecognized arguments: {' '.join(main_ones)}")
        parser.commands[args.command].error(
            f"unrecognized arguments: {' '.join(unknown)}")
    # Summaries go to stdout, unless the data does (predict -o -).
    stream = sys.stderr if getattr(args, "output", None) == "-" else sys.stdout

    def say(text):
        print(text, file=stream, flush=True)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        kind = "" if category is UserWarning else f" ({category.__name__})"
        print(f"sktransfer {args.command}: warning{kind}: {message}", file=sys.stderr,
              flush=True)

    try:
        with warnings.catch_warnings():
            # The library's warnings point at a caller's line, which here is
            # the command line itself: one line each, in its own style.
            warnings.showwarning = show_warning
            return args.run(args, say)
    except (BadInput, Failure) as exc:
        print(f"sktransfer {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"sktransfer {args.command}: interrupted {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `sktransfer info model | head`: the reader left
        sys.stdout = open(os.devnull, "w")  # no second error when Python flushes
        return 0
    except KeyboardInterrupt:  # whatever the command had begun to write is removed
        print(f"sktransfer {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

"""Text as an input modality: checked strings, tokenized batches, text views.

The backbone decides how ``X`` is read (a text backbone reads strings as text,
an image backbone reads them as paths); nothing here guesses from the strings.
Text shares the input contract of images, so the cache, the training core, the
runtime and persistence stay shared:

* a :class:`TextSource` is a source like an :class:`~sktransfer.inputs.ImageSource`:
  ``len``, ``batches(batch_size, indices=..., config=...)``, content keys;
* a :class:`TextPreprocess` is the text counterpart of a
  :class:`~sktransfer.inputs.PreprocessConfig`: it travels with the backbone and
  turns a list of strings into a :class:`TextBatch` (the tokenizer, the longest
  sequence kept);
* a :class:`TextBatch` is what a text backbone takes: the token ids and the
  attention mask, padded to the longest text of the batch, with ``len``, ``to``
  and concatenation (:func:`concat_inputs`) as image tensors have them.
"""

import dataclasses
import numbers

import numpy as np
import torch

from .._utils.caller import warn
from .._utils.frames import in_memory
from .._utils.seeding import loader_generator

#: Keys of a tokenizer's output a text backbone reads.
TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")

#: Texts tokenized at a time at inference (rounded up to a multiple of the batch
#: size); each such window is visited by length (:meth:`TextSource.inference_batches`).
INFERENCE_WINDOW = 8192
# transformers' model_max_length of a tokenizer that sets none (int(1e30))
_NO_LIMIT = 10**12


class TextBatch(dict):
    """Tokenized texts: ``{"input_ids", "attention_mask"[, "token_type_ids"]}``,
    each an ``(n_texts, length)`` tensor padded to the batch's longest text.

    A dict, so a transformers model takes it as keyword arguments, with what a
    batch of images has: ``len`` (the number of texts) and ``to(device)``.
    ``pad_id`` is the tokenizer's padding id (used when batches of other lengths
    are concatenated), ``mask_id`` its mask token's (None when it has none), and
    ``special_ids`` the ids a text view never masks or drops.
    """

    pad_id = 0
    mask_id = None
    special_ids = ()

    def _like(self, tensors):
        """A batch of ``tensors`` with this batch's token ids."""
        batch = TextBatch(tensors)
        batch.pad_id, batch.mask_id, batch.special_ids = (
            self.pad_id, self.mask_id, self.special_ids)
        return batch

    def __len__(self):
        return int(self["input_ids"].shape[0])

    def to(self, device, non_blocking=False):
        return self._like({k: v.to(device, non_blocking=non_blocking)
                           for k, v in self.items()})

    def pin_memory(self):
        return self._like({k: v.pin_memory() for k, v in self.items()})

    def content_mask(self):
        """Where the batch holds a token of the text itself (not padding, not a
        special token such as [CLS] or [SEP])."""
        mask = self["attention_mask"].bool()
        for special in self.special_ids:
            mask &= self["input_ids"] != special
        return mask

    @property
    def device(self):
        return self["input_ids"].device

    @property
    def lengths(self):
        """Tokens of each text (padding excluded)."""
        return self["attention_mask"].sum(1)

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        return self._like({k: v[key] for k, v in self.items()})

    @staticmethod
    def cat(batches):
        """One batch of the texts of ``batches``, in order, padded to the longest."""
        length = max(int(b["input_ids"].shape[1]) for b in batches)
        first = batches[0]
        joined = {}
        for key in first:
            fill = first.pad_id if key == "input_ids" else 0
            joined[key] = torch.cat([
                torch.nn.functional.pad(b[key], (0, length - b[key].shape[1]), value=fill)
                for b in batches])
        return first._like(joined)


def concat_inputs(batches):
    """Network inputs of several batches as one (images: ``torch.cat``; texts:
    :meth:`TextBatch.cat`, padded to the longest)."""
    if isinstance(batches[0], TextBatch):
        return TextBatch.cat(batches)
    return torch.cat(batches)


@dataclasses.dataclass
class TextPreprocess:
    """How a text backbone reads strings: its tokenizer and the longest sequence
    kept (longer texts are truncated).

    Attributes
    ----------
    tokenizer : transformers tokenizer
        Called as ``tokenizer(texts, padding=True, truncation=True,
        max_length=max_length, return_tensors="pt")`` for a batch
        (:meth:`encode`), and without padding for texts whose batches are
        padded later (:meth:`tokenize`, :meth:`pad`).
    max_length : int
        Tokens kept per text, special tokens included.
    """

    tokenizer: object
    max_length: int = 256
    in_chans = None  # no channels: read by code written for images

    def with_max_length(self, max_length):
        """This preprocessing keeping ``max_length`` tokens (None: unchanged)."""
        if max_length is None:
            return self
        return dataclasses.replace(self, max_length=int(max_length))

    def with_image_size(self, image_size):
        if image_size is not None:
            raise ValueError(f"image_size={image_size!r} applies to images; a text "
                             "backbone takes max_length= instead.")
        return self

    def encode(self, texts):
        """A :class:`TextBatch` of ``texts`` (a list of str), on the CPU."""
        encoded = self.tokenizer(list(texts), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        return self._batch({k: encoded[k] for k in TEXT_KEYS if k in encoded})

    def tokenize(self, texts):
        """Each text's tokens, truncated to ``max_length`` and not padded: a dict
        of the :data:`TEXT_KEYS` the tokenizer returns, each a list with one list
        of ints per text (what :meth:`pad` takes)."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return {k: encoded[k] for k in TEXT_KEYS if k in encoded}

    def pad(self, encoded, rows):
        """A :class:`TextBatch` of the texts at positions ``rows`` of ``encoded``
        (from :meth:`tokenize`), padded to the longest of them on the tokenizer's
        padding side: the batch :meth:`encode` makes of the same texts."""
        tokenizer = self.tokenizer
        if tokenizer.pad_token_id is None:  # what the tokenizer says when asked to pad
            raise ValueError(
                f"the tokenizer of this text backbone ({type(tokenizer).__name__}) has no "
                "padding token, so texts of different lengths cannot share a batch; set "
                "one on it (tokenizer.pad_token = tokenizer.eos_token, say) before saving "
                "the model folder.")
        ids = [encoded["input_ids"][i] for i in rows]
        lengths = [len(row) for row in ids]
        width = max(lengths)
        left = getattr(tokenizer, "padding_side", "right") == "left"
        fills = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0,
                 "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0)}
        tensors = {}
        for key in encoded:  # the keys encode returns: the tokenizer's model inputs
            array = np.full((len(ids), width), fills[key], dtype=np.int64)
            for j, (row, length) in enumerate(zip(rows, lengths)):
                where = slice(width - length, width) if left else slice(0, length)
                array[j, where] = 1 if key == "attention_mask" else encoded[key][row]
            tensors[key] = torch.from_numpy(array)
        return self._batch({k: tensors[k] for k in TEXT_KEYS if k in tensors})

    def _batch(self, tensors):
        tokenizer = self.tokenizer
        batch = TextBatch(tensors)
        batch.pad_id = tokenizer.pad_token_id or 0
        batch.mask_id = tokenizer.mask_token_id
        batch.special_ids = tuple(tokenizer.all_special_ids)
        return batch

    def describe(self):
        """What identifies this preprocessing, as plain values (cache keys)."""
        tokenizer = self.tokenizer
        return {"tokenizer": f"{type(tokenizer).__name__}:"
                             f"{getattr(tokenizer, 'name_or_path', '')}",
                "vocab_size": len(tokenizer), "max_length": self.max_length}

    def n_tokens(self, texts):
        """Tokens of each text without truncation (special tokens included)."""
        # verbose=False: no "will result in indexing errors" from transformers
        # for texts longer than the model reads (they are counted, not run)
        encoded = self.tokenizer(list(texts), truncation=False, padding=False,
                                 verbose=False)
        return np.array([len(ids) for ids in encoded["input_ids"]])



class TextSource:
    """Checked texts, served as batches: lists of str, or :class:`TextBatch`
    when a :class:`TextPreprocess` is given.

    Parameters
    ----------
    texts : list of str
    """

    geometry_done = True  # nothing to resize

    def __init__(self, texts):
        self.texts = list(texts)

    def __len__(self):
        return len(self.texts)

    def length_order(self, indices=None):
        """Positions in the rows (all, or ``indices``) from the longest text to
        the shortest, by characters, so that batches of similar lengths waste
        little padding."""
        rows = range(len(self.texts)) if indices is None else indices
        lengths = np.fromiter((len(self.texts[i]) for i in rows), dtype=np.int64,
                              count=len(rows))
        return np.argsort(-lengths, kind="stable")

    def inference_batches(self, batch_size, config, *, indices=None, pin_memory=False):
        """``(positions, batch)`` for every row (all, or those at ``indices``)
        once: ``positions`` say which of the rows the :class:`TextBatch` holds.

        The texts are tokenized once, :data:`INFERENCE_WINDOW` at a time (a
        multiple of ``batch_size``), and each window is visited from the longest
        text to the shortest by tokens kept (truncation included), so that each
        batch pads to a length close to all of its texts'. Ordering by tokens
        pads less than ordering by characters, and padding a window's tokens
        costs less than tokenizing each batch anew.
        """
        rows = np.arange(len(self.texts)) if indices is None else np.asarray(indices)
        window = batch_size * max(1, -(-INFERENCE_WINDOW // batch_size))
        for start in range(0, len(rows), window):
            positions = np.arange(start, min(start + window, len(rows)))
            encoded = config.tokenize([self.texts[i] for i in rows[positions]])
            lengths = np.fromiter(map(len, encoded["input_ids"]), dtype=np.int64,
                                  count=len(positions))
            order = np.argsort(-lengths, kind="stable")
            for first in range(0, len(order), batch_size):
                chunk = order[first:first + batch_size]
                batch = config.pad(encoded, chunk)
                yield positions[chunk], batch.pin_memory() if pin_memory else batch
            del encoded  # one window's tokens in memory at a time

    def batches(self, batch_size, *, indices=None, config=None, num_workers=0,
                pin_memory=False):
        """The texts (all, or those at ``indices``, in that order) in batches:
        tokenized by ``config`` (a :class:`TextPreprocess`), in ``num_workers``
        DataLoader workers when asked."""
        rows = np.arange(len(self)) if indices is None else np.asarray(indices)
        chunks = [rows[start:start + batch_size] for start in range(0, len(rows), batch_size)]
        if config is None:
            for chunk in chunks:
                yield [self.texts[i] for i in chunk]
            return
        if num_workers:
            loader = torch.utils.data.DataLoader(
                _TextChunks(self.texts, chunks), batch_size=None, num_workers=num_workers,
                collate_fn=config.encode, pin_memory=pin_memory,
                generator=loader_generator())
            yield from loader
            return
        for chunk in chunks:
            batch = config.encode([self.texts[i] for i in chunk])
            yield batch.pin_memory() if pin_memory else batch

    def with_transform(self, transform, *, in_chans=None):
        raise ValueError("per-sample image transforms do not apply to text; give a text "
                         "backbone augment=None (or a text augmentation).")


class _TextChunks(torch.utils.data.Dataset):
    """The texts of each chunk of rows, one item per batch (tokenized by the
    DataLoader's ``collate_fn`` in its workers)."""

    def __init__(self, texts, chunks):
        self.texts, self.chunks = texts, chunks

    def __len__(self):
        return len(self.chunks)

    def __getitem__(self, index):
        return [self.texts[i] for i in self.chunks[index]]


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_texts(X, *, model=None):
    """``X`` as a :class:`TextSource`: a list, tuple or 1-D array of ``str``, a
    pandas ``Series`` or a one-column ``DataFrame`` of ``str``.

    Raises ``ValueError`` naming the first row that is not a ``str`` (None, NaN,
    bytes, a number), by position and, for a Series or DataFrame whose index
    says otherwise, by index label, and for an empty ``X``, a 2-D array, several columns or
    a lone string; ``model`` (the text backbone) is named when ``X`` looks like
    images.
    """
    reads = f"model={model!r} reads text" if model is not None else "a text backbone reads text"
    X = in_memory(X)
    if isinstance(X, (str, bytes)):
        raise ValueError("X is a single string: pass a list of texts, e.g. [X].")
    columns = getattr(X, "columns", None)
    if columns is not None:
        if len(columns) != 1:
            raise ValueError(
                f"X is a DataFrame of {len(columns)} columns: pass the text column "
                "(X['text'] or X[['text']]), or use a ColumnTransformer to send the "
                "text column to this step.")
        X = X.iloc[:, 0]
    index = None
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # Series
        index = getattr(X, "index", None)
        if callable(index):  # pyarrow's Array.index() is a method, not labels
            index = None
        try:
            X = X.to_numpy(dtype=object)
        except TypeError:  # pyarrow's Array and ChunkedArray take no dtype
            X = np.asarray(X, dtype=object)
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"text X must be 1-D (one text per row); got an array of "
                             f"shape {X.shape}. {reads}; for images, use an image "
                             "backbone such as model='efficientnet_lite0'.")
        X = X.tolist()
    if not isinstance(X, (list, tuple)):
        raise ValueError(f"text X must be a list, tuple, 1-D array, Series or one-column "
                         f"DataFrame of str; got {type(X).__name__}. {reads}; for "
                         "images, use an image backbone such as "
                         "model='efficientnet_lite0'.")
    if len(X) == 0:
        raise ValueError("X holds no text (0 rows).")
    for row, text in enumerate(X):
        if not isinstance(text, str):
            if (text is None or (isinstance(text, numbers.Real) and text != text)
                    or type(text).__name__ == "NAType"):  # pandas.NA
                what = "missing (None, NaN or NA)"
            elif isinstance(text, (bytes, bytearray)):
                what = "bytes: decode it first, e.g. text.decode('utf-8')"
            elif hasattr(text, "size") and hasattr(text, "mode"):  # a PIL image
                what = (f"an image, not a str: {reads}; for images use an image "
                        "backbone such as model='efficientnet_lite0'")
            else:
                what = f"of type {type(text).__name__}, not a str"
            label = index[row] if index is not None else row
            label = label.item() if isinstance(label, np.generic) else label
            label = "" if isinstance(label, numbers.Integral) and label == row else \
                f" (index label {label!r})"
            raise ValueError(f"X[{row}]{label} = {_describe(text)} is {what}; every row "
                             "of text X must be a str.")
    texts = [str(text) for text in X]
    try:  # once over all texts; row by row only to name the bad one
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        for row, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"X[{row}] = {_describe(text)} holds {text[exc.start]!r} at "
                    f"character {exc.start}, half of a character (a lone surrogate, "
                    "left by a JSON or UTF-16 text cut mid-character), which no "
                    "tokenizer reads: repair it, e.g. text.encode('utf-8', "
                    "'replace').decode('utf-8').") from None
    return TextSource(texts)


#: The fitted attributes that say which column of texts an estimator was fitted on.
_COLUMN_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def _text_column_name(X):
    """The column name of a one-column DataFrame ``X`` when it is a str, else
    None: as scikit-learn, only str column names count as names."""
    columns = getattr(X, "columns", None)
    if columns is None or len(columns) != 1 or not isinstance(columns[0], str):
        return None
    return str(columns[0])


def validate_text_data(estimator, X, *, reset, model=None):
    """``X`` as a :class:`TextSource` for ``estimator``, whose column of texts
    is remembered at fit and checked afterwards, as scikit-learn's
    ``validate_data`` does for columns of numbers.

    With ``reset`` (``fit``), a one-column DataFrame whose column name is a str
    sets ``feature_names_in_`` (that name) and ``n_features_in_`` (1); any other
    ``X`` removes both attributes, which a former fit may have left. Otherwise
    (``predict``, ``transform``), a DataFrame whose column has another name than
    the one of the fit is refused, naming both; a list, array or Series holds
    the texts themselves and is taken as it is, and so is a DataFrame when the
    fit had no name to compare with (one column of texts has no order to get
    wrong, so scikit-learn's warning for mixed inputs would only be noise).

    Parameters
    ----------
    estimator : estimator
        Where the fitted attributes are set or read.
    X : list, tuple, ndarray, Series or DataFrame of str
        As for :func:`validate_texts`.
    reset : bool
        Whether this is a fit, which sets the attributes.
    model : str, module or None
        The text backbone, named in the errors of :func:`validate_texts`.

    Returns
    -------
    source : TextSource
    """
    X = in_memory(X)
    fitted = None if reset else getattr(estimator, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if fitted is not None and columns is not None:
        expected, name = str(fitted[0]), _text_column_name(X)
        if len(columns) > 1:
            raise ValueError(
                f"X is a DataFrame of {len(columns)} columns; "
                f"{type(estimator).__name__} was fitted on the text column "
                f"{expected!r}: pass X[[{expected!r}]].")
        if name is not None and name != expected:
            raise ValueError(
                f"X's text column is {name!r}, but {type(estimator).__name__} was "
                f"fitted on the column {expected!r}: pass that column (or the "
                "texts themselves as a list or Series).")
    source = validate_texts(X, model=model)
    if reset:
        name = _text_column_name(X)
        if name is None:
            for attribute in _COLUMN_ATTRIBUTES:
                if hasattr(estimator, attribute):
                    delattr(estimator, attribute)
        else:
            estimator.feature_names_in_ = np.array([name], dtype=object)
            estimator.n_features_in_ = 1
    return source


def warn_truncated(preprocess, texts):
    """Warn how many of ``texts`` are longer than ``preprocess.max_length``
    tokens (they are truncated).

    Only texts that could be that long are tokenized: a token covers at least
    one byte of the text, so a text of ``b`` UTF-8 bytes has at most ``b``
    tokens besides the special ones (which an empty text shows), and a corpus
    of short texts costs no second tokenization at every ``fit``."""
    n_special = int(preprocess.n_tokens([""])[0])
    candidates = [text for text in texts
                  if len(text.encode("utf-8", "surrogatepass")) + n_special
                  > preprocess.max_length]
    if not candidates:
        return
    n_tokens = preprocess.n_tokens(candidates)
    longer = int((n_tokens > preprocess.max_length).sum())
    if longer:
        limit = preprocess.tokenizer.model_max_length
        if not isinstance(limit, numbers.Integral) or limit >= _NO_LIMIT:
            advice = "raise max_length to keep more of them"
        elif preprocess.max_length >= limit:
            advice = (f"the model reads at most {limit} tokens (split longer texts "
                      "to keep more of them)")
        else:
            advice = f"raise max_length (up to {limit}) to keep more of them"
        warn(
            f"{longer} of {len(texts)} texts are longer than max_length="
            f"{preprocess.max_length} tokens (the longest has {int(n_tokens.max())}) "
            f"and are truncated; {advice}.",
            UserWarning)

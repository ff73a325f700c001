"""Text as an input: validate_texts, TextBatch, TextSource, the text views."""

import numpy as np
import pandas as pd
import pytest
import torch

from sktransfer.inputs import TextBatch, TextSource, concat_inputs, validate_texts
from sktransfer.training import StrongAugment, WeakAugment


@pytest.mark.parametrize("X", [
    ["a b", "c"], ("a b", "c"), np.array(["a b", "c"], dtype=object),
    pd.Series(["a b", "c"]), pd.DataFrame({"text": ["a b", "c"]}),
    np.array([["a b"], ["c"]], dtype=object),
])
def test_text_containers_are_read(X):
    assert validate_texts(X).texts == ["a b", "c"]


@pytest.mark.parametrize("X, message", [
    (["ok", None], r"X\[1\] = None is missing"),
    (["ok", "fine", float("nan")], r"X\[2\] = nan is missing"),
    ([b"bytes"], r"X\[0\] = b'bytes' is bytes: decode it"),
    (["ok", 3], r"X\[1\] = 3 is of type int, not a str"),
    # a Series or DataFrame is named by its index label too, when it differs
    (pd.Series(["ok", "fine", None], index=[101, 102, 103]),
     r"X\[2\] \(index label 103\) = (None|nan) is missing"),
    (pd.DataFrame({"text": ["ok", 3]}, index=["r1", "r2"]),
     r"X\[1\] \(index label 'r2'\) = 3 is of type int"),
    (pd.Series(["ok", None]), r"X\[1\] = (None|nan) is missing"),
    (pd.Series(["ok", None], dtype="string"), r"X\[1\] = <NA> is missing"),
    ("one text", "single string"),
    ([], "no text"),
    (pd.DataFrame({"a": ["x"], "b": ["y"]}), "2 columns.*ColumnTransformer"),
    (np.zeros((2, 8, 8, 3)), "must be 1-D.*image backbone"),
    # half an emoji (a JSON string cut mid-character) passed as a str, then
    # failed in the tokenizer, naming no row, after the texts before it ran
    (["ok", "cut \ud83d here"], r"X\[1\] = 'cut \\ud83d here' holds '\\ud83d' at "
                                 r"character 4.*lone surrogate"),
])
def test_bad_text_is_refused_naming_the_row(X, message):
    with pytest.raises(ValueError, match=message):
        validate_texts(X, model="all-MiniLM-L6-v2")


def test_pyarrow_arrays_of_strings_are_texts():
    """pyarrow's arrays have to_numpy() without a dtype, and an index() method:
    read as a Series of texts, a null named by its row."""
    pa = pytest.importorskip("pyarrow")
    assert validate_texts(pa.array(["a b", "c"])).texts == ["a b", "c"]
    assert validate_texts(pa.chunked_array([["a b"], ["c"]])).texts == ["a b", "c"]
    with pytest.raises(ValueError, match=r"X\[1\] = None is missing"):
        validate_texts(pa.array(["a b", None]))


def test_a_pil_image_in_text_x_says_to_use_an_image_backbone():
    from PIL import Image

    with pytest.raises(ValueError, match=r"X\[1\] .* an image, not a str.*image backbone"):
        validate_texts(["fine", Image.new("RGB", (4, 4))], model="all-MiniLM-L6-v2")


def test_empty_strings_are_texts():
    assert validate_texts(["", "x"]).texts == ["", "x"]


def batch(ids, pad=0):
    ids = torch.tensor(ids)
    result = TextBatch({"input_ids": ids, "attention_mask": (ids != pad).long()})
    result.pad_id, result.mask_id, result.special_ids = pad, 4, (2, 3)
    return result


def test_text_batches_concatenate_padded_to_the_longest():
    short, long = batch([[2, 7, 3]]), batch([[2, 7, 8, 9, 3], [2, 9, 3, 0, 0]])
    joined = concat_inputs([short, long])
    assert len(joined) == 3 and joined["input_ids"].shape == (3, 5)
    assert joined["input_ids"][0].tolist() == [2, 7, 3, 0, 0]
    assert joined["attention_mask"][0].tolist() == [1, 1, 1, 0, 0]
    assert joined.mask_id == 4 and joined[1:]["input_ids"].shape == (2, 5)


def test_text_views_touch_content_tokens_only():
    torch.manual_seed(0)
    ids = [[2] + list(range(10, 40)) + [3, 0, 0]] * 8
    original = batch(ids)
    weak = WeakAugment()(original)
    assert weak is original
    strong = StrongAugment(text_mask=0.5, text_span=0.3)(original)
    content = original.content_mask()
    masked = strong["input_ids"] == 4
    assert masked.any() and not (masked & ~content).any()  # never [CLS], [SEP], padding
    dropped = (strong["attention_mask"] == 0) & (original["attention_mask"] == 1)
    assert dropped.any() and not (dropped & ~content).any()
    assert torch.equal(original["input_ids"], torch.tensor(ids))  # not changed in place


def test_text_source_batches_and_length_order():
    source = TextSource(["aa", "a", "aaaa", "aaa"])
    assert list(source.batches(3)) == [["aa", "a", "aaaa"], ["aaa"]]
    assert source.length_order().tolist() == [2, 3, 0, 1]
    with pytest.raises(ValueError, match="do not apply to text"):
        source.with_transform(lambda x: x)


def test_the_truncation_count_tokenizes_only_texts_that_could_be_long(tmp_path):
    import warnings

    from sktransfer.inputs import TextPreprocess
    from sktransfer.inputs._text import warn_truncated

    from text_models import write_tiny_bert

    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(write_tiny_bert(tmp_path / "b"))
    preprocess = TextPreprocess(tokenizer, max_length=12)
    seen = []
    real = preprocess.n_tokens

    def counting(texts):
        seen.append(list(texts))
        return real(texts)

    preprocess.n_tokens = counting
    short, long = "good film", " ".join(["good"] * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_truncated(preprocess, [short] * 5)  # no text is long: no warning
    assert seen == [[""]]  # only the special tokens were counted
    seen.clear()
    with pytest.warns(UserWarning, match="1 of 3 texts are longer than max_length=12"):
        warn_truncated(preprocess, [short, long, short])
    assert seen == [[""], [long]]


def test_the_truncation_warning_at_the_model_limit_does_not_advise_raising_it(
        tmp_path, capfd):
    from sktransfer.inputs import TextPreprocess
    from sktransfer.inputs._text import warn_truncated

    from text_models import write_tiny_bert

    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(write_tiny_bert(tmp_path / "b"))
    tokenizer.model_max_length = 12
    long = " ".join(["good"] * 20)
    with pytest.warns(UserWarning) as record:
        warn_truncated(TextPreprocess(tokenizer, max_length=12), ["good film", long])
    message = str(record[0].message)
    assert "1 of 2 texts are longer than max_length=12 tokens (the longest has 22)" in message
    assert "the model reads at most 12 tokens" in message
    assert "raise max_length" not in message
    # counting the tokens of long texts is not a transformers warning either
    # ("will result in indexing errors": the texts are truncated)
    assert "Token indices sequence length" not in capfd.readouterr().err
    with pytest.warns(UserWarning, match="raise max_length \\(up to 12\\) to keep more"):
        warn_truncated(TextPreprocess(tokenizer, max_length=8), [long])


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    import transformers

    from text_models import write_tiny_bert

    return transformers.AutoTokenizer.from_pretrained(
        write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_tokenizer")))


# Character counts and token counts disagree: an unknown word is one token.
UNEVEN = ["good bad good bad good", "unknownwordthatislong", "good", "bad good",
          "good good good", "bad", "good bad good bad good bad good bad good", ""]


@pytest.mark.parametrize("change, keys", [
    ({}, {"input_ids", "attention_mask", "token_type_ids"}),
    ({"padding_side": "left"}, {"input_ids", "attention_mask", "token_type_ids"}),
    ({"pad_token": "[MASK]"},  # another padding id than 0
     {"input_ids", "attention_mask", "token_type_ids"}),
    ({"model_input_names": ["input_ids", "attention_mask"]}, {"input_ids", "attention_mask"}),
    ({"model_input_names": ["input_ids", "token_type_ids"]}, {"input_ids", "token_type_ids"}),
])
def test_padding_tokenized_texts_makes_the_batch_encode_makes(tiny_tokenizer, change, keys):
    import copy

    from sktransfer.inputs import TextPreprocess

    tokenizer = copy.deepcopy(tiny_tokenizer)
    for name, value in change.items():
        setattr(tokenizer, name, value)
    preprocess = TextPreprocess(tokenizer, max_length=8)  # the longest text is truncated
    encoded = preprocess.tokenize(UNEVEN)
    assert max(map(len, encoded["input_ids"])) == 8
    rows = [6, 2, 7, 0]
    padded = preprocess.pad(encoded, rows)
    expected = preprocess.encode([UNEVEN[i] for i in rows])
    assert padded.keys() == expected.keys() == keys
    for key in expected:
        assert torch.equal(padded[key], expected[key]), key
    assert (padded.pad_id, padded.mask_id, padded.special_ids) == (
        expected.pad_id, expected.mask_id, expected.special_ids)


def test_padding_without_a_padding_token_is_refused_as_encode_refuses(tiny_tokenizer):
    import copy

    from sktransfer.inputs import TextPreprocess

    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.pad_token = None
    preprocess = TextPreprocess(tokenizer, max_length=8)
    with pytest.raises(ValueError, match="padding token"):
        preprocess.encode(UNEVEN[:2])
    with pytest.raises(ValueError, match="has no padding token"):
        preprocess.pad(preprocess.tokenize(UNEVEN[:2]), [0, 1])


def _lengths_module(batch):
    """A network whose output is each text's tokens and the sum of their ids."""
    return torch.stack([batch["attention_mask"].sum(1), batch["input_ids"].sum(1)], 1)


@pytest.mark.parametrize("num_workers", [0, 1])
@pytest.mark.parametrize("indices", [None, [7, 3, 0, 6, 6, 1]])
def test_inference_visits_texts_by_length_and_returns_them_in_order(
        tiny_tokenizer, monkeypatch, indices, num_workers):
    import sktransfer.inputs._text as text_module
    from sktransfer._utils.runtime import BatchLoader, run_batches
    from sktransfer.inputs import TextPreprocess

    monkeypatch.setattr(text_module, "INFERENCE_WINDOW", 3)  # windows of 2 batches of 2
    preprocess = TextPreprocess(tiny_tokenizer, max_length=8)
    loader = BatchLoader(TextSource(UNEVEN), preprocess, torch.device("cpu"),
                         num_workers=num_workers)
    rows = list(range(len(UNEVEN))) if indices is None else indices
    ids = preprocess.tokenize(UNEVEN)["input_ids"]
    tokens, id_sums = np.array([len(i) for i in ids]), np.array([sum(i) for i in ids])
    visits = list(loader.inference_batches(2, indices=indices))
    positions = np.concatenate([p for p, _ in visits])
    assert sorted(positions) == list(range(len(rows)))  # each row once
    for p, batch in visits:  # a batch pads to its longest text, no further
        assert batch["input_ids"].shape[1] == tokens[np.asarray(rows)[p]].max()
    visited = tokens[np.asarray(rows)[positions]]
    if num_workers:  # tokenized in the workers: the texts by characters, all at once
        characters = np.array([len(UNEVEN[i]) for i in rows])[positions]
        assert (np.diff(characters) <= 0).all()
    else:  # tokenized once: each window of 4 rows by tokens, window after window
        for first in range(0, len(visited), 4):
            assert sorted(positions[first:first + 4]) == list(
                range(first, min(first + 4, len(rows))))
            assert (np.diff(visited[first:first + 4]) <= 0).all()
    outputs = run_batches(_lengths_module, loader, autocast_dtype=None, batch_size=2,
                          indices=indices)
    np.testing.assert_array_equal(outputs, np.stack([tokens[rows], id_sums[rows]], 1))

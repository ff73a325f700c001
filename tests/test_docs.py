"""The documentation site builds, warnings as errors, without running the gallery.

Needs the ``docs`` extra (Sphinx, numpydoc, sphinx-gallery, the PyData theme,
myst-parser); skipped without it. The full build, running the gallery examples,
is ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

import os
import shutil
import subprocess
import sys

import pytest

for _module in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme",
                "myst_parser"):
    pytest.importorskip(_module, reason=f"{_module} is in the 'docs' extra")

pytestmark = pytest.mark.slow  # one Sphinx build of the whole site

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
GALLERY = os.path.join(ROOT, "examples", "gallery")

# Build outputs written next to the sources; not copied, so that the test builds
# from the sources alone and leaves the checkout's docs/ untouched.
BUILD_OUTPUTS = ("_build", "generated", "auto_examples", "sg_execution_times.rst")

PUBLIC_CLASSES = [
    "sktransfer.PretrainedFeatureExtractor",
    "sktransfer.FineTuneClassifier",
    "sktransfer.DomainAdaptClassifier",
    "sktransfer.InconsistentVersionWarning",
    "sktransfer.training.Callback",
    "sktransfer.training.Checkpoint",
    "sktransfer.training.EarlyStopping",
    "sktransfer.training.Trainer",
    "sktransfer.metrics.PredictionEntropyScorer",
    "sktransfer.adaptation.DANNLoss",
]
PUBLIC_FUNCTIONS = [
    "sktransfer.save",
    "sktransfer.load",
    "sktransfer.datasets.load_photo_patches",
    "sktransfer.datasets.load_digits_shift",
    "sktransfer.feature_extraction.feature_cache_info",
    "sktransfer.backbones.load_backbone",
]
GUIDES = ["feature_extraction", "finetune", "text", "domain_adaptation", "custom_method",
          "domain_adaptation_metrics", "caching", "distributed", "persistence",
          "architecture"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    shutil.copytree(DOCS, tmp / "docs", ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    shutil.copytree(GALLERY, tmp / "examples" / "gallery")
    out = tmp / "html"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-D", "plot_gallery=0", str(tmp / "docs"), str(out)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    return out


def _read(path):
    assert path.is_file(), f"{path.name} was not built"
    return path.read_text(encoding="utf-8")


def test_index_links_guides_api_and_gallery(site):
    html = _read(site / "index.html")
    for page in GUIDES + ["api", "auto_examples/index"]:
        assert f'href="{page}.html' in html, page


@pytest.mark.parametrize("page", GUIDES)
def test_guides_are_pages(site, page):
    html = _read(site / f"{page}.html")
    assert "<h1>" in html


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_api_page_of_each_public_class(site, name):
    html = _read(site / "generated" / f"{name}.html")
    short = name.rsplit(".", 1)[1]
    assert f"<h1>{short}" in html
    assert '<dl class="py class">' in html or '<dl class="py exception">' in html
    # numpydoc rendered the sections, not raw "-----" underlines.
    assert "----------" not in html


@pytest.mark.parametrize("name", ["PretrainedFeatureExtractor", "FineTuneClassifier",
                                  "DomainAdaptClassifier"])
def test_estimator_pages_have_numpydoc_sections(site, name):
    html = _read(site / "generated" / f"sktransfer.{name}.html")
    for section in ("Parameters", "Attributes", "Examples"):
        assert f">{section}" in html, section


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_api_page_of_each_public_function(site, name):
    html = _read(site / "generated" / f"{name}.html")
    assert "Parameters" in html or "Returns" in html


def test_estimator_pages_document_their_methods(site):
    html = _read(site / "generated" / "sktransfer.FineTuneClassifier.html")
    for method in ("fit", "partial_fit", "predict", "predict_proba", "decision_function"):
        assert f'id="sktransfer.FineTuneClassifier.{method}"' in html, method


def test_gallery_pages_exist(site):
    html = _read(site / "auto_examples" / "index.html")
    for name in sorted(os.listdir(GALLERY)):
        if name.startswith("plot_") and name.endswith(".py"):
            assert f"{name[:-3]}.html" in html, name
            _read(site / "auto_examples" / f"{name[:-3]}.html")


@pytest.mark.parametrize("name, words", [
    ("sktransfer.backbones.POOLINGS", "poolings of an image backbone"),
    ("sktransfer.persistence.FORMAT_VERSION", "version of the safe format"),
    ("sktransfer.adaptation.METHODS", "names of"),
])
def test_constant_pages_show_their_own_comment(site, name, words):
    """A constant re-exported by a package showed its type's docstring (str's,
    tuple's), or nothing; the #: comment of the module that defines it is shown."""
    html = _read(site / "generated" / f"{name}.html")
    assert words in html
    assert "Built-in immutable sequence" not in html and "str(object=" not in html


def test_on_this_page_menu_names_methods_without_their_class(site):
    html = _read(site / "generated" / "sktransfer.FineTuneClassifier.html")
    menu = html.split('id="pst-page-toc-nav"')[-1].split("</nav>")[0]
    assert '<span class="pre">predict_proba()</span>' in menu
    assert '<span class="pre">FineTuneClassifier.predict_proba()</span>' not in menu

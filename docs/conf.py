"""Sphinx configuration of the sktransfer documentation site.

Build the whole site, running the gallery (a few minutes on 2 CPU cores)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Build it without running the gallery examples (fast; what tests/test_docs.py does)::

    python -m sphinx -W --keep-going -b html -D plot_gallery=0 docs docs/_build/html

Generated sources (autosummary stubs in ``docs/generated`` and the gallery pages
in ``docs/auto_examples``) are written next to this file; they are build outputs.
"""

import importlib
import os
import re
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The package from this checkout, whether or not it is installed.
sys.path.insert(0, ROOT)

import sktransfer  # noqa: E402

# -- Project ------------------------------------------------------------------
project = "sktransfer"
author = "sktransfer developers"
copyright = "sktransfer developers, BSD-3-Clause"
release = sktransfer.__version__
version = ".".join(release.split(".")[:2])

# -- Extensions ---------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.pickle", "auto_examples/*.json"]

# -- MyST (the guides in docs/*.md) -------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for "#what-save-refuses"-style links inside and between pages.
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
autoclass_content = "class"
# numpydoc renders the sections; the class template lists the methods itself.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {release}"
# The page's "On this page" menu names a class's methods without the class
# (``predict_proba``, not ``FineTuneClassifier.predict_proba``, which was cut).
toc_object_entries_show_parents = "hide"
html_static_path = ["_static"]
html_css_files = ["sktransfer.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # The gallery pages give their width to the code and its output.
    # ("*" does not match "/": one pattern per folder, no page matching two.)
    "secondary_sidebar_items": {"*": ["page-toc", "sourcelink"],
                                "generated/*": ["page-toc", "sourcelink"],
                                "auto_examples/*": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "header_links_before_dropdown": 4,
}
html_sidebars = {"index": []}
html_show_sourcelink = False

# -- sphinx-gallery -----------------------------------------------------------


def _reset_torch(gallery_conf, fname, when=None):
    """One torch thread per example, as on a small CI runner, and a fixed seed."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
    torch.manual_seed(0)


# The gallery's reading order; any other example comes after, by file name.
GALLERY_ORDER = [
    "plot_quickstart.py",
    "plot_finetune.py",
    "plot_domain_adaptation.py",
    "plot_feature_cache.py",
    "plot_dask.py",
]


class GalleryOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in GALLERY_ORDER:
            return f"{GALLERY_ORDER.index(filename):03d}"
        return f"999{filename}"


sphinx_gallery_conf = {
    "examples_dirs": os.path.join(ROOT, "examples", "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": GalleryOrder,
    "reset_modules": ("matplotlib", "seaborn", _reset_torch),
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    # "Examples using X" on the API pages (``minigallery`` in the templates).
    "doc_module": ("sktransfer",),
    "backreferences_dir": "generated/backreferences",
    "matplotlib_animations": False,
    # An example that raises fails the build (with -W, so does any warning).
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
}

# The gallery's configuration holds a function (_reset_torch): Sphinx cannot
# pickle it into its environment cache and says so; the cache is still used.
suppress_warnings = ["config.cache"]

# Matplotlib without a display.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")

# -- The guides' toctree ------------------------------------------------------
# The guides, in reading order. Any other docs/*.md page (one a colleague adds,
# such as cli.md or plotting.md) is appended to the toctree of user_guide.rst, so a
# new page is on the site without an orphan warning.
GUIDES = [
    "feature_extraction",
    "finetune",
    "text",
    "domain_adaptation",
    "domain_adaptation_metrics",
    "custom_method",
    "caching",
    "distributed",
    "persistence",
    "cli",
    "plotting",
    "architecture",
]


def _guides():
    present = {name[:-3] for name in os.listdir(HERE)
               if name.endswith(".md") and name != "index.md"}
    ordered = [name for name in GUIDES if name in present]
    return ordered + sorted(present - set(ordered))


def _fill_toctree(app, docname, source):
    if docname == "user_guide":
        entries = "\n".join(f"   {name}" for name in _guides())
        source[0] = re.sub(r"^   @GUIDES@$", entries, source[0], flags=re.M)


# Members a class inherits from scikit-learn, torch or Python itself
# (get_params, set_output, nn.Module's API, tuple.count...) are documented
# there; a class page lists the members sktransfer defines, including those of
# its private base classes (the estimators' predict, score, ...).
FOREIGN_MODULES = ("sklearn", "torch", "builtins", "numpy", "abc", "typing")


def _defining_module(obj):
    for candidate in (obj, getattr(obj, "fget", None), getattr(obj, "__func__", None)):
        module = getattr(candidate, "__module__", None)
        if module:
            return module
    return None


def _skip_foreign_members(app, what, name, obj, skip, options):
    if what != "class" or skip:
        return None
    module = _defining_module(obj)
    if module is None or module.split(".")[0] in FOREIGN_MODULES:
        return True
    return None


def _fill_sources(app, docname, source):
    _fill_toctree(app, docname, source)


def _constant_comments():
    """The ``#:`` comments of the package's module-level constants, by name.
    autodoc reads them from the module a page names; a constant re-exported by
    a package (``sktransfer.backbones.POOLINGS``, defined in ``_base``) would
    get its type's docstring (``str``, ``tuple``) instead."""
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    import sktransfer

    comments = {}
    for module in pkgutil.walk_packages(sktransfer.__path__, "sktransfer."):
        try:
            docs = ModuleAnalyzer.for_module(module.name).find_attr_docs()
        except Exception:  # a module the analyzer cannot read: no comments
            continue
        for (scope, name), lines in docs.items():
            if not scope and not name.startswith("_"):
                comments.setdefault(name, []).append((module.name, list(lines)))
    return comments


_COMMENTS = {}


def _constant_docstring(app, what, name, obj, options, lines):
    if what != "data":
        return
    if not _COMMENTS:
        _COMMENTS.update(_constant_comments())
    package, short = name.rsplit(".", 1)
    # The module that defines this very object (two modules may share a name;
    # equal small ints are one object): those of the documented package first.
    candidates = sorted(_COMMENTS.get(short, ()),
                        key=lambda item: not item[0].startswith(package + "."))
    comment = next((lines_ for module, lines_ in candidates
                    if getattr(importlib.import_module(module), short, None) is obj), None)
    shown = " ".join(" ".join(lines).split())
    if comment and shown in ("", " ".join((type(obj).__doc__ or "").split())):
        lines[:] = list(comment)


def setup(app):
    app.connect("source-read", _fill_sources)
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # Before numpydoc's own handler (priority 500), which rewrites the lines.
    app.connect("autodoc-process-docstring", _constant_docstring, priority=100)

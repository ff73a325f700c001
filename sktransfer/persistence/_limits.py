"""What a safe file may ask of the machine that loads it, checked from its
declared values before anything is built.

A checksum does not stop an author who recomputes it, so a file is held to
what a file from anyone may do:

* name a backbone that builds from the package itself: a name registered in
  this process (the built-in ``efficientnet_lite0`` and ``simple_cnn``), a
  torchvision classification model, or ``timm:<name>`` / ``timm:<name>.<tag>``
  of timm's registry. ``timm:hf-hub:<repo>`` and ``timm:local-dir:<folder>``
  build their architecture from files outside the safe file (a Hub
  repository, a folder), so loading would reach the network or the disk: they
  are refused by :func:`save` as well as by :func:`load`;
* declare sizes that the machine can afford: nothing a file holds justifies an
  image larger than :data:`MAX_IMAGE_SIDE` pixels a side (``image_size``, the
  fitted preprocessing's resize and crop, which size every image that
  ``predict`` prepares), more than :data:`MAX_CHANNELS` input channels, more
  than :data:`MAX_FEATURES` features per image (what an extractor's cache
  allocates per image) or a batch of more than :data:`MAX_BATCH_SIZE` images;
* choose none of the caller's resources: a loaded estimator has
  ``num_workers=0`` (``predict`` forks no process; ``set_params`` after
  loading to use some).

The sizes of the network itself (an MLP's widths, the number of classes)
must match the tensors the file holds; the estimator's
``__sktransfer_restore__`` checks them on torch's meta device, before it
allocates the network.
"""

import re
from numbers import Integral

from .._utils.device import device_problem
from ..backbones import list_backbones
from ..inputs import PreprocessConfig

#: The largest header a safe file may declare, in bytes: safetensors' own
#: bound, checked before the header is read.
MAX_HEADER_BYTES = 100_000_000
#: The longest side, in pixels, of an image size a safe file may declare.
MAX_IMAGE_SIDE = 2048
#: The most input channels a safe file's preprocessing may declare.
MAX_CHANNELS = 1024
#: The most features per image a safe file's extractor may declare.
MAX_FEATURES = 2**24
#: The largest ``batch_size`` a safe file may declare.
MAX_BATCH_SIZE = 2**20

#: A name of timm's registry, with an optional pretrained tag: no source
#: prefix (``hf-hub:``, ``local-dir:``) and no path.
_TIMM_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$")
_TABULAR = (None, "mlp")


def backbone_problem(model):
    """Why ``model`` (a ``model`` parameter) cannot be in a safe file, or None.

    Only strings are judged here: a module is refused at save as code, and
    other values by the parameter checks.
    """
    if type(model) is not str or model in _TABULAR:
        return None
    if model.startswith("timm:"):
        spec = model[len("timm:"):]
        if _TIMM_NAME.match(spec):
            return None
        return (f"model={model!r:.200} builds from files outside the safe file (a "
                "Hugging Face Hub repository or a folder: timm's hf-hub: and "
                "local-dir: sources, or a path); a safe file names only backbones "
                "that sktransfer builds itself: a registered name, a torchvision "
                "model or 'timm:<name>' of timm's registry")
    if model in list_backbones():
        return None
    return (f"model={model!r:.200} is not a backbone of this process: not registered "
            "(register_backbone, before loading), not a torchvision model and not "
            "'timm:<name>'")


def _sides(size):
    """The sides of an image size (an int or a pair of ints); () otherwise."""
    if isinstance(size, Integral) and not isinstance(size, bool):
        return (int(size),)
    if isinstance(size, (tuple, list)) and all(
            isinstance(s, Integral) and not isinstance(s, bool) for s in size):
        return tuple(int(s) for s in size)
    return ()


def _too_large(what, size):
    if any(side > MAX_IMAGE_SIDE for side in _sides(size)):
        return (f"{what}={size!r:.80} is larger than the {MAX_IMAGE_SIDE} pixels a "
                "side that a safe file may declare")
    return None


#: torch.compile arguments a safe file may set (plain names and switches): its
#: ``options`` can name a compiler program or a folder to write.
SAFE_COMPILE_ARGUMENTS = ("mode", "backend", "fullgraph", "dynamic")


def problems(params, fitted):
    """What a safe file's record asks beyond the bounds above: one message per
    problem (empty when none), from the decoded ``params`` and ``fitted``
    attributes; nothing is built and nothing is read."""
    found = [backbone_problem(params.get("model")),
             _too_large("image_size", params.get("image_size"))]
    if "device" in params:
        found.append(device_problem(params["device"]))
    batch_size = params.get("batch_size")
    if isinstance(batch_size, Integral) and batch_size > MAX_BATCH_SIZE:
        found.append(f"batch_size={batch_size} is more than the {MAX_BATCH_SIZE} "
                     "images a safe file may declare")
    compile_arguments = params.get("compile")
    if isinstance(compile_arguments, dict) and not all(
            key in SAFE_COMPILE_ARGUMENTS and (value is None or type(value) in (bool, str))
            for key, value in compile_arguments.items()):
        # torch.compile's options name compilers and folders (cpp.cxx,
        # trace.debug_dir): a file must not choose a program to run or where to write
        found.append(f"compile={compile_arguments!r:.80} sets torch.compile options "
                     "beyond mode, backend, fullgraph and dynamic; options can name "
                     "programs and folders, which a safe file may not choose (set them "
                     "with set_params after loading)")
    preprocess = fitted.get("preprocess_")
    if type(preprocess) is PreprocessConfig:
        found += [_too_large("preprocess_.crop_size", preprocess.crop_size),
                  _too_large("preprocess_.resize_size", preprocess.resize_size)]
        channels = preprocess.in_chans
        if not (isinstance(channels, Integral) and 1 <= channels <= MAX_CHANNELS):
            found.append(f"preprocess_.in_chans={channels!r:.40} is not a number of "
                         f"channels from 1 to {MAX_CHANNELS}")
    elif preprocess is not None:
        found.append(f"preprocess_ is {type(preprocess).__name__}, not a "
                     "PreprocessConfig")
    n_features = fitted.get("n_features_out_")
    if isinstance(n_features, Integral) and n_features > MAX_FEATURES:
        found.append(f"n_features_out_={n_features} is more than the {MAX_FEATURES} "
                     "features per image a safe file may declare")
    sized = fitted.get("_input_features_", 1)  # a backbone sized at its images
    if not (isinstance(sized, Integral) and not isinstance(sized, bool)
            and 1 <= sized <= MAX_FEATURES):
        found.append(f"_input_features_={sized!r:.40} is not a number of features "
                     f"from 1 to {MAX_FEATURES}")
    return [problem for problem in found if problem is not None]


def limit_resources(params):
    """Set the parameters with which a loaded estimator would choose the
    caller's resources to what costs none: ``num_workers=0``."""
    if "num_workers" in params:
        params["num_workers"] = 0

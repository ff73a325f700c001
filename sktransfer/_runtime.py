"""Running a module over an image source in batches, on a device.

This is the inference half of the training core: the feature extractor's
``transform`` and the classifiers' ``predict`` all go through :func:`run_batches`.
"""

import numpy as np
import torch

from ._device import autocast
from .inputs import BatchPreprocessor


def placed(module, device):
    """``module`` in eval mode on ``device`` (channels_last on CUDA)."""
    module = module.to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    return module.eval()


def run_batches(module, source, config, *, device, autocast_dtype, batch_size,
                num_workers=0, progress=False, indices=None, desc=None):
    """Forward every image of ``source`` through ``module``; return float32 numpy.

    Host batches are pinned and copied without blocking on CUDA; preprocessing
    (scaling, channel matching, resize and crop for in-memory arrays,
    normalisation) runs on ``device``.
    """
    on_cuda = device.type == "cuda"
    preprocessor = BatchPreprocessor(config, device, channels_last=on_cuda)
    batches = source.batches(
        batch_size,
        indices=indices,
        config=config if source.geometry_done else None,
        num_workers=num_workers,
        pin_memory=on_cuda,
    )
    n_samples = len(source) if indices is None else len(indices)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=-(-n_samples // batch_size), desc=desc, unit="batch")
    result = None
    start = 0
    with torch.inference_mode(), autocast(device, autocast_dtype):
        for batch in batches:
            inputs = preprocessor(batch, geometry_done=source.geometry_done)
            features = module(inputs).float()
            if result is None:  # pinned on CUDA, so copies back overlap compute
                result = torch.empty(
                    (n_samples, *features.shape[1:]), dtype=torch.float32, pin_memory=on_cuda
                )
            stop = start + features.shape[0]
            result[start:stop].copy_(features, non_blocking=on_cuda)
            start = stop
    if on_cuda:
        torch.cuda.synchronize(device)
    return result.numpy()

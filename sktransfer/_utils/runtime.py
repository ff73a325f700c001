"""From a checked source to model inputs on a device, and batched inference.

:class:`BatchLoader` is how every estimator feeds a network: raw CPU batches
from an :class:`~sktransfer.inputs.ImageSource` (pinned on CUDA), then, on the
device, scaling, channel matching, resize and crop (for in-memory arrays),
optional augmentation and normalisation. :func:`run_batches` is the inference
loop of the feature extractor's ``transform`` and the classifiers' ``predict``.
"""

import numpy as np
import torch

from .device import autocast
from ..inputs import BatchPreprocessor
from ..inputs._text import TextPreprocess


def placed(module, device):
    """``module`` in eval mode on ``device`` (channels_last on CUDA)."""
    module = module.to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    return module.eval()


class BatchLoader:
    """Batches of ``source`` made ready for a network on ``device``.

    Parameters
    ----------
    source : ImageSource
        Images, or flat rows (an ArraySource of shape (N, F)) when ``config`` is
        None.
    config : PreprocessConfig or None
        The backbone's preprocessing; None for flat (tabular) input.
    device : torch.device
    num_workers : int
        DataLoader workers for per-image sources (files, PIL images).
    """

    def __init__(self, source, config, device, *, num_workers=0):
        self.source = source
        self.config = config
        self.device = device
        self.num_workers = num_workers
        self.on_cuda = device.type == "cuda"
        self.is_text = isinstance(config, TextPreprocess)
        self._preprocessor = (
            BatchPreprocessor(config, device, channels_last=self.on_cuda)
            if config is not None and not self.is_text else None
        )

    def __len__(self):
        return len(self.source)

    def with_transform(self, transform):
        """A loader over the same images, each passed through the per-image
        ``transform`` where it is decoded (after resize and crop, before
        batching): for training batches, never for inference."""
        source = self.source.with_transform(transform, in_chans=self.config.in_chans)
        return BatchLoader(source, self.config, self.device, num_workers=self.num_workers)

    def batches(self, batch_size, *, indices=None):
        """Raw CPU batches (all samples, or those at ``indices`` in that order)."""
        return self.source.batches(
            batch_size,
            indices=indices,
            config=self.config if self.source.geometry_done else None,
            num_workers=self.num_workers,
            pin_memory=self.on_cuda,
        )

    def inference_batches(self, batch_size, *, indices=None):
        """``(positions, batch)`` pairs for inference, each raw CPU batch with
        the positions of its samples among those asked for (all, or those at
        ``indices``; positions count from 0 in that order).

        Texts are visited by length, so that batches of similar lengths pad
        little (the caller puts the outputs back in order by ``positions``):
        tokenized once and ordered by tokens
        (:meth:`~sktransfer.inputs.TextSource.inference_batches`), or, when
        DataLoader workers tokenize, ordered by characters. Other samples are
        visited as given.
        """
        n_samples = len(self) if indices is None else len(indices)
        if self.is_text and not self.num_workers:
            yield from self.source.inference_batches(
                batch_size, self.config, indices=indices, pin_memory=self.on_cuda)
            return
        if self.is_text:
            positions = self.source.length_order(indices)
            rows = positions if indices is None else np.asarray(indices)[positions]
        else:
            positions, rows = np.arange(n_samples), indices
        # the batches first: zip then runs their generator to its end (and its cleanup)
        for batch, first in zip(self.batches(batch_size, indices=rows),
                                range(0, n_samples, batch_size)):
            yield positions[first:first + batch_size], batch

    def prepare(self, batch, *, augment=None):
        """A raw batch as network input on the device."""
        if self.is_text:
            batch = batch.to(self.device, non_blocking=True)
            return batch if augment is None else augment(batch)
        if self._preprocessor is None:
            return batch.to(self.device, non_blocking=True).float()
        return self._preprocessor(
            batch, geometry_done=self.source.geometry_done, augment=augment
        )


def run_batches(module, loader, *, autocast_dtype, batch_size, indices=None,
                progress=False, desc=None):
    """Forward the samples of ``loader`` through ``module``; float32 numpy out.

    Outputs are copied into one pinned host buffer without blocking on CUDA, so
    copies back overlap the next batch's compute.
    """
    device = loader.device
    on_cuda = loader.on_cuda
    n_samples = len(loader) if indices is None else len(indices)
    batches = loader.inference_batches(batch_size, indices=indices)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=-(-n_samples // batch_size), desc=desc, unit="batch")
    result = None
    visited = np.empty(n_samples, dtype=np.int64)  # the position of each output row
    start = 0
    with torch.inference_mode(), autocast(device, autocast_dtype):
        for positions, batch in batches:
            outputs = module(loader.prepare(batch)).float()
            if result is None:
                result = torch.empty((n_samples, *outputs.shape[1:]), dtype=torch.float32,
                                     pin_memory=on_cuda)
            stop = start + outputs.shape[0]
            result[start:stop].copy_(outputs, non_blocking=on_cuda)
            visited[start:stop] = positions
            start = stop
    if on_cuda:
        torch.cuda.synchronize(device)
    result = result.numpy()
    if np.array_equal(visited, np.arange(n_samples)):
        return result
    restored = np.empty_like(result)  # back in the samples' order
    restored[visited] = result
    return restored

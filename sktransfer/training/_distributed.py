"""One fit over several processes: what a rank trains on and what the ranks agree on.

The engine is PyTorch's own: ``torch.distributed`` process groups (gloo on CPUs,
NCCL on GPUs) and :class:`~torch.nn.parallel.DistributedDataParallel`, which
averages the network's gradients during the backward pass. This module adds no
collective algorithm of its own; it decides *what* each rank sees and calls the
engine's collectives at the points where the ranks must agree:

* **Data.** Every rank draws the same shuffled order (the shuffling generator is
  seeded alike), cuts it into the same global batches of ``batch_size`` rows, and
  takes its own contiguous part of each (:meth:`Shard.split`). A rank whose part
  is short (the last batch) is padded with copies of its rows that weigh nothing
  in the loss, so that every rank runs the same number of steps. The source and
  the target batches of domain adaptation are split alike.
* **Loss.** Each rank's supervised loss is scaled by the share of the global
  batch's weight it holds (:meth:`Shard.loss_scale`), so that the gradient
  DistributedDataParallel averages is the gradient of the global batch's
  weighted mean: the same step one process would take, whatever the padding or
  the sample weights.
* **Metrics.** Validation rows are split without padding and the outputs
  gathered back in row order (:meth:`Shard.gather_rows`): no sample counts twice
  and every rank computes the same scores. Training losses are averaged across
  ranks (:meth:`Shard.mean`), so every rank writes the same history, and a stop
  asked for on one rank stops all of them (:meth:`Shard.any`).
* **Small modules.** The modules an adaptation loss trains besides the network
  (a discriminator) have their gradients averaged by one all-reduce per step
  (:meth:`Shard.average_gradients`).
"""

import dataclasses
import inspect

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ._freeze import BATCH_NORMS

_TORCH_BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d,
                      torch.nn.SyncBatchNorm)

#: DistributedDataParallel's switch for buffers at each forward pass, by the
#: name this torch gives it (newer releases renamed ``broadcast_buffers``).
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False})


@dataclasses.dataclass(frozen=True)
class Shard:
    """This process's place in a fit over ``world_size`` processes.

    ``Shard()`` (rank 0 of 1) is a fit in one process: every method is then the
    identity or a no-op, and no collective is called.

    Parameters
    ----------
    rank : int
    world_size : int
    """

    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self):
        """Whether the fit spans several processes."""
        return self.world_size > 1

    @property
    def is_main(self):
        """Whether this is rank 0, the one that writes files and logs."""
        return self.rank == 0

    # -- data ----------------------------------------------------------------
    def local_size(self, batch_size):
        """Rows a rank gets of a full global batch."""
        return -(-batch_size // self.world_size)

    def part(self, rows):
        """This rank's part of one global batch ``rows``: ``(local_rows, keep)``,
        ``keep`` 1.0 for a real row and 0.0 for a padding copy. Every rank's part
        has ``ceil(len(rows) / world_size)`` rows."""
        rows = np.asarray(rows)
        size = -(-len(rows) // self.world_size)
        local = np.array_split(rows, self.world_size)[self.rank]
        keep = np.ones(size, dtype=np.float32)
        if len(local) < size:
            # Pad with copies of the rank's own rows (of the batch's first row
            # when it has none); they weigh nothing in the loss.
            pool = local if len(local) else rows[:1]
            pad = np.resize(pool, size - len(local))
            keep[len(local):] = 0.0
            local = np.concatenate([local, pad])
        return local, keep

    def split(self, order, batch_size):
        """``order`` cut into global batches of ``batch_size`` rows, and this
        rank's part of each: a list of ``(global_rows, local_rows, keep)``."""
        return [(order[start:start + batch_size],
                 *self.part(order[start:start + batch_size]))
                for start in range(0, len(order), batch_size)]

    def loss_scale(self, local_weight, global_weight):
        """The factor of a rank's weighted-mean loss that makes the average over
        ranks equal the weighted mean over the global batch: ``world_size *
        local_weight / global_weight``."""
        if global_weight <= 0:
            return 0.0
        return self.world_size * local_weight / global_weight

    # -- agreement -----------------------------------------------------------
    def mean(self, value):
        """The mean of a float over the ranks (None and NaN pass through)."""
        if not self.distributed or value is None:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor)
        return float(tensor) / self.world_size

    def mean_values(self, record):
        """The float values of ``record`` (a dict) averaged over the ranks, in
        one all-reduce over its keys in sorted order (every rank's steps report
        the same keys)."""
        keys = sorted(key for key, value in record.items() if isinstance(value, float))
        if not self.distributed or not keys:
            return {key: record[key] for key in keys}
        tensor = torch.tensor([record[key] for key in keys], dtype=torch.float64,
                              device=_collective_device())
        dist.all_reduce(tensor)
        return dict(zip(keys, (tensor / self.world_size).tolist()))

    def broadcast_buffers(self, module):
        """Rank 0's buffers (BatchNorm's running statistics) on every rank."""
        if not self.distributed:
            return
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)

    def any(self, flag):
        """Whether ``flag`` is true on any rank."""
        if not self.distributed:
            return bool(flag)
        tensor = torch.tensor([int(bool(flag))], device=_collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor)

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (pickled by the engine)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_rows(self, local):
        """Every rank's ``local`` array (the outputs of its part of
        :func:`numpy.array_split` of some rows), concatenated in rank order:
        the outputs of all the rows, in their order, each once."""
        if not self.distributed:
            return local
        parts = [None] * self.world_size
        dist.all_gather_object(parts, np.asarray(local))
        return np.concatenate([part for part in parts if part.size] or parts[:1])

    def average_gradients(self, parameters):
        """Average the gradients of ``parameters`` over the ranks, in one
        all-reduce. A parameter without a gradient keeps none: every rank runs
        the same step, so it has none on any rank."""
        if not self.distributed:
            return
        parameters = [p for p in parameters if p.grad is not None]
        if not parameters:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in parameters])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for parameter in parameters:
            count = parameter.grad.numel()
            parameter.grad.copy_(flat[offset:offset + count].view_as(parameter.grad))
            offset += count


def _collective_device():
    """Where a collective's own small tensors live: NCCL reduces only CUDA
    tensors (on the rank's current GPU), gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _synchronised(layer):
    """A BatchNorm layer as its synchronised twin, sharing its parameters and
    buffers: torch's for torch's own classes, timm's for timm's BatchNorm with
    an activation (which torch's would drop); another subclass is refused
    rather than trained as something else."""
    if type(layer) in _TORCH_BATCH_NORMS:
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(layer)
    try:
        from timm.layers import BatchNormAct2d, convert_sync_batchnorm
    except ImportError:  # pragma: no cover - timm is a dependency
        BatchNormAct2d = None
    if BatchNormAct2d is not None and isinstance(layer, BatchNormAct2d):
        return convert_sync_batchnorm(layer)
    raise ValueError(f"sync_batchnorm=True cannot convert {type(layer).__qualname__} (a "
                     "subclass of BatchNorm that may do more than normalise); train "
                     "with sync_batchnorm=False.")


def wrap_for_ranks(net, shard, device, *, sync_batchnorm=False, find_unused=False):
    """``(module, unwrap)``: the module a rank's steps call, and a function that
    undoes the wrapping once the fit is done.

    One process: ``net`` itself. Several: ``net`` in DistributedDataParallel,
    which starts every rank from rank 0's weights and buffers and averages the
    gradients in the backward pass. It registers every parameter, so that
    layers a freezing schedule unfreezes later are averaged too; with
    ``find_unused`` (a pretrained backbone: frozen layers, a language model's
    pooler or the layers after the one read, get no gradient) it looks each step
    for the parameters left without one, which keep none. Buffers are not
    synchronised at each forward pass (no collective hides in one); the trainer
    sends rank 0's BatchNorm statistics to every rank after each epoch. With
    ``sync_batchnorm``, BatchNorm layers become :class:`torch.nn.SyncBatchNorm`
    for the fit (batch statistics over every rank's part of the batch; GPUs
    only), sharing their parameters and buffers; ``unwrap`` puts the plain layers
    back.
    """
    if not shard.distributed:
        return net, lambda: None
    originals = []
    if sync_batchnorm:
        for module in list(net.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, BATCH_NORMS):
                    originals.append((module, child_name, child))
                    setattr(module, child_name, _synchronised(child))

    def unwrap():
        for module, child_name, child in originals:
            setattr(module, child_name, child)

    wrapped = DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused, **_NO_FORWARD_BUFFER_SYNC)
    return wrapped, unwrap

"""Starting one fit over several processes, or joining a launcher's.

``devices`` and ``strategy`` are plain values (an int, a list, a string): the
estimator never holds a process group or a wrapped model, so ``clone``,
``get_params``, pickling and ``GridSearchCV`` see only those values. At ``fit``:

* **One machine, from a notebook or a script** (``devices=2``, no launcher):
  ``fit`` spawns one worker process per device with
  :func:`torch.multiprocessing.start_processes` (the ``spawn`` method: no
  inherited threads or CUDA state), hands each the estimator and the validated
  data through a private temporary folder, and joins them. The workers meet in a
  ``torch.distributed`` process group (gloo on CPUs, NCCL on GPUs) initialised
  from a file in that folder, so no port is opened or guessed. Rank 0 writes the
  fitted estimator back; the calling process copies its fitted attributes.
* **Under a launcher** (``torchrun``, or ``srun`` with ``MASTER_ADDR`` set):
  every launched process runs the same script and calls ``fit``; the fit joins
  the launcher's process group instead of spawning (``devices`` other than 1),
  and every process ends with the same weights.

Failures: when a worker raises, the engine's process context stops the other
workers, and ``fit`` raises the worker's exception in the caller with the
worker's traceback attached as a note. Ctrl-C in the caller stops every worker
(the workers ignore SIGINT themselves, so that the caller decides) and raises
KeyboardInterrupt; the estimator keeps what it held before the fit.
"""

import atexit
import contextlib
import dataclasses
import os
import pickle
import signal
import tempfile
import threading
import traceback
from numbers import Integral
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from .._utils.notes import add_note
from ..training._distributed import Shard

STRATEGIES = ("auto", "ddp")
#: Environment variables of the launchers whose process groups a fit joins.
_TORCHRUN = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_SLURM = ("SLURM_PROCID", "SLURM_NTASKS", "MASTER_ADDR", "MASTER_PORT")


@dataclasses.dataclass(frozen=True)
class Layout:
    """How many processes a fit runs in, and how they start.

    Attributes
    ----------
    world_size : int
        Processes in the fit (1: this process alone).
    launched : bool
        A launcher started the processes (join its group; spawn none).
    rank, local_rank : int
        This process's rank, and its rank on its machine (under a launcher).
    device_ids : tuple of int or None
        The GPU of each spawned rank (None on CPUs).
    """

    world_size: int = 1
    launched: bool = False
    rank: int = 0
    local_rank: int = 0
    device_ids: tuple | None = None


def launcher_environment(environ=None):
    """``(rank, local_rank, world_size)`` of a process started by ``torchrun``
    or by SLURM's ``srun`` (with ``MASTER_ADDR`` and ``MASTER_PORT`` set), or
    None outside a launcher or in a group of one."""
    environ = os.environ if environ is None else environ
    if all(name in environ for name in _TORCHRUN):
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local = int(environ.get("LOCAL_RANK", rank))
    elif all(name in environ for name in _SLURM):
        rank, world = int(environ["SLURM_PROCID"]), int(environ["SLURM_NTASKS"])
        local = int(environ.get("SLURM_LOCALID", rank))
    else:
        return None
    return (rank, local, world) if world > 1 else None


def check_devices(devices, strategy, device, *, sync_batchnorm=False, environ=None):
    """``devices``, ``strategy`` and ``sync_batchnorm`` checked against the
    resolved ``device`` (a torch.device); returns the :class:`Layout`.

    Raises ValueError naming the problem before any process starts.
    """
    if not (isinstance(strategy, str) and strategy in STRATEGIES):
        if strategy == "fsdp":
            raise ValueError(
                "strategy='fsdp' is not offered: sktransfer fits over several processes "
                "with DistributedDataParallel (strategy='ddp'), which keeps a whole copy "
                "of the network on each device; see docs/distributed.md.")
        raise ValueError(f"strategy={strategy!r} is not one of {STRATEGIES}.")
    if isinstance(devices, str):
        if devices != "auto":
            raise ValueError(f"devices={devices!r} must be 'auto', an int >= 1 or a "
                             "list of GPU indices.")
        count, ids = 1, None
    elif isinstance(devices, Integral) and not isinstance(devices, bool):
        if devices < 1:
            raise ValueError(f"devices={devices!r} must be at least 1.")
        count, ids = int(devices), None
    elif isinstance(devices, (list, tuple)):
        if not devices or not all(isinstance(i, Integral) and not isinstance(i, bool)
                                  and i >= 0 for i in devices):
            raise ValueError(f"devices={devices!r}: a list of devices must hold GPU "
                             "indices (ints >= 0), at least one.")
        if len(set(devices)) != len(devices):
            raise ValueError(f"devices={devices!r} names a GPU twice.")
        if device.type != "cuda":
            raise ValueError(f"devices={devices!r} names GPUs, but the fit runs on "
                             f"{device.type!r}: pass devices=<number of processes> on a "
                             "CPU, or device='cuda'.")
        count, ids = len(devices), tuple(int(i) for i in devices)
    else:
        raise ValueError(f"devices={devices!r} must be 'auto', an int >= 1 or a list "
                         "of GPU indices.")
    if sync_batchnorm and device.type != "cuda":
        raise ValueError("sync_batchnorm=True needs GPUs (torch's SyncBatchNorm "
                         f"synchronises CUDA tensors); this fit runs on {device.type!r}.")
    launched = launcher_environment(environ)
    if launched is not None and devices != 1:
        rank, local, world = launched
        return Layout(world_size=world, launched=True, rank=rank, local_rank=local)
    if count == 1:
        return Layout()
    if device.type == "cuda":
        available = torch.cuda.device_count()
        ids = ids or tuple(range(count))
        if max(ids) >= available:
            raise ValueError(f"devices={devices!r} asks for GPU {max(ids)}, but this "
                             f"machine has {available}.")
    return Layout(world_size=count, device_ids=ids)


def rank_device(layout, device):
    """The device of this process's rank: its GPU, or ``device`` (a CPU)."""
    if device.type != "cuda":
        return device
    index = (layout.device_ids[layout.rank] if layout.device_ids is not None
             else layout.local_rank)
    return torch.device("cuda", index)


def join_launcher(layout, device):
    """Join the process group of a launcher (once per process); returns the
    rank's :class:`Shard` and device."""
    device = rank_device(layout, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=layout.rank, world_size=layout.world_size)
        # The group lives until the process ends, for the later fits of the
        # script; left to the interpreter's teardown, the group's threads can
        # be destroyed while still running, which aborts the process.
        atexit.register(_leave_group)
    elif dist.get_world_size() != layout.world_size:
        raise RuntimeError(f"a process group of {dist.get_world_size()} processes exists, "
                           f"but the launcher started {layout.world_size}.")
    return Shard(dist.get_rank(), dist.get_world_size()), device


#: Seconds between two checks for a pending Ctrl-C while the workers train.
_JOIN_POLL_SECONDS = 0.5


def _leave_group():
    """Destroy the process group that :func:`join_launcher` created, if the
    script did not (at interpreter exit)."""
    if dist.is_initialized():
        dist.destroy_process_group()


_START_METHOD_LOCK = threading.Lock()


@contextlib.contextmanager
def _standard_start_method():
    """Python's own default start method while the ranks start, when another
    library set one of its own in this process (joblib's loky workers set
    ``"loky"``): a spawned process reads it from its parent before running
    any code, and one that Python does not know stops it (``cannot find
    context for 'loky'``)."""
    with _START_METHOD_LOCK:  # one swap at a time: threads of one worker too
        method = mp.get_start_method(allow_none=True)
        if method is None or method in mp.get_all_start_methods():
            yield
            return
        mp.set_start_method("spawn", force=True)
        try:
            yield
        finally:
            mp.set_start_method(method, force=True)


def spawn_fit(estimator, layout, device, train_kwargs):
    """Run ``estimator._train(shard=..., device=..., **train_kwargs)`` in
    ``layout.world_size`` new processes and copy rank 0's fitted attributes
    onto ``estimator``."""
    if mp.current_process().daemon:
        raise ValueError(
            f"devices={layout.world_size}: this process is a daemonic worker (of a "
            "multiprocessing pool, or a dask worker), which cannot start the fit's "
            "processes; fit with devices=1 there, or from a main process.")
    threads = max(1, torch.get_num_threads() // layout.world_size)
    with tempfile.TemporaryDirectory(prefix="sktransfer-ddp-") as folder:
        folder = Path(folder)
        with open(folder / "fit.pkl", "wb") as file:
            pickle.dump((estimator, train_kwargs), file,
                        protocol=pickle.HIGHEST_PROTOCOL)
        with _standard_start_method():
            context = mp.start_processes(
                _worker, args=(str(folder), layout, device, threads),
                nprocs=layout.world_size, join=False, start_method="spawn")
        try:
            # A bounded wait returns to Python now and then: a Ctrl-C that the
            # kernel hands to another thread of this process only sets a flag,
            # which the main thread acts on between two waits, never inside one.
            while not context.join(timeout=_JOIN_POLL_SECONDS):
                pass
        except KeyboardInterrupt:
            _stop(context)
            raise
        except ProcessException as exc:
            _stop(context)
            _raise_worker_error(folder, exc)
        with open(folder / "result.pkl", "rb") as file:
            fitted = pickle.load(file)  # written by our own rank 0 a moment ago
    for name, value in vars(fitted).items():
        if name.endswith("_") and not name.startswith("_"):
            setattr(estimator, name, value)
    return estimator


def _stop(context):
    for process in context.processes:
        if process.is_alive():
            process.terminate()
    for process in context.processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()


def _raise_worker_error(folder, exc):
    """Raise the exception of the worker that failed first (the others then
    fail on a closed connection), with its traceback as a note; the engine's
    own error when none was recorded (a worker killed by a signal)."""
    path = folder / "first-error.pkl"
    if not path.exists():
        raise RuntimeError(
            f"a worker of the fit (rank {exc.error_index}) ended before it could "
            f"report an error: {exc}. Its own output (above, on stderr) says why; a "
            "worker that stops while it starts is most often a script without `if "
            "__name__ == '__main__':` around the fit (each worker imports the "
            "script), or a process killed for memory.") from exc
    try:
        with open(path, "rb") as file:
            rank, error, text = pickle.load(file)  # written by our own worker
    except Exception:  # an exception class that cannot be rebuilt from its pickle
        raise RuntimeError(f"a worker of the fit (rank {exc.error_index}) failed:\n"
                           f"{exc}") from exc
    add_note(error, f"Raised in rank {rank} of the fit's processes:\n{text}")
    raise error


def _worker(rank, folder, layout, device, threads):
    """One rank of a spawned fit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller stops the workers
    torch.set_num_threads(threads)
    folder = Path(folder)
    layout = dataclasses.replace(layout, rank=rank, local_rank=rank)
    device = rank_device(layout, device)
    try:
        with open(folder / "fit.pkl", "rb") as file:
            estimator, train_kwargs = pickle.load(file)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                init_method=(folder / "store").as_uri(),
                                rank=rank, world_size=layout.world_size)
        estimator._train(shard=Shard(rank, layout.world_size), device=device,
                         **train_kwargs)
        if rank == 0:
            with open(folder / "result.pkl", "wb") as file:
                pickle.dump(estimator, file, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        text = traceback.format_exc()
        try:
            payload = pickle.dumps((rank, exc, text))
        except Exception:
            payload = pickle.dumps((rank, RuntimeError(f"{type(exc).__name__}: {exc}"), text))
        # The first worker to fail names the error ("x": never overwrite it),
        # before its connections close and the others fail on them.
        try:
            with open(folder / "first-error.pkl", "xb") as file:
                file.write(payload)
        except FileExistsError:
            pass
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

"""Callbacks that act on one rank of a fit over several processes (the workers
import them by module name, so they live outside the test modules)."""

from pathlib import Path

import torch.distributed as dist

from sktransfer.training import Callback


def _rank():
    return dist.get_rank() if dist.is_initialized() else 0


class RaiseOnRank(Callback):
    """Raise a ValueError at the end of epoch ``epoch`` (from 1) on ``rank`` only."""

    def __init__(self, rank=1, epoch=1):
        self.rank = rank
        self.epoch = epoch

    def on_epoch_end(self, state, **kwargs):
        if _rank() == self.rank and len(state.history) == self.epoch:
            raise ValueError(f"a genuine error on rank {self.rank}")


class StopOnRank(Callback):
    """Ask to stop after epoch ``epoch`` on ``rank`` only."""

    def __init__(self, rank=1, epoch=1):
        self.rank = rank
        self.epoch = epoch

    def on_epoch_end(self, state, **kwargs):
        if _rank() == self.rank and len(state.history) == self.epoch:
            state.stop_training = True


class MarkStarted(Callback):
    """Touch ``path`` when rank 0 finishes its first epoch (a test waits for it)."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, state, **kwargs):
        if _rank() == 0:
            Path(self.path).touch()


class RecordHistory(Callback):
    """Write each rank's history at the fit's end to ``folder/history-<rank>.txt``."""

    def __init__(self, folder):
        self.folder = folder

    def on_fit_end(self, state, **kwargs):
        Path(self.folder, f"history-{_rank()}.txt").write_text(repr(state.history))


class CrashOnceOnRank(Callback):
    """Raise at the end of epoch ``epoch`` on ``rank`` the first time only (a
    crash): it leaves ``marker`` behind, and a later fit runs through."""

    def __init__(self, marker, rank=1, epoch=2):
        self.marker = marker
        self.rank = rank
        self.epoch = epoch

    def on_epoch_end(self, state, **kwargs):
        if (_rank() == self.rank and len(state.history) == self.epoch
                and not Path(self.marker).exists()):
            Path(self.marker).touch()
            raise RuntimeError("a crash")


class CountEpochs(Callback):
    """Write how many epochs each rank trained in its fit to
    ``folder/epochs-<rank>.txt``."""

    def __init__(self, folder):
        self.folder = folder

    def on_fit_begin(self, state, **kwargs):
        self.count_ = 0

    def on_epoch_begin(self, state, **kwargs):
        self.count_ += 1

    def on_fit_end(self, state, **kwargs):
        Path(self.folder, f"epochs-{_rank()}.txt").write_text(str(self.count_))

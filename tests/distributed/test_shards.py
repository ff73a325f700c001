"""The rules of a fit over several processes, checked in one process: how a
global batch is split between ranks, the loss scale that makes the ranks'
average the global batch's loss, and the checks of devices / strategy."""

import numpy as np
import pytest
import torch

from sktransfer.classifiers._distributed import Layout, check_devices, launcher_environment
from sktransfer.training._criteria import CrossEntropy
from sktransfer.training._distributed import Shard

CPU = torch.device("cpu")


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("n_rows, batch_size", [(10, 4), (7, 8), (3, 8), (9, 3), (1, 2)])
def test_ranks_cover_each_global_batch_once(world, n_rows, batch_size):
    order = np.random.default_rng(0).permutation(n_rows)
    shards = [Shard(rank, world) for rank in range(world)]
    splits = [shard.split(order, batch_size) for shard in shards]
    n_batches = -(-n_rows // batch_size)
    assert all(len(split) == n_batches for split in splits)  # the same steps on every rank
    for b in range(n_batches):
        rows = order[b * batch_size:(b + 1) * batch_size]
        real = np.concatenate([local[keep == 1] for _, local, keep in
                               (split[b] for split in splits)])
        np.testing.assert_array_equal(real, rows)  # every row once, in order, no padding
        sizes = {len(split[b][1]) for split in splits}
        assert sizes == {-(-len(rows) // world)}  # equal parts: the ranks' batches line up
        for _, local, keep in (split[b] for split in splits):
            assert set(local[keep == 0]) <= set(rows)  # padding copies rows of the batch


def test_full_batches_have_the_local_size():
    shard = Shard(1, 3)
    assert shard.local_size(32) == 11
    assert all(len(local) == 11 for _, local, _ in shard.split(np.arange(96), 32))


@pytest.mark.parametrize("world", [2, 3])
def test_scaled_rank_losses_average_to_the_global_loss(world):
    """What DistributedDataParallel averages (each rank's scaled loss) equals the
    global batch's weighted mean loss, padding and uneven weights included."""
    rng = np.random.default_rng(1)
    logits = torch.as_tensor(rng.normal(size=(7, 3)), dtype=torch.float32)
    targets = torch.as_tensor(rng.integers(0, 3, size=7))
    weights = torch.as_tensor(rng.uniform(0.1, 3.0, size=7), dtype=torch.float32)
    criterion = CrossEntropy()
    rows = np.arange(7)
    expected = criterion(logits, targets, weights)
    total = 0.0
    for rank in range(world):
        shard = Shard(rank, world)
        local, keep = shard.part(rows)
        index = torch.as_tensor(local)
        local_weights = weights[index] * torch.as_tensor(keep)
        scale = shard.loss_scale(float(local_weights.sum()), float(weights.sum()))
        total += scale * criterion(logits[index], targets[index], local_weights)
    torch.testing.assert_close(total / world, expected)


def test_one_process_shard_is_neutral():
    shard = Shard()
    assert not shard.distributed and shard.is_main
    assert shard.mean(1.5) == 1.5 and shard.any(True) and not shard.any(False)
    assert shard.broadcast({"a": 1}) == {"a": 1}
    np.testing.assert_array_equal(shard.gather_rows(np.arange(3)), np.arange(3))


# -- devices, strategy -------------------------------------------------------

@pytest.mark.parametrize("devices, strategy, match", [
    (0, "auto", "at least 1"),
    ("two", "auto", "'auto', an int"),
    (True, "auto", "'auto', an int"),
    (1.5, "auto", "'auto', an int"),
    ([], "auto", "GPU indices"),
    ([0, -1], "auto", "GPU indices"),
    ([0, 0], "auto", "twice"),
    ([0, 1], "auto", "names GPUs, but the fit runs on 'cpu'"),
    (2, "fsdp", "not offered"),
    (2, "deepspeed", "not one of"),
])
def test_bad_devices_and_strategy_are_refused(devices, strategy, match):
    with pytest.raises(ValueError, match=match):
        check_devices(devices, strategy, CPU, environ={})


def test_sync_batchnorm_needs_gpus():
    with pytest.raises(ValueError, match="sync_batchnorm=True needs GPUs"):
        check_devices(2, "ddp", CPU, sync_batchnorm=True, environ={})


def test_layouts_without_a_launcher():
    assert check_devices("auto", "auto", CPU, environ={}) == Layout()
    assert check_devices(1, "ddp", CPU, environ={}) == Layout()
    assert check_devices(3, "auto", CPU, environ={}) == Layout(world_size=3)


TORCHRUN = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node0",
            "MASTER_PORT": "29500"}
SLURM = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8",
         "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}


def test_launchers_are_read_from_their_environment():
    assert launcher_environment(TORCHRUN) == (1, 1, 4)
    assert launcher_environment(SLURM) == (5, 1, 8)
    assert launcher_environment({**TORCHRUN, "WORLD_SIZE": "1", "RANK": "0"}) is None
    # srun without a rendezvous address is not a group to join
    assert launcher_environment({k: v for k, v in SLURM.items() if k != "MASTER_ADDR"}) is None
    assert launcher_environment({}) is None


def test_a_launched_fit_joins_the_launchers_group_unless_devices_is_1():
    layout = check_devices("auto", "auto", CPU, environ=TORCHRUN)
    assert layout == Layout(world_size=4, launched=True, rank=1, local_rank=1)
    assert check_devices(2, "ddp", CPU, environ=SLURM).launched
    assert check_devices(1, "auto", CPU, environ=TORCHRUN) == Layout()


def test_estimators_refuse_bad_values_before_any_work():
    from sktransfer import DomainAdaptClassifier, FineTuneClassifier, FineTuneRegressor

    X = np.zeros((6, 4), dtype=np.float32)
    for estimator in (FineTuneClassifier, FineTuneRegressor, DomainAdaptClassifier):
        with pytest.raises(ValueError, match="devices"):
            estimator(model=None, devices=0).fit(X, [0, 1] * 3)
        with pytest.raises(ValueError, match="not offered"):
            estimator(model=None, devices=2, strategy="fsdp").fit(X, [0, 1] * 3)


def test_sync_batchnorm_keeps_each_layers_computation():
    import timm.layers
    from torch import nn

    from sktransfer.training._distributed import _synchronised

    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 5)
    for layer in (nn.BatchNorm2d(6), timm.layers.BatchNormAct2d(6, act_layer=nn.ReLU6)):
        layer.running_mean.uniform_(-1, 1)
        layer.eval()
        synced = _synchronised(layer).eval()
        assert isinstance(synced, nn.SyncBatchNorm)
        assert synced.weight is layer.weight  # shares what trains
        torch.testing.assert_close(synced(x), layer(x))  # the activation kept

    class Scaled(nn.BatchNorm2d):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ValueError, match="cannot convert .*Scaled"):
        _synchronised(Scaled(6))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_no_rank_trains_a_batch_of_one_row(world):
    """BatchNorm in training mode cannot normalise one sample over a 1x1 map:
    an epoch leaves out a last batch that would give each rank one row (one
    process: a last batch of one row), and counts its batches the same."""
    from sktransfer.training._steps import batches_per_epoch, epoch_length, epoch_rows

    batch_size = 8
    for n_rows in range(batch_size + 1, 4 * batch_size):
        order = np.arange(n_rows)
        kept = epoch_rows(order, batch_size, world)
        assert len(kept) == epoch_length(n_rows, batch_size, world) >= n_rows - world
        parts = [Shard(rank, world).split(kept, batch_size) for rank in range(world)]
        assert all(len(local) >= 2 for rank_parts in parts for _, local, _ in rank_parts)
        assert batches_per_epoch(n_rows, batch_size, world) == len(parts[0])
    assert epoch_length(5, 8, world) == 5  # one batch: nothing to leave out

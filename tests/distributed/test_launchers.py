"""A fit started by a launcher joins its process group: torchrun on CPUs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sktransfer import FineTuneClassifier


@pytest.mark.slow
def test_torchrun_processes_join_one_fit(tmp_path):
    script = Path(__file__).with_name("launched_fit.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        env.pop(name, None)
    # One node on the loopback address: --standalone would hand the workers
    # socket.getfqdn() as MASTER_ADDR, which a container's hostname may not resolve to.
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
         "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", "--local-addr=127.0.0.1",
         "--nproc-per-node=2", str(script), str(tmp_path)],
        env=env, timeout=300, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    probas = [np.load(tmp_path / f"proba-{rank}.npy") for rank in (0, 1)]
    losses = [np.load(tmp_path / f"losses-{rank}.npy") for rank in (0, 1)]
    np.testing.assert_array_equal(probas[0], probas[1])  # every process: the same weights
    np.testing.assert_array_equal(losses[0], losses[1])  # and the same history
    # the same steps as one process on the whole batches
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=60)
    X = (rng.normal(size=(60, 8)) + y[:, None]).astype(np.float32)
    single = FineTuneClassifier(model=None, epochs=3, batch_size=16, random_state=0,
                                hidden_layer_sizes=(16,)).fit(X, y)
    np.testing.assert_allclose(probas[0], single.predict_proba(X), atol=1e-5)


def test_a_group_joined_for_a_launcher_is_left_at_exit(tmp_path):
    """A process group that a fit created for its launcher is destroyed when the
    script ends (an atexit hook), before the interpreter's teardown could stop
    the group's threads mid-run; a group the script made itself is its own."""
    code = """
import atexit, socket
import torch, torch.distributed as dist
from sktransfer.classifiers._distributed import Layout, join_launcher
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
import os
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
layout = Layout(world_size=1, launched=True, rank=0, local_rank=0, device_ids=None)
join_launcher(layout, torch.device("cpu"))
assert dist.is_initialized()
join_launcher(layout, torch.device("cpu"))  # a second fit reuses the group
atexit._run_exitfuncs()
print("left" if not dist.is_initialized() else "still in the group")
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, timeout=120,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.strip() == "left"

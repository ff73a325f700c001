"""A script that torchrun starts in each of its processes (see
test_launchers.py): every process fits with devices="auto", which joins
torchrun's process group, and writes its predictions."""

import sys

import numpy as np
import torch

from sktransfer import FineTuneClassifier

torch.set_num_threads(1)
rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=60)
X = (rng.normal(size=(60, 8)) + y[:, None]).astype(np.float32)
clf = FineTuneClassifier(model=None, epochs=3, batch_size=16, random_state=0,
                         hidden_layer_sizes=(16,)).fit(X, y)
rank = torch.distributed.get_rank()
np.save(f"{sys.argv[1]}/proba-{rank}.npy", clf.predict_proba(X))
np.save(f"{sys.argv[1]}/losses-{rank}.npy", [r["train_loss"] for r in clf.history_])
# torch's advice for a script that runs in a process group: leave it at the end
# (sktransfer also does so at exit when it created the group, see test_launchers).
torch.distributed.destroy_process_group()

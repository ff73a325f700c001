"""sktransfer.training._batches: target batches paired with their rows."""

import numpy as np
import torch

from sktransfer.training._batches import target_batches

from list_loader import ListLoader


def test_target_batches_with_rows_pairs_each_batch_with_its_rows():
    data = torch.arange(10.0)[:, None]
    stream = target_batches(ListLoader(data), np.arange(2, 9), 3,
                            torch.Generator().manual_seed(0), with_rows=True)
    for _ in range(5):
        rows, batch = next(stream)
        assert len(rows) == 3 and batch[:, 0].tolist() == [float(r) for r in rows]
        assert set(rows) <= set(range(2, 9))

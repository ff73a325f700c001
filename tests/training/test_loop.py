"""sktransfer.training.Trainer (training/_loop.py): the loop runs a TrainingStep
and nothing else."""

import pytest
import torch


def test_trainer_refuses_an_object_that_is_not_a_step():
    from sktransfer.training import Trainer

    module = torch.nn.Linear(2, 2)
    trainer = Trainer(module, torch.optim.SGD(module.parameters(), lr=0.1),
                      device=torch.device("cpu"))

    class DuckStep:  # has the methods, but not the contract
        def batches(self, epoch):
            return []

        def loss(self, batch):
            return torch.zeros(())

    with pytest.raises(TypeError, match="TrainingStep"):
        trainer.fit(DuckStep(), epochs=1, n_batches=1)

"""A training step that fails mid-fit, shared by the tests of the callbacks
(training/test_callbacks.py) and of the loggers (training/test_loggers.py)."""

from sktransfer.training import SupervisedStep


def fail_in_second_epoch(monkeypatch, batches_per_epoch):
    """Make the supervised step raise a RuntimeError at the first batch of epoch 2."""
    real_loss = SupervisedStep.loss
    calls = []

    def loss(step, batch):
        calls.append(None)
        if len(calls) > batches_per_epoch:
            raise RuntimeError("a genuine error in the model")
        return real_loss(step, batch)

    monkeypatch.setattr(SupervisedStep, "loss", loss)

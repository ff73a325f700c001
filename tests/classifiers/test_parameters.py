"""The classifiers' parameters (classifiers/_parameters.py) as a fit resolves
them: backbone_lr_ratio="auto" and the deprecated spelling freeze="none"."""

import numpy as np
import pytest

from sktransfer import FineTuneClassifier
from sktransfer.training import Callback

from tiny_fits import cnn, images_task


@pytest.mark.parametrize("weights, ratio, expected", [
    (None, "auto", 1.0), ("DEFAULT", "auto", 0.1), (None, 0.5, 0.5), ("DEFAULT", 1.0, 1.0),
])
def test_auto_backbone_lr_ratio_slows_only_pretrained_backbones(weights, ratio, expected):
    from sktransfer.backbones import SimpleCNN

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, size=(8, 8, 8, 3), dtype=np.uint8)
    y = np.arange(8) % 2
    clf = FineTuneClassifier(model=SimpleCNN(), weights=weights, backbone_lr_ratio=ratio,
                             epochs=1, scheduler=None, lr=1e-3, random_state=0, device="cpu")
    seen = {}

    class Spy(Callback):
        def on_fit_begin(self, state, **kwargs):
            seen.update({g["name"]: g["lr"] for g in state.optimizer.param_groups})

    clf.set_params(callbacks=[Spy()]).fit(X, y)
    assert seen["head"] == pytest.approx(1e-3)
    assert seen["backbone"] == pytest.approx(1e-3 * expected)


def test_freeze_none_string_is_deprecated_and_means_none():
    X, y = images_task()
    with pytest.warns(FutureWarning, match="freeze=None"):
        old = cnn(epochs=1, freeze="none").fit(X, y)
    new = cnn(epochs=1, freeze=None).fit(X, y)
    np.testing.assert_array_equal(old.predict_proba(X), new.predict_proba(X))

"""The estimators and Pipelines the persistence tests save, fitted once per session
(read-only for the tests), and a saved MLP that a test may rewrite."""

import numpy as np
import pytest
import torch

import sktransfer

from safe_files import cnn, domain_adapt, extractor, flat, images, mlp, readme_pipelines


@pytest.fixture(scope="session")
def fitted(tmp_path_factory):
    """name -> (fitted estimator, X it runs on); read-only for the tests."""
    from sktransfer.backbones import SimpleCNN

    X_img, y_img = images()
    X_flat, y_flat = flat()
    torch.manual_seed(3)
    checkpoint = tmp_path_factory.mktemp("weights") / "cnn.pth"
    torch.save(SimpleCNN().state_dict(), checkpoint)
    y_target = np.where(np.arange(len(y_flat)) % 3 == 0, -1, y_flat)
    estimators = {
        "cnn": (cnn().fit(X_img, y_img), X_img),
        "cnn_from_checkpoint": (cnn(weights=str(checkpoint)).fit(X_img, y_img), X_img),
        "mlp": (mlp().fit(X_flat, y_flat), X_flat),
        "domain_adapt": (domain_adapt().fit(X_flat, y_target), X_flat),
        "extractor": (extractor().fit(X_img), X_img),
        "extractor_unseeded": (extractor(random_state=None).fit(X_img), X_img),
        "extractor_checkpoint": (extractor(weights=str(checkpoint)).fit(X_img), X_img),
    }
    checkpoint.unlink()  # a saved estimator must not need it
    return estimators


@pytest.fixture
def saved_mlp(fitted, tmp_path):
    path = tmp_path / "mlp.safetensors"
    sktransfer.save(fitted["mlp"][0], path)
    return path


@pytest.fixture(scope="session")
def fitted_pipelines():
    X, y = images()
    return {name: pipe.fit(X, y) for name, pipe in readme_pipelines().items()}, X

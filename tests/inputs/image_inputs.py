"""What the image input tests share: the tiny extractor, its features, PNG files."""

from pathlib import Path

from PIL import Image

from sktransfer import PretrainedFeatureExtractor


TOL = dict(rtol=1e-5, atol=1e-6)


def tiny(**params):
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu")
    defaults.update(params)
    return PretrainedFeatureExtractor(**defaults)


def features(X, **params):
    return tiny(**params).fit_transform(X)


def write_pngs(directory, images, mode=None):
    paths = []
    for i, image in enumerate(images):
        path = Path(directory) / f"image_{i}.png"
        Image.fromarray(image, mode=mode).save(path)
        paths.append(path)
    return paths

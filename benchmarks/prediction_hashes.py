"""Digests of predictions for fixed seeds: run before and after a refactoring of
the training core; identical digests mean bit-identical behaviour.

    .venv/bin/python benchmarks/prediction_hashes.py

Prints one line per configuration: a name and the blake2b digest of its
``predict_proba`` (and of the fitted history's losses). Runs in about a minute
on two CPU cores with torch threads 1.
"""

import hashlib
import io
import warnings

import numpy as np
import torch
from torch import nn

import sktransfer
from sktransfer import DomainAdaptClassifier, FineTuneClassifier, PretrainedFeatureExtractor


def digest(*arrays):
    h = hashlib.blake2b(digest_size=8)
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def lenet():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 5), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 4 * 4, 32), nn.ReLU())


def main():
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
    labels = np.repeat(["a", "b", "c"], 16)
    flat = rng.normal(size=(60, 6)).astype(np.float32)
    flat_y = (flat[:, 0] + flat[:, 1] > 0).astype(int)
    common = dict(device="cpu", random_state=0, batch_size=8)
    cnn = dict(model="simple_cnn", weights=None, image_size=16, **common)
    runs = {
        "finetune mlp": (FineTuneClassifier(model=None, epochs=4, **common), flat, flat_y),
        "finetune cnn": (FineTuneClassifier(epochs=3, **cnn), images, labels),
        "finetune cnn early_stopping class_weight": (
            FineTuneClassifier(epochs=4, early_stopping=True, patience=2,
                               class_weight="balanced", validation_fraction=0.25, **cnn),
            images, labels),
        "finetune cnn unfreeze_after freeze=1 sgd cosine": (
            FineTuneClassifier(epochs=3, unfreeze_after=1, freeze=1, optimizer="sgd",
                               scheduler="cosine", grad_clip=1.0, label_smoothing=0.1,
                               **cnn), images, labels),
        "finetune cnn no augment no scheduler": (
            FineTuneClassifier(epochs=2, augment=None, scheduler=None, **cnn),
            images, labels),
    }
    lines = []
    for name, (clf, X, y) in runs.items():
        clf.fit(X, y)
        losses = [r["train_loss"] for r in clf.history_]
        lines.append((name, digest(clf.predict_proba(X), np.array(losses))))
    clf = FineTuneClassifier(epochs=1, **cnn)
    for _ in range(2):
        clf.partial_fit(images, labels, classes=["a", "b", "c"])
    lines.append(("finetune cnn partial_fit x2", digest(clf.predict_proba(images))))
    clf = FineTuneClassifier(epochs=1, warm_start=True, **cnn).fit(images, labels)
    clf.fit(images, labels)
    lines.append(("finetune cnn warm_start x2", digest(clf.predict_proba(images))))

    shift = images.astype(np.float32) / 255
    X_da = np.concatenate([images, (255 - images)])
    y_da = np.concatenate([labels, np.full(len(labels), "-1")])
    for method in ["source_only", "dann", "cdan", "coral", "mmd", "mcc", "self_training",
                   "adamatch", "vada", "dirt-t"]:
        clf = DomainAdaptClassifier(model=lenet(), weights=None, method=method, epochs=3,
                                    image_size=16, **common)
        clf.fit(X_da, y_da)
        losses = [r["train_loss"] for r in clf.history_]
        lines.append((f"domain_adapt lenet {method}",
                      digest(clf.predict_proba(X_da), np.array(losses))))
    clf = DomainAdaptClassifier(model=lenet(), weights=None, method="source_only", adabn=True,
                                epochs=2, image_size=16, **common).fit(X_da, y_da)
    lines.append(("domain_adapt lenet source_only adabn", digest(clf.predict_proba(X_da))))
    y_num = np.concatenate([flat_y, -np.ones(60, dtype=int)])
    X_num = np.concatenate([flat, flat + 1.0])
    clf = DomainAdaptClassifier(model=None, method="dann", epochs=4, early_stopping=True,
                                **common).fit(X_num, y_num)
    lines.append(("domain_adapt mlp dann early_stopping", digest(clf.predict_proba(X_num))))
    domains = np.concatenate([np.ones(60, dtype=int), -np.ones(60, dtype=int)])
    y_part = y_num.copy()
    y_part[60:70] = flat_y[:10]
    clf = DomainAdaptClassifier(model=None, method="mcc", epochs=3, **common)
    clf.fit(X_num, y_part, sample_domain=domains)
    lines.append(("domain_adapt mlp mcc sample_domain", digest(clf.predict_proba(X_num))))
    clf = DomainAdaptClassifier(model=None, epochs=3, **common).fit(X_num, y_num)
    lines.append(("domain_adapt mlp self_training", digest(clf.predict_proba(X_num))))

    extractor = PretrainedFeatureExtractor(model="simple_cnn", weights=None, random_state=0,
                                           device="cpu").fit(images)
    lines.append(("extractor simple_cnn", digest(extractor.transform(shift))))
    file = io.BytesIO()
    sktransfer.save(runs["finetune cnn"][0], file)
    loaded = sktransfer.load(io.BytesIO(file.getvalue()))
    lines.append(("safe round trip finetune cnn", digest(loaded.predict_proba(images))))
    for name, value in lines:
        print(f"{name:50s} {value}")


if __name__ == "__main__":
    main()

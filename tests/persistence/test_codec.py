"""Values <-> JSON (``persistence/_codec.py``): every kind of value round trips;
declared dtypes, sizes and depths are bounded before anything is allocated."""

import json
import pathlib

import numpy as np
import pytest
import torch

from sktransfer import FineTuneClassifier

from safe_files import flat, load_bounded, mlp, rewrite, safe_round_trip


@pytest.mark.parametrize("labels", [
    np.array(["no", "yes"]),
    np.array(["no", "yes"], dtype=object),
    np.array([3, 11]),
    np.array([True, False]),
    np.array([1.0, 2.0]),
], ids=["str", "object", "int", "bool", "float"])
def test_label_types_are_preserved(labels):
    X, y = flat()
    y = labels[(y > 0).astype(int)]
    clf = mlp().fit(X, y)
    loaded = safe_round_trip(clf)
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert [type(c) for c in loaded.classes_] == [type(c) for c in clf.classes_]
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_parameters_of_every_kind_round_trip():
    from torchvision.models import ResNet18_Weights

    random_state = np.random.RandomState(3)
    clf = FineTuneClassifier(
        model="resnet18", weights=ResNet18_Weights.IMAGENET1K_V1, class_weight={0: 2.0, 1: 1},
        hidden_layer_sizes=[8, 4], image_size=(24, 20), input_shape=(8, 8, 1),
        device=torch.device("cpu"), lr=np.float64(3e-3), grad_clip=float("inf"),
        random_state=random_state, freeze=2,
    )
    params = safe_round_trip(clf).get_params()
    expected = clf.get_params()
    assert params["weights"] is ResNet18_Weights.IMAGENET1K_V1
    loaded_state = params.pop("random_state").get_state()
    for a, b in zip(loaded_state, expected.pop("random_state").get_state()):
        np.testing.assert_array_equal(a, b)
    assert params == expected
    assert type(params["lr"]) is np.float64
    path_clf = FineTuneClassifier(model="simple_cnn", weights=pathlib.Path("nets") / "a.pth")
    assert safe_round_trip(path_clf).weights == pathlib.Path("nets") / "a.pth"


def _bomb_classes(d):
    d["fitted"]["classes_"] = {"$ndarray": {"dtype": "<U500000000", "shape": [3],
                                            "data": ["a", "b", "c"]}}


@pytest.mark.parametrize("change, match", [
    (_bomb_classes, r"dtype '<U500000000' is not one"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<U4096", "shape": [20_000], "data": ["a"] * 20_000}}),
     "more than the file's size justifies"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<f16", "shape": [1], "data": [1.0]}}), r"dtype '<f16'"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [2**32, 2**32], "data": []}}), "do not fill its shape"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [1], "data": [10**30]}}), "not an int of dtype"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "|u1", "shape": [1], "data": [300]}}), "not an int of dtype"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [1], "data": ["7"]}}), "not an int of dtype"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<f8", "shape": [1], "data": [10**400]}}), "too large for a float"),
    (lambda d: d["params"].update(random_state={"$random_state": {"$tuple": [
        "MT19937", {"$ndarray": {"dtype": "<u4", "shape": [624], "data": [1] * 624}},
        10**30, 0, 0.0]}}), "not the state of a RandomState"),
    (lambda d: d["params"].update(random_state={"$random_state": 5}),
     "not a 5-tuple"),
    (lambda d: d["params"].update(lr=json.loads("[" * 200 + "]" * 200)),
     "nest more than"),
], ids=["str-bomb", "budget", "float128", "shape-overflow", "int-overflow", "u1-range",
        "str-as-int", "float-overflow", "random-state-position", "random-state-type",
        "deep-value"])
def test_declared_sizes_and_depths_are_bounded(saved_mlp, change, match):
    rewrite(saved_mlp, change)
    info = load_bounded(saved_mlp)
    assert info.match(match)


def test_the_former_9kb_bomb_is_refused_at_once(saved_mlp):
    """dtype "<U500000000", shape [3]: gigabytes from a 9 kB file unless the
    dtype allowlist refuses it; the checksum is recomputed (so the allowlist, not
    the checksum, refuses it)."""
    rewrite(saved_mlp, _bomb_classes)
    assert saved_mlp.stat().st_size < 10_000
    load_bounded(saved_mlp, megabytes=16)
    rewrite(saved_mlp, lambda d: None, rehash=False)  # and without a valid checksum
    load_bounded(saved_mlp, megabytes=16)

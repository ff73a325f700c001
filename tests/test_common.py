"""scikit-learn's own estimator checks, over every sktransfer estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import PretrainedFeatureExtractor


def _estimators():
    # A tiny registered backbone with random (seeded) weights keeps the checks
    # fast; input_shape=(1, -1) reads each flat row as a 1 x n_features grey image,
    # so every array shape the checks generate is a valid image batch.
    return [
        PretrainedFeatureExtractor(
            model="simple_cnn", weights=None, input_shape=(1, -1), device="cpu",
            random_state=0,
        ),
    ]


@parametrize_with_checks(_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC

from sktransfer.datasets import mix_domains
from sktransfer._utils.representation import estimator_features
from sktransfer.metrics import (
    DeepEmbeddedValidation,
    ImportanceWeightedScorer,
    PredictionEntropyScorer,
    SoftNeighborhoodDensityScorer,
    density_ratio,
    dev_risk,
    soft_neighborhood_density,
)
# For the tests of the scorers on adapted models at the end of this file.
from domain_shift import da, shift_task

SCORERS = [PredictionEntropyScorer(), ImportanceWeightedScorer(), DeepEmbeddedValidation(),
           SoftNeighborhoodDensityScorer()]
WEIGHTED = [ImportanceWeightedScorer(), DeepEmbeddedValidation()]


def _scorer_id(scorer):
    return type(scorer).__name__


class LabeledOnly(ClassifierMixin, BaseEstimator):
    """Test stand-in for a domain-adaptation classifier: takes mixed data with
    y == -1 on target rows, learns from the labeled rows only, and flattens
    image-shaped X itself. ``flip_labels`` makes a deliberately wrong model."""

    def __init__(self, estimator=None, flip_labels=False):
        self.estimator = estimator
        self.flip_labels = flip_labels

    def fit(self, X, y):
        X, y = np.asarray(X), np.asarray(y)
        labeled = y != -1
        labels = y[labeled]
        if self.flip_labels:
            labels = labels.max() - labels
        base = LogisticRegression() if self.estimator is None else self.estimator
        self.estimator_ = clone(base).fit(X[labeled].reshape(labeled.sum(), -1), labels)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X):
        return self.estimator_.predict(np.asarray(X).reshape(len(X), -1))

    def predict_proba(self, X):
        return self.estimator_.predict_proba(np.asarray(X).reshape(len(X), -1))


def _domain(rng, n, centre):
    """2-D covariate shift with one labelling rule, y = [x1 > |x0|], for both
    domains: a line fits it on either side, not on both."""
    X = np.c_[rng.normal(centre, 1.0, n), rng.normal(abs(centre), 0.7, n)]
    return X, (X[:, 1] > np.abs(X[:, 0])).astype(int)


@pytest.fixture(scope="module")
def shift():
    rng = np.random.default_rng(0)
    X_source, y_source = _domain(rng, 400, -0.8)
    X_target, y_target = _domain(rng, 400, 0.8)
    X, y, _ = mix_domains(X_source, y_source, X_target)
    return X_source, y_source, X_target, y_target, X, y


@pytest.fixture(scope="module")
def models(shift):
    X_source, y_source, X_target, y_target, _, _ = shift
    return {
        "source": LogisticRegression().fit(X_source, y_source),
        "target": LogisticRegression().fit(X_target, y_target),   # the upper bound
        "flipped": LogisticRegression().fit(X_target, 1 - y_target),
        "flat": LogisticRegression(C=1e-4).fit(X_target, y_target),
    }


def test_scenario_fools_source_accuracy(shift, models):
    X_source, y_source, X_target, y_target, _, _ = shift
    source, target = models["source"], models["target"]
    assert source.score(X_source, y_source) > target.score(X_source, y_source) + 0.2
    assert target.score(X_target, y_target) > source.score(X_target, y_target) + 0.2


@pytest.mark.parametrize("scorer", WEIGHTED, ids=_scorer_id)
def test_weighted_scorers_prefer_the_model_good_on_target(scorer, shift, models):
    # Source accuracy prefers the source model; the weighting must undo that.
    *_, X, y = shift
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*barely overlap")
        scores = {name: scorer(model, X, y) for name, model in models.items()}
    assert scores["target"] > scores["source"]
    assert scores["target"] > scores["flipped"]
    assert scores["target"] > scores["flat"]


def test_importance_weighted_accuracy_tracks_target_accuracy(shift, models):
    X_source, y_source, X_target, y_target, X, y = shift
    for model in (models["source"], models["target"]):
        estimate = ImportanceWeightedScorer()(model, X, y)
        target_error = abs(estimate - model.score(X_target, y_target))
        source_error = abs(estimate - model.score(X_source, y_source))
        assert 0 <= estimate <= 1
        assert target_error < source_error


def test_entropy_prefers_confident_target_predictions(shift, models):
    *_, X, y = shift
    scorer = PredictionEntropyScorer()
    good, flat = scorer(models["target"], X, y), scorer(models["flat"], X, y)
    assert -np.log(2) <= flat < good <= 0
    assert flat == pytest.approx(-np.log(2), abs=0.01)


def test_entropy_reads_only_the_target_rows(shift, models):
    *_, X, y = shift
    target = y == -1
    proba = models["target"].predict_proba(X[target])
    expected = np.mean(np.sum(proba * np.log(proba), axis=1))
    assert PredictionEntropyScorer()(models["target"], X, y) == pytest.approx(expected)
    y_no_source = np.full_like(y, -1)   # no labeled row: still defined
    score = PredictionEntropyScorer()(models["target"], X[target], y_no_source[target])
    assert score == pytest.approx(expected)


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_scorers_are_floats_greater_is_better(scorer, shift, models):
    *_, X, y = shift
    score = scorer(models["target"], X, y)
    assert isinstance(score, float) and np.isfinite(score)


@pytest.mark.parametrize("scorer", WEIGHTED, ids=_scorer_id)
def test_grid_search_rejects_the_wrong_model(scorer, shift):
    *_, X, y = shift
    search = GridSearchCV(LabeledOnly(), {"flip_labels": [True, False]},
                          scoring=scorer, cv=3, error_score="raise").fit(X, y)
    assert search.best_params_ == {"flip_labels": False}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_grid_search_with_entropy_prefers_confident_model(shift):
    *_, X, y = shift
    grid = {"estimator": [LogisticRegression(C=1e-4), LogisticRegression(C=1.0)]}
    search = GridSearchCV(LabeledOnly(), grid, scoring=PredictionEntropyScorer(),
                          cv=3, error_score="raise").fit(X, y)
    assert search.best_params_["estimator"].C == 1.0


def test_grid_search_with_several_scorers(shift):
    *_, X, y = shift
    scoring = {"entropy": PredictionEntropyScorer(), "iw": ImportanceWeightedScorer(),
               "dev": DeepEmbeddedValidation()}
    search = GridSearchCV(LabeledOnly(), {"flip_labels": [False]}, scoring=scoring,
                          refit="dev", cv=2, error_score="raise").fit(X, y)
    for name in scoring:
        assert np.isfinite(search.cv_results_[f"mean_test_{name}"]).all()


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_scorers_accept_pipelines(scorer, shift):
    *_, X, y = shift
    labeled = y != -1
    pipe = make_pipeline(StandardScaler(), PCA(n_components=2), LogisticRegression())
    pipe.fit(X[labeled], y[labeled])
    assert np.isfinite(scorer(pipe, X, y))


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_scorers_accept_image_shaped_x(scorer, rng):
    # an estimator with no transform on (n, 4, 4, 3) images: the flattened input
    X_source = rng.integers(0, 256, size=(60, 4, 4, 3)).astype(np.uint8)
    X_target = rng.integers(8, 256, size=(60, 4, 4, 3)).astype(np.uint8)
    y_source = (X_source.mean(axis=(1, 2, 3)) > 127).astype(int)
    X, y, _ = mix_domains(X_source, y_source, X_target)
    model = LabeledOnly(estimator=LogisticRegression(max_iter=500)).fit(X, y)
    _check_read(scorer, model, X, y)
    flatten = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    pipe = make_pipeline(flatten, StandardScaler(), LogisticRegression()).fit(
        X[y != -1], y[y != -1])
    _check_read(scorer, pipe, X, y)


def _check_read(scorer, model, X, y):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        score = scorer(model, X, y)
    # Random pixels barely overlap: DEV's control variate can overshoot below a
    # zero log loss, which it scores NaN, saying so (the images were read all
    # the same: a shape it could not read raises).
    assert np.isfinite(score) or (isinstance(scorer, DeepEmbeddedValidation)
                                  and np.isnan(score)
                                  and any("below 0" in str(w.message) for w in record))


def testestimator_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    # all steps but the last, whose transform it lacks
    pipe = make_pipeline(StandardScaler(), PCA(n_components=2), LogisticRegression())
    pipe.fit(X, y)
    np.testing.assert_allclose(estimator_features(pipe, X), pipe[:-1].transform(X))
    # all steps but the last, then the last step's transform
    pipe = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(X, y)
    np.testing.assert_allclose(estimator_features(pipe, X),
                               pipe[-1].transform(pipe[0].transform(X)))
    assert estimator_features(pipe, X).shape == (40, 2)
    # an estimator's own transform; the input without one
    lda = LinearDiscriminantAnalysis().fit(X, y)
    np.testing.assert_allclose(estimator_features(lda, X), lda.transform(X))
    assert estimator_features(LogisticRegression().fit(X, y), X) is X
    assert estimator_features(make_pipeline(LogisticRegression()).fit(X, y), X) is X


class _BrokenTransform(LabeledOnly):
    def transform(self, X):
        raise RuntimeError("transform was called")


@pytest.mark.parametrize("scorer_class", [ImportanceWeightedScorer, DeepEmbeddedValidation])
def test_features_option(scorer_class, shift):
    *_, X, y = shift
    model = _BrokenTransform().fit(X, y)
    with pytest.raises(RuntimeError, match="transform was called"):
        scorer_class()(model, X, y)
    assert np.isfinite(scorer_class(features="input")(model, X, y))
    with pytest.raises(ValueError, match="features='pixels' must be one of"):
        scorer_class(features="pixels")(model, X, y)


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_no_target_rows_is_named(scorer, shift, models):
    X_source, y_source, *_ = shift
    with pytest.raises(ValueError, match=r"no target rows \(y == -1\)"):
        scorer(models["target"], X_source, y_source)


@pytest.mark.parametrize("scorer", WEIGHTED, ids=_scorer_id)
def test_no_labeled_rows_is_named(scorer, shift, models):
    _, _, X_target, *_ = shift
    with pytest.raises(ValueError, match="no labeled source rows"):
        scorer(models["target"], X_target, np.full(len(X_target), -1))


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_y_is_required(scorer, shift, models):
    *_, X, _ = shift
    with pytest.raises(ValueError, match="needs y"):
        scorer(models["target"], X, None)
    with pytest.raises(ValueError, match="one label per row"):
        scorer(models["target"], X, np.zeros(3))


@pytest.mark.parametrize("scorer", [PredictionEntropyScorer(), DeepEmbeddedValidation(),
                                    SoftNeighborhoodDensityScorer()], ids=_scorer_id)
def test_probabilities_are_required(scorer, shift):
    *_, X, y = shift
    svc = LinearSVC().fit(X[y != -1], y[y != -1])
    with pytest.raises(AttributeError, match="has no predict_proba"):
        scorer(svc, X, y)


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_a_regressor_is_refused_as_a_regressor(scorer):
    """A DomainAdaptRegressor marks its target rows NaN, not -1: the scorers,
    which read class predictions, say that they score classifiers."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktransfer import DomainAdaptRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = np.r_[X[:15, 0], np.full(15, np.nan)]
    regressor = DomainAdaptRegressor(model=None, epochs=1, device="cpu").fit(X, y)
    for estimator in (regressor, make_pipeline(StandardScaler(), regressor)):
        with pytest.raises(ValueError, match=f"{type(estimator).__name__} is a regressor"):
            scorer(estimator, X, y)


class Overflowing(LabeledOnly):
    """A model whose outputs overflow on some rows, as after a fit that
    diverged: NaN probabilities there."""

    def predict_proba(self, X):
        proba = super().predict_proba(X)
        proba[::3] = np.nan
        return proba


@pytest.mark.parametrize("scorer", [PredictionEntropyScorer(), DeepEmbeddedValidation(),
                                    SoftNeighborhoodDensityScorer()], ids=_scorer_id)
def test_probabilities_that_are_not_finite_score_nan(scorer, shift):
    # NaN read as a certain prediction: a diverged model got the best entropy
    # (0.0), and a search picked it
    *_, X, y = shift
    model = Overflowing().fit(X, y)
    with pytest.warns(UserWarning, match=r"the probabilities of \d+ of the \d+ rows it "
                                         r"reads are not finite .* the score is NaN"):
        assert np.isnan(scorer(model, X, y))


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_a_missing_label_is_refused_naming_its_row(scorer, shift, models):
    # a NaN source label was charged as a wrong prediction, silently
    *_, X, y = shift
    y = y.astype(float)
    y[np.flatnonzero(y != -1)[2]] = np.nan
    with pytest.raises(ValueError, match=rf"{type(scorer).__name__}: y has 1 missing "
                                         rf"label\(s\) .* the first at row "
                                         rf"{np.flatnonzero(np.isnan(y))[0]}"):
        scorer(models["target"], X, y)


def test_importance_weighting_needs_only_predict(shift):
    *_, X, y = shift
    svc = LinearSVC().fit(X[y != -1], y[y != -1])
    assert 0 <= ImportanceWeightedScorer()(svc, X, y) <= 1


def test_non_numeric_input_without_transform_is_refused():
    X = np.array([f"image_{i}.png" for i in range(8)])
    y = np.array([0, 1, 0, 1, -1, -1, -1, -1])

    class PathModel(ClassifierMixin, BaseEstimator):
        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    with pytest.raises(TypeError, match="give the estimator a transform"):
        ImportanceWeightedScorer()(PathModel(), X, y)


@pytest.mark.parametrize("scorer", WEIGHTED, ids=_scorer_id)
def test_separable_domains_warn(scorer, rng):
    X_source = rng.normal(0, 1, size=(60, 2))
    X_target = rng.normal(30, 1, size=(60, 2))
    X, y, _ = mix_domains(X_source, (X_source[:, 0] > 0).astype(int), X_target)
    model = LabeledOnly().fit(X, y)
    with pytest.warns(UserWarning, match="barely overlap.*score features that the model "
                                         "aligns"):
        scorer(model, X, y)
    # Scored on the model's own features, the advice is another scorer.
    with pytest.warns(UserWarning, match="barely overlap.*the model's own features do "
                                         "not align the domains"):
        scorer(make_pipeline(StandardScaler(), LabeledOnly()).fit(X, y), X, y)


def test_density_ratio_recovers_a_known_ratio():
    # N(0, 1) source, N(1, 1) target: log p_t / p_s = x - 1/2
    rng = np.random.default_rng(0)
    source = rng.normal(0, 1, size=(2000, 1))
    target = rng.normal(1, 1, size=(2000, 1))
    weights = density_ratio(source, target)
    central = np.abs(source[:, 0]) < 1.5
    error = np.log(weights[central]) - (source[central, 0] - 0.5)
    assert np.abs(error).mean() < 0.1
    assert np.mean(weights) == pytest.approx(1, abs=0.1)


def _effective(weights):
    return np.sum(weights) ** 2 / np.sum(weights ** 2)


def test_min_effective_fraction_shrinks_only_weights_that_rest_on_few_rows():
    rng = np.random.default_rng(0)
    source = rng.normal(0, 1, size=(200, 5))
    apart, near = rng.normal(2.5, 1, size=(200, 5)), rng.normal(0.3, 1, size=(200, 5))
    sharp = density_ratio(source, apart)
    assert _effective(sharp) < 0.05 * 200          # a few rows take all the weight
    for fraction in (0.05, 0.3):
        shrunk = density_ratio(source, apart, min_effective_fraction=fraction)
        assert _effective(shrunk) >= fraction * 200
        # the same ordering of the rows, flatter: a prior on the ratios, no new ones
        assert np.corrcoef(np.log(sharp), np.log(shrunk))[0, 1] > 0.9
    # weights that keep enough rows effective are those of C=1, bit for bit
    np.testing.assert_array_equal(density_ratio(source, near, min_effective_fraction=0.05),
                                  density_ratio(source, near))
    # none reaches the fraction: the most regularised, C=0.001
    tiny = density_ratio(source, apart * 50, min_effective_fraction=1.0)
    from sklearn.linear_model import LogisticRegression
    np.testing.assert_array_equal(tiny, density_ratio(
        source, apart * 50, domain_classifier=make_pipeline(
            StandardScaler(), LogisticRegression(C=0.001, max_iter=1000))))


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1, True, "0.1"])
def test_min_effective_fraction_bad_values(fraction, shift):
    source, target = np.zeros((10, 2)), np.ones((10, 2))
    with pytest.raises(ValueError, match=r"min_effective_fraction=.* must be None or a "
                                         r"number in \(0, 1\]"):
        density_ratio(source, target, min_effective_fraction=fraction)
    # a scorer checks it before predicting, a given domain classifier or not

    class NoPrediction(LabeledOnly):
        def predict(self, X):
            raise AssertionError("predicted before the parameters were checked")

        predict_proba = predict

    *_, X, y = shift
    model = NoPrediction().fit(X, y)
    for scorer in (ImportanceWeightedScorer, DeepEmbeddedValidation):
        for given in (None, LogisticRegression()):
            with pytest.raises(ValueError, match=rf"{scorer.__name__}: "
                                                 r"min_effective_fraction=.* must be None"):
                scorer(min_effective_fraction=fraction, domain_classifier=given)(model, X, y)
        with pytest.raises(ValueError, match=rf"{scorer.__name__}: cv=None must be an int"):
            scorer(cv=None)(model, X, y)


def test_min_effective_fraction_needs_the_default_domain_classifier():
    with pytest.raises(ValueError, match="sets the C of the default domain classifier"):
        density_ratio(np.zeros((10, 2)), np.ones((10, 2)), min_effective_fraction=0.1,
                      domain_classifier=LogisticRegression())


def test_density_ratio_passes_nan_to_a_classifier_that_takes_it():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(40, 2)), rng.normal(1, size=(40, 2))
    source[3, 0] = np.nan
    weights = density_ratio(source, target, domain_classifier=HistGradientBoostingClassifier(
        max_iter=5))
    assert weights.shape == (40,) and np.isfinite(weights).all()


def test_importance_weighting_shrinks_by_default_where_the_domains_are_apart(shift):
    # the default (0.05) changes nothing where the weights keep enough rows
    # effective, and takes a given domain classifier as it is
    *_, X, y = shift
    model = LabeledOnly().fit(X, y)
    assert ImportanceWeightedScorer()(model, X, y) == \
        ImportanceWeightedScorer(min_effective_fraction=None)(model, X, y)
    given = make_pipeline(StandardScaler(), LogisticRegression(C=0.5))
    assert ImportanceWeightedScorer(domain_classifier=given)(model, X, y) == \
        ImportanceWeightedScorer(domain_classifier=given,
                                 min_effective_fraction=None)(model, X, y)
    # apart (few source rows effective at C=1): the default shrinks the ratios
    rng = np.random.default_rng(1)
    source = rng.normal(0, 1, size=(200, 5))
    X_apart = np.r_[source, rng.normal(1.5, 1, size=(200, 5))]
    y_apart = np.r_[(source[:, 0] > 0).astype(int), np.full(200, -1)]
    model = LabeledOnly(LogisticRegression(C=0.01)).fit(X_apart, y_apart)
    with pytest.warns(UserWarning, match="barely overlap"):
        sharp = ImportanceWeightedScorer(min_effective_fraction=None,
                                         features="input")(model, X_apart, y_apart)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        shrunk = ImportanceWeightedScorer(features="input")(model, X_apart, y_apart)
    assert shrunk != sharp


def test_density_ratio_is_deterministic_and_checks_its_inputs():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(30, 2)), rng.normal(1, size=(20, 2))
    first, second = density_ratio(source, target), density_ratio(source, target)
    np.testing.assert_array_equal(first, second)
    assert density_ratio(source, target[:1]).shape == (30,)   # one target row: no folds
    with pytest.raises(ValueError, match="both domains"):
        density_ratio(source, target[:0])
    with pytest.raises(TypeError, match="predict_proba"):
        density_ratio(source, target, domain_classifier=LinearSVC())
    # lists, as array-like says; a splitter or None for cv named as cv
    np.testing.assert_array_equal(density_ratio(source.tolist(), target.tolist()), first)
    for cv in (None, 2.5, True, GridSearchCV):
        with pytest.raises(ValueError, match=r"cv=.* must be an int"):
            density_ratio(source, target, cv=cv)
        with pytest.raises(ValueError, match=r"cv=.* must be an int"):
            ImportanceWeightedScorer(cv=cv, features="input")(
                LogisticRegression().fit(source, source[:, 0] > 0),
                np.r_[source, target], np.r_[source[:, 0] > 0, np.full(20, -1)])


def test_dev_scores_an_impossible_negative_risk_as_nan(shift, models, monkeypatch):
    # Weights far from averaging 1 (a domain classifier that barely overlaps)
    # can push the control variate past zero: a "log loss" below 0 would rank
    # above every sane model in a search.
    import sktransfer.metrics as metrics

    _, _, _, _, X, y = shift
    scorer = DeepEmbeddedValidation()
    sane = scorer(models["source"], X, y)
    assert np.isfinite(sane) and sane <= 0
    n_source = int((np.asarray(y) != -1).sum())
    weights = 1e3 * np.random.default_rng(0).exponential(size=n_source)  # mean far above 1
    monkeypatch.setattr(metrics, "_source_weights", lambda *args: weights)
    losses = metrics._log_losses(scorer, models["source"], X[np.asarray(y) != -1],
                                 np.asarray(y)[np.asarray(y) != -1])
    assert dev_risk(losses, weights) < 0  # what the case is about
    with pytest.warns(UserWarning, match="below 0, which no model reaches") as record:
        assert np.isnan(scorer(models["source"], X, y))
    assert record[0].filename == __file__


def test_dev_risk_control_variate():
    # formula on a small case
    losses, weights = np.array([1.0, 2.0, 4.0]), np.array([0.5, 1.0, 1.5])
    weighted = losses * weights
    eta = -np.cov(weighted, weights)[0, 1] / np.var(weights, ddof=1)
    expected = weighted.mean() + eta * weights.mean() - eta
    assert dev_risk(losses, weights) == pytest.approx(expected)
    assert dev_risk([3.0], [2.0]) == 6.0
    # lower variance than the plain weighted mean, same target
    rng = np.random.default_rng(0)
    plain, dev = [], []
    for _ in range(300):
        weights = rng.exponential(1.0, size=50)     # true mean 1
        losses = 1.0 + 0.1 * rng.normal(size=50)    # target risk 1
        plain.append(np.mean(weights * losses))
        dev.append(dev_risk(losses, weights))
    assert np.var(dev) < 0.2 * np.var(plain)
    assert np.mean(dev) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="one length"):
        dev_risk([1.0], [1.0, 2.0])


def _naive_density(proba, temperature):
    unit = proba / np.linalg.norm(proba, axis=1, keepdims=True)
    n = len(unit)
    total = 0.0
    for i in range(n):
        others = np.delete(unit, i, axis=0)
        logits = others @ unit[i] / temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        total -= np.sum(p * np.log(p))
    return total / n


def test_soft_neighborhood_density_matches_its_definition_in_chunks():
    proba = np.random.default_rng(1).dirichlet(np.ones(4) * 0.5, size=37)
    expected = _naive_density(proba, 0.05)
    assert soft_neighborhood_density(proba) == pytest.approx(expected, rel=1e-10)
    for chunk_size in (1, 5, 36, 37):
        assert soft_neighborhood_density(proba, chunk_size=chunk_size) == pytest.approx(
            expected, rel=1e-10)
    assert soft_neighborhood_density(proba, temperature=1.0) == pytest.approx(
        _naive_density(proba, 1.0), rel=1e-10)
    # one shared prediction: every other row is an equal neighbour
    assert soft_neighborhood_density(np.tile([0.2, 0.8], (11, 1))) == pytest.approx(np.log(10))


def test_soft_neighborhood_density_prefers_clusters_and_checks_inputs():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.eye(5), 30, axis=0) * 0.95 + 0.01
    clusters += rng.uniform(0, 0.01, clusters.shape)
    scattered = rng.dirichlet(np.ones(5), size=150)
    assert soft_neighborhood_density(clusters) > soft_neighborhood_density(scattered)
    with pytest.raises(ValueError, match="at least 2 rows"):
        soft_neighborhood_density(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        soft_neighborhood_density(np.ones(3))
    with pytest.raises(ValueError, match="temperature"):
        soft_neighborhood_density(clusters, temperature=0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            soft_neighborhood_density(clusters, chunk_size=bad)
    with pytest.raises(ValueError, match=r"rows \[1\] are all zeros"):
        soft_neighborhood_density(np.array([[0.5, 0.5], [0.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN"):
        soft_neighborhood_density(np.array([[0.5, 0.5], [np.nan, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="infinity"):
        soft_neighborhood_density(np.array([[0.5, 0.5], [np.inf, 1.0], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="[Ss]parse"):
        soft_neighborhood_density(sp.csr_matrix(clusters))


@pytest.mark.parametrize("temperature", [None, "0.05", 0, -1.0, True])
def test_soft_neighborhood_density_scorer_checks_its_temperature_first(temperature, shift):
    *_, X, y = shift

    class NoPrediction(LabeledOnly):
        def predict_proba(self, X):
            raise AssertionError("predicted before the temperature was checked")

    with pytest.raises(ValueError, match=rf"temperature={temperature!r} must be a number > 0"):
        SoftNeighborhoodDensityScorer(temperature=temperature)(NoPrediction().fit(X, y), X, y)


def test_soft_neighborhood_density_scorer_reads_target_rows_and_subsamples(shift, models):
    *_, X, y = shift
    target = y == -1
    proba = models["target"].predict_proba(X[target])
    scorer = SoftNeighborhoodDensityScorer()
    assert scorer(models["target"], X, y) == pytest.approx(soft_neighborhood_density(proba))
    small = SoftNeighborhoodDensityScorer(max_samples=50, random_state=3)
    first = small(models["target"], X, y)
    assert first == small(models["target"], X, y)  # the same rows every call
    assert first != scorer(models["target"], X, y)
    for bad in (0, 1, 2.5, "all"):
        with pytest.raises(ValueError, match="max_samples"):
            SoftNeighborhoodDensityScorer(max_samples=bad)(models["target"], X, y)
    with pytest.raises(ValueError, match="at least 2 target rows"):
        scorer(models["target"], X[:len(X) - target.sum() + 1],
               np.r_[y[~target], -1])


def test_repr():
    assert repr(PredictionEntropyScorer()) == "PredictionEntropyScorer()"
    assert repr(DeepEmbeddedValidation(cv=3)) == (
        "DeepEmbeddedValidation(domain_classifier=None, features='auto', cv=3, "
        "random_state=0, min_effective_fraction=None)"
    )
    assert repr(ImportanceWeightedScorer()).endswith("min_effective_fraction=0.05)")


@pytest.mark.parametrize("scorer", SCORERS, ids=_scorer_id)
def test_scorers_accept_sparse_x(scorer, shift, models):
    *_, X, y = shift
    assert scorer(models["target"], sp.csr_matrix(X), y) == pytest.approx(
        scorer(models["target"], X, y), rel=1e-3)


# -- scoring DomainAdaptClassifier models -------------------------------------
def test_prediction_entropy_ranks_a_good_trade_off_above_a_bad_one():
    """On the shift above, MMD with trade_off=1 adapts and trade_off=0 does not;
    the entropy of target predictions, which needs no target label, ranks them
    the same way. (The importance-weighted and DEV scorers cannot here: this is
    no covariate shift, the domains do not overlap, the density ratio collapses
    and they warn that their estimate is unreliable; see the next test for a
    shift where they can.)"""
    from sktransfer.metrics import PredictionEntropyScorer

    X, y, X_test, y_test = shift_task(seed=1)
    good = da(method="mmd", epochs=20, trade_off=1.0).fit(X, y)
    bad = da(method="mmd", epochs=20, trade_off=0.0).fit(X, y)
    assert good.score(X_test, y_test) > bad.score(X_test, y_test) + 0.2
    # fresh data of both domains, target rows unlabeled, as in a CV fold
    X_eval, y_eval, _, _ = shift_task(seed=2)
    scorer = PredictionEntropyScorer()
    assert scorer(good, X_eval, y_eval) > scorer(bad, X_eval, y_eval)


def covariate_shift_task(seed, n=400):
    """Covariate shift: one labelling rule, y = [x1 > |x0|], in both domains and
    the inputs moved from x0 ~ -0.6 (source) to x0 ~ 0.6 (target). The domains
    overlap in the input, which is what importance weighting needs."""
    rng = np.random.default_rng(seed)
    X_source, y_source = _domain(rng, n, -0.6)
    X_target, y_target = _domain(rng, n, 0.6)
    X_source, X_target = X_source.astype(np.float32), X_target.astype(np.float32)
    X = np.vstack([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(n, dtype=int)])
    return X, y, X_target, y_target


def test_weighted_scorers_rank_a_good_trade_off_above_a_collapsing_one():
    """MCC with trade_off=100 drives the target predictions to near certainty
    and wrecks the classifier; trade_off=1 does not. Importance-weighted
    accuracy and DEV, weighting source rows by a density ratio estimated in the
    input (where this shift overlaps), rank the two by their target accuracy;
    the prediction entropy, which rewards confidence, ranks them the wrong way
    round (why sktransfer.metrics offers the three)."""
    from sktransfer.metrics import (
        DeepEmbeddedValidation,
        ImportanceWeightedScorer,
        PredictionEntropyScorer,
    )

    X, y, X_test, y_test = covariate_shift_task(seed=0)
    good = da(method="mcc", epochs=20, trade_off=1.0).fit(X, y)
    bad = da(method="mcc", epochs=20, trade_off=100.0).fit(X, y)
    assert good.score(X_test, y_test) > bad.score(X_test, y_test) + 0.2
    X_eval, y_eval, _, _ = covariate_shift_task(seed=1)  # a fresh CV-like fold
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*barely overlap")
        for scorer in (ImportanceWeightedScorer(features="input"),
                       DeepEmbeddedValidation(features="input")):
            assert scorer(good, X_eval, y_eval) > scorer(bad, X_eval, y_eval), scorer
    entropy = PredictionEntropyScorer()
    assert entropy(bad, X_eval, y_eval) > entropy(good, X_eval, y_eval)


def test_scorers_read_minus_one_in_string_labels_as_unlabeled(task):
    from sktransfer.metrics import PredictionEntropyScorer

    X, y, _, _ = task
    names = np.array(["a", "b"])
    y_str = np.where(y == -1, "-1", names[np.clip(y, 0, 1)])
    clf = da(method="source_only", epochs=2).fit(X, y_str)
    assert np.isfinite(PredictionEntropyScorer()(clf, X, y_str))

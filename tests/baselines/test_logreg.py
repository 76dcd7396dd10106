"""The shared logistic-regression probe: held-out split, softmax form, C search within a budget."""

from __future__ import annotations

import numpy as np
import pytest

from gptbert.baselines.logreg import fit_logreg, heldout_split, label_ids, softmax, softmax_form


def test_heldout_split_holds_out_every_label_and_is_seeded():
    y = np.array([0] * 30 + [1] * 10 + [2] * 1)
    fit, held = heldout_split(y, 0.1, seed=0)
    assert sorted(np.concatenate([fit, held]).tolist()) == list(range(len(y)))
    assert np.bincount(y[held], minlength=3).tolist() == [3, 1, 0]  # a singleton label stays in the fit part
    assert np.array_equal(held, heldout_split(y, 0.1, seed=0)[1])
    assert not np.array_equal(held, heldout_split(y, 0.1, seed=1)[1])


@pytest.mark.parametrize("n_labels", [2, 4])
def test_softmax_form_gives_scikit_learns_probabilities(n_labels):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    y = np.arange(80) % n_labels
    lr = LogisticRegression(C=1.0).fit(X, y)
    coef, intercept = softmax_form(lr.coef_, lr.intercept_, n_labels)
    assert coef.shape == (n_labels, 5)
    np.testing.assert_allclose(softmax(X @ coef.T + intercept), lr.predict_proba(X), atol=1e-6)


def test_c_search_tries_the_grid_and_a_zero_budget_still_fits_one_c():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
    full = fit_logreg(X, y, 2, grid=(10.0, 1.0, 0.01))
    assert list(full.search.heldout_accuracy) == ["10.0", "1.0", "0.01"] and not full.search.stopped_by_budget
    best = max(full.search.heldout_accuracy.values())
    assert full.search.heldout_accuracy[str(full.search.C)] == best
    assert full.search.heldout_size == 12
    zero = fit_logreg(X, y, 2, grid=(10.0, 1.0, 0.01), budget_s=0.0)
    assert list(zero.search.heldout_accuracy) == ["10.0"] and zero.search.stopped_by_budget and zero.search.C == 10.0
    np.testing.assert_allclose(softmax(X @ zero.coef.T + zero.intercept), zero.estimator.predict_proba(X), atol=1e-5)


def test_labels_are_ordered_as_classify_runs_order_them():
    names, y = label_ids(["10", "2", "2", "1"])
    assert names == ["1", "2", "10"] and y.tolist() == [2, 1, 1, 0]
    with pytest.raises(ValueError, match="two labels"):
        fit_logreg(np.zeros((3, 2)), np.zeros(3, dtype=int), 1)

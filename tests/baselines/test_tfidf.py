"""tfidf-lr: scikit-learn's TF-IDF features exactly, saved without pickle, same predictions after reload."""

from __future__ import annotations

import numpy as np
import pytest

from gptbert.baselines.tfidf import BLOCKS, SETTINGS_FILE, VOCABULARY_FILE, WEIGHTS_FILE, TfidfFeatures, TfidfLR
from tests.baselines._helpers import pickle_files

GRID = (10.0, 3.0)


@pytest.fixture(scope="module")
def fitted(banking_small):
    return TfidfLR.fit(banking_small.train_texts, banking_small.train_labels, grid=GRID, seed=0)


def test_features_are_scikit_learns_feature_union(banking_small):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    union = FeatureUnion([(b.name, TfidfVectorizer(analyzer=b.analyzer, ngram_range=b.ngram_range, min_df=b.min_df,
                                                   sublinear_tf=True)) for b in BLOCKS])
    expected = union.fit_transform(banking_small.train_texts)
    features, X = TfidfFeatures.fit_transform(banking_small.train_texts)
    assert X.shape == expected.shape and abs(X - expected).max() < 1e-12
    assert abs(features.transform(banking_small.dev_texts) - union.transform(banking_small.dev_texts)).max() < 1e-12


def test_fit_records_the_search_and_predicts_real_intents(fitted, banking_small):
    assert fitted.labels == sorted(set(banking_small.train_labels))
    assert list(fitted.search.heldout_accuracy) == ["10.0", "3.0"] and fitted.search.C in GRID
    assert set(fitted.seconds) == {"vectorize", "logreg", "fit"}
    probs = fitted.predict_proba(banking_small.dev_texts)
    assert probs.shape == (len(banking_small.dev_texts), 8)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    predicted = [fitted.labels[i] for i in probs.argmax(axis=1)]
    assert np.mean(np.array(predicted) == np.array(banking_small.dev_labels)) > 0.8
    np.testing.assert_allclose(probs, fitted.estimator.predict_proba(fitted.transform(banking_small.dev_texts)),
                               atol=1e-5)


def test_save_load_without_pickle_gives_identical_predictions(fitted, banking_small, tmp_path, no_pickle):
    out = fitted.save(tmp_path / "tfidf")
    assert {p.name for p in out.iterdir()} == {SETTINGS_FILE, VOCABULARY_FILE, WEIGHTS_FILE, "labels.json"}
    assert pickle_files(out) == []
    loaded = TfidfLR.load(out)
    before = fitted.predict_proba(banking_small.dev_texts)
    after = loaded.predict_proba(banking_small.dev_texts)
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=0)
    assert np.array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert loaded.labels == fitted.labels and loaded.search == fitted.search and loaded.estimator is None


def test_zero_budget_fits_one_c(banking_small):
    model = TfidfLR.fit(banking_small.train_texts, banking_small.train_labels, grid=GRID, budget_s=0.0)
    assert list(model.search.heldout_accuracy) == ["10.0"] and model.search.stopped_by_budget
    assert model.predict_proba(banking_small.dev_texts[:3]).shape == (3, 8)


def test_text_pairs_are_one_document(banking_small, tmp_path):
    texts = banking_small.train_texts[:80]
    pairs = [t[::-1] for t in texts]
    model = TfidfLR.fit(texts, banking_small.train_labels[:80], pairs=pairs, grid=(10.0,))
    probs = model.predict_proba(texts[:4], pairs[:4])
    np.testing.assert_allclose(TfidfLR.load(model.save(tmp_path / "pairs")).predict_proba(texts[:4], pairs[:4]), probs,
                               atol=1e-6)
    with pytest.raises(ValueError, match="pass pairs"):
        model.predict_proba(texts[:4])
    with pytest.raises(ValueError, match="4 texts but 3 pairs"):
        model.predict_proba(texts[:4], pairs[:3])


def test_load_names_what_is_wrong(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match=SETTINGS_FILE):
        TfidfLR.load(tmp_path)
    out = fitted.save(tmp_path / "m")
    (out / SETTINGS_FILE).write_text('{"kind": "other"}')
    with pytest.raises(ValueError, match="not a tfidf-lr model"):
        TfidfLR.load(out)

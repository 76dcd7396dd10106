"""Strong cheap baselines, measured like every other candidate (issue #14).

``tfidf-lr`` (:mod:`gptbert.baselines.tfidf`): TF-IDF word and character n-grams + logistic
regression, saved as JSON + safetensors. ``embed-lr:SOURCE`` (:mod:`gptbert.baselines.embed`):
a frozen encoder's pooled sentence embeddings + logistic regression, saved as an ordinary
classify run. Both pick C on a held-out slice of train within a time budget
(:mod:`gptbert.baselines.logreg`) and predict from raw texts with ``predict_proba``.
"""

"""Sparse (CSR) text features, never densified, next to scikit-learn's MLP.

A synthetic corpus (no download): each document mixes words drawn from a
Zipf-like background vocabulary of 50000 words with a few words of its class's
topic vocabulary; TfidfVectorizer turns it into a CSR matrix of tens of
thousands of columns with about 1 in 500 entries non-zero.  BPClassifier takes
the CSR matrix as it is (the first layer runs over the non-zeros, in fit and in
predict); so does sklearn.neural_network.MLPClassifier.  Both get the
same parameters and random_state, hence the same initial weights and
mini-batches: the table shows fit and predict_proba times, test accuracy,
the final loss and the time ratios, measured on this machine.

Run:  python examples/sparse_text.py
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from fastbp import BPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)

# The corpus: 6000 documents of 40-160 words, 5 classes; about 6% of a
# document's words come from its class's 400 topic words.
rng = np.random.RandomState(0)
n_docs, n_classes, n_vocab, topic_size = 6000, 5, 50000, 400
words = np.array([f"w{i}" for i in range(n_vocab)])
background = 1.0 / np.arange(1, n_vocab + 1) ** 1.05
background /= background.sum()
topics = [rng.choice(n_vocab, topic_size, replace=False) for _ in range(n_classes)]
y = rng.randint(n_classes, size=n_docs)
lengths = rng.randint(40, 161, size=n_docs)
n_topic = rng.binomial(lengths, 0.06)
common = rng.choice(n_vocab, int((lengths - n_topic).sum()), p=background)
bounds = np.concatenate([[0], np.cumsum(lengths - n_topic)])
docs = []
for i, label in enumerate(y):
    ids = np.concatenate([common[bounds[i]:bounds[i + 1]],
                          rng.choice(topics[label], n_topic[i])])
    docs.append(" ".join(words[ids]))

docs_train, docs_test, y_train, y_test = train_test_split(docs, y, random_state=0,
                                                          stratify=y)
vectorizer = TfidfVectorizer(token_pattern=r"\S+", sublinear_tf=True)
X_train = vectorizer.fit_transform(docs_train)  # scipy.sparse CSR
X_test = vectorizer.transform(docs_test)
density = X_train.nnz / (X_train.shape[0] * X_train.shape[1])
print(f"X_train: {X_train.format}, shape {X_train.shape}, {X_train.nnz} non-zeros "
      f"(density {density:.4f}, {X_train.nnz / X_train.shape[0]:.0f} per row)")

params = dict(hidden_layer_sizes=(64,), max_iter=5, random_state=0)
# the first fit compiles (or loads) the sparse kernels
BPClassifier(**params).fit(X_train[:100], y_train[:100]).predict_proba(X_test[:10])

estimators = {
    "BPClassifier": BPClassifier(**params),
    "BPClassifier n_jobs=1": BPClassifier(n_jobs=1, **params),
    "MLPClassifier": MLPClassifier(**params),
}
times, probas = {}, {}
print(f"\n{params}\n{'estimator':<23}{'fit s':>8}{'proba s':>9}{'test acc':>10}"
      f"{'loss_':>9}")
for name, clf in estimators.items():
    t = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    probas[name] = clf.predict_proba(X_test)
    proba_s = time.perf_counter() - t
    times[name] = fit_s, proba_s
    accuracy = np.mean(clf.classes_[probas[name].argmax(axis=1)] == y_test)
    print(f"{name:<23}{fit_s:>8.3f}{proba_s:>9.4f}{accuracy:>10.4f}{clf.loss_:>9.4f}")

mlp_fit, mlp_proba = times["MLPClassifier"]
for name in ("BPClassifier", "BPClassifier n_jobs=1"):
    fit_s, proba_s = times[name]
    print(f"MLPClassifier / {name}: fit {mlp_fit / fit_s:.1f}x, "
          f"predict_proba {mlp_proba / proba_s:.1f}x")
gap = np.abs(probas["BPClassifier"] - probas["MLPClassifier"]).max()
print(f"largest |predict_proba difference|, BPClassifier vs MLPClassifier: {gap:.1e}")

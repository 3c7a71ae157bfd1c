"""BPClassifier where MLPClassifier was: a scaled pipeline tuned by grid search.

Run:  python examples/pipeline_grid_search.py
"""

import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import BPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
grid = {"mlp__hidden_layer_sizes": [(64,), (128,)], "mlp__alpha": [1e-4, 1e-2]}

for name, mlp in (("BPClassifier", BPClassifier(max_iter=100, random_state=0)),
                  ("MLPClassifier", MLPClassifier(max_iter=100, random_state=0))):
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
    search = GridSearchCV(pipe, grid, cv=3)
    t = time.perf_counter()
    search.fit(X_train, y_train)
    elapsed = time.perf_counter() - t
    print(f"{name:<14} best {search.best_params_}  cv {search.best_score_:.4f}  "
          f"test {search.score(X_test, y_test):.4f}  search {elapsed:.2f}s")

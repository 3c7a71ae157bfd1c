"""class_weight on an imbalanced problem: 'balanced' trades some accuracy on the
common class for recall on the rare one (scikit-learn's MLP has no class_weight;
fastbp multiplies it into sample_weight exactly as compute_sample_weight does).

Run:  python examples/class_weight.py
"""

import warnings

from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = make_classification(n_samples=4000, n_features=20, n_informative=5,
                           weights=[0.95, 0.05], class_sep=0.8, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
print(f"{'class_weight':<22}{'accuracy':>10}{'recall, rare class':>20}")
for class_weight in (None, "balanced", {0: 1.0, 1: 5.0}):
    clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=0,
                       class_weight=class_weight).fit(X_train, y_train)
    rare = recall_score(y_test, clf.predict(X_test))
    print(f"{str(class_weight):<22}{clf.score(X_test, y_test):>10.4f}{rare:>20.4f}")

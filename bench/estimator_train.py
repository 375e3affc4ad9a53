"""Train the estimator's text model on the development sets and write its weights into the package.

    make train-estimator          # installs scikit-learn into the project's environment first (the `train` extra)

The model (``asyncagents.domain.workload.text_model``): ridge regression (scikit-learn's ``Ridge``) of the log of
each labelled duration on TF-IDF words and word pairs (``TfidfVectorizer``, sublinear TF, terms seen at least
twice) plus four numbers (``numeric_features``: the factor table's log estimate among them), blended with the
factor table. ``ALPHA`` and ``BLEND`` were chosen by leave-one-set-out cross-validation over the development sets
(each set written in its own round, so a held-out round is as new as a user's phrasing); the held-out sets are
never read here. The weights file records which files it was trained on and a fingerprint of the factor table's
estimates on them: a test fails when either changes without training again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from estimator import TRAINING_SETS  # noqa: E402

from asyncagents.domain.workload import analyse  # noqa: E402
from asyncagents.domain.workload.text_model import WEIGHTS, TextModel, numeric_features  # noqa: E402

ALPHA = 0.3
BLEND = 0.7


def table_seconds(message: str) -> float:
    return sum(factor.seconds for factor in analyse(message))


def training_cases() -> list[dict[str, object]]:
    return [case for name in TRAINING_SETS for case in yaml.safe_load((ROOT / "bench" / name).read_text())]


def fingerprint(cases: list[dict[str, object]]) -> dict[str, str]:
    """What the weights depend on: the training files' bytes, and the factor table's estimates of their messages."""
    files = {name: hashlib.sha256((ROOT / "bench" / name).read_bytes()).hexdigest() for name in TRAINING_SETS}
    table = ",".join(f"{table_seconds(str(case['message'])):.1f}" for case in cases)
    return {**files, "factor table": hashlib.sha256(table.encode()).hexdigest()}


def main() -> int:
    try:
        import numpy as np
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
    except ImportError:
        print("scikit-learn is needed to train: make train-estimator (installs the `train` extra)", file=sys.stderr)
        return 2
    cases = training_cases()
    messages = [str(case["message"]) for case in cases]
    tables = [table_seconds(message) for message in messages]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    words = vectorizer.fit_transform(messages)
    numbers = csr_matrix(np.array([numeric_features(m, t) for m, t in zip(messages, tables, strict=True)]))
    features = hstack([words, numbers]).tocsr()
    labels = np.log([float(case["seconds"]) for case in cases])  # type: ignore[arg-type]
    ridge = Ridge(alpha=ALPHA).fit(features, labels)
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    term_count = len(vocabulary)
    weights = {
        "trained_on": fingerprint(cases),
        "alpha": ALPHA,
        "blend": BLEND,
        "intercept": float(ridge.intercept_),
        "numeric": [float(value) for value in ridge.coef_[term_count:]],
        # Rounded to 6 significant digits (the file stays small; the check below bounds the difference).
        "terms": {
            term: [float(f"{vectorizer.idf_[i]:.6g}"), float(f"{ridge.coef_[i]:.6g}")]
            for term, i in sorted(vocabulary.items())
        },
    }
    shipped = TextModel(weights)
    exact = ridge.predict(features)
    drift = max(abs(shipped.log_seconds(m, t) - e) for m, t, e in zip(messages, tables, exact, strict=True))
    if drift > 1e-3:
        print(f"the plain-Python model differs from scikit-learn's by {drift:.2g} (log seconds)", file=sys.stderr)
        return 1
    WEIGHTS.write_text(json.dumps(weights, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{len(cases)} cases, {term_count} terms, largest difference from scikit-learn {drift:.1e}: {WEIGHTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

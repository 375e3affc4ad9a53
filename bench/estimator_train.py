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
BLEND = 1.0


def table_seconds(message: str) -> float:
    return sum(factor.seconds for factor in analyse(message))


def training_cases() -> list[dict[str, object]]:
    return [case for name in TRAINING_SETS for case in yaml.safe_load((ROOT / "bench" / name).read_text())]


def fingerprint(cases: list[dict[str, object]]) -> dict[str, str]:
    """What the weights depend on: the training files' bytes, and the factor table's estimates of their messages."""
    files = {name: hashlib.sha256((ROOT / "bench" / name).read_bytes()).hexdigest() for name in TRAINING_SETS}
    table = ",".join(f"{table_seconds(str(case['message'])):.1f}" for case in cases)
    return {**files, "factor table": hashlib.sha256(table.encode()).hexdigest()}


# Odd inputs the plain-Python model must read as scikit-learn does (recorded with their predictions).
ODD_INPUTS = [
    "",
    "!!!",
    ",,,,",
    "1,2,3 and 10,000,000 rows",
    "Résumé: naïve façade, İstanbul, straße",
    "翻译这段话 and summarise it",
    "emoji 🚀 launch plan 🚀🚀",
    "Crawl crawl CRAWL the site the site",
]
CHECKS_FROM_EACH_SET = 4


def fit(cases: list[dict[str, object]]) -> tuple[object, object]:
    """The vectorizer and the ridge regression, fitted on ``cases``."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    messages = [str(case["message"]) for case in cases]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    words = vectorizer.fit_transform(messages)
    numbers = csr_matrix(np.array([numeric_features(m, table_seconds(m)) for m in messages]))
    labels = np.log([float(case["seconds"]) for case in cases])  # type: ignore[arg-type]
    return vectorizer, Ridge(alpha=ALPHA).fit(hstack([words, numbers]).tocsr(), labels)


def weights_of(vectorizer: object, ridge: object, cases: list[dict[str, object]]) -> dict[str, object]:
    vocabulary: dict[str, int] = vectorizer.vocabulary_  # type: ignore[attr-defined]
    idf, coef = vectorizer.idf_, ridge.coef_  # type: ignore[attr-defined]
    count = len(vocabulary)
    features = [numeric_features(str(c["message"]), table_seconds(str(c["message"]))) for c in cases]
    weights: dict[str, object] = {
        "trained_on": fingerprint(cases),
        "alpha": ALPHA,
        "blend": BLEND,
        "intercept": float(ridge.intercept_),  # type: ignore[attr-defined]
        "numeric": [float(value) for value in coef[count:]],
        "numeric_range": [[min(column), max(column)] for column in zip(*features, strict=True)],
        # Rounded to 6 significant digits (the file stays small; the checks bound the difference).
        "terms": {term: [float(f"{idf[i]:.6g}"), float(f"{coef[i]:.6g}")] for term, i in sorted(vocabulary.items())},
    }
    # The analysis these weights make: the estimator keeps its learned history per analysis (another training,
    # another history).
    content = json.dumps({k: v for k, v in weights.items() if k != "trained_on"}, sort_keys=True).encode()
    weights["analysis"] = "text-" + hashlib.sha256(content).hexdigest()[:10]
    return weights


def exact_log_seconds(
    vectorizer: object, ridge: object, messages: list[str], ranges: list[list[float]] | None = None
) -> list[float]:
    """scikit-learn's predictions; with ``ranges``, of the numbers held within them (as the shipped model does)."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack

    def held(features: list[float]) -> list[float]:
        return [min(max(x, r[0]), r[1]) for x, r in zip(features, ranges, strict=True)] if ranges else features

    words = vectorizer.transform(messages)  # type: ignore[attr-defined]
    numbers = csr_matrix(np.array([held(numeric_features(m, table_seconds(m))) for m in messages]))
    return [float(value) for value in ridge.predict(hstack([words, numbers]).tocsr())]  # type: ignore[attr-defined]


def cross_validate() -> None:
    """Leave one development set out, train on the rest, decide the one left out (how the settings were chosen)."""
    for threshold in (30, 60):
        right = far = far_right = total = 0
        for left_out in TRAINING_SETS:
            train = [c for name in TRAINING_SETS if name != left_out for c in load(name)]
            vectorizer, ridge = fit(train)
            model = TextModel(weights_of(vectorizer, ridge, train))
            for case in load(left_out):
                message, label = str(case["message"]), float(case["seconds"])  # type: ignore[arg-type]
                decided = model.seconds(message, table_seconds(message)) >= threshold
                right += decided == (label >= threshold)
                total += 1
                if label <= threshold / 2 or label >= threshold * 2:
                    far += 1
                    far_right += decided == (label >= threshold)
        print(f"leave one set out, at {threshold} s: {right / total:.1%} right, {far_right / far:.1%} far from it")


def load(name: str) -> list[dict[str, object]]:
    return list(yaml.safe_load((ROOT / "bench" / name).read_text()))


def main(argv: list[str]) -> int:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("scikit-learn is needed to train: make train-estimator (installs the `train` extra)", file=sys.stderr)
        return 2
    if "--cv" in argv:
        cross_validate()
        return 0
    cases = training_cases()
    vectorizer, ridge = fit(cases)
    weights = weights_of(vectorizer, ridge, cases)
    shipped = TextModel(weights)
    messages = [str(case["message"]) for case in cases]
    exact = exact_log_seconds(vectorizer, ridge, messages)
    drift = max(abs(shipped.log_seconds(m, table_seconds(m)) - e) for m, e in zip(messages, exact, strict=True))
    if drift > 1e-3:
        print(f"the plain-Python model differs from scikit-learn's by {drift:.2g} (log seconds)", file=sys.stderr)
        return 1
    # Checks the tests replay without scikit-learn: a few messages of each set, and the odd inputs.
    sampled = [str(c["message"]) for name in TRAINING_SETS for c in load(name)[::60][:CHECKS_FROM_EACH_SET]]
    checked = sampled + ODD_INPUTS
    weights["checks"] = [
        [message, table_seconds(message), round(value, 6)]
        for message, value in zip(
            checked,
            exact_log_seconds(vectorizer, ridge, checked, weights["numeric_range"]),
            strict=True,  # type: ignore[arg-type]
        )
    ]
    WEIGHTS.write_text(json.dumps(weights, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n")
    terms = len(vectorizer.vocabulary_)  # type: ignore[attr-defined]
    print(f"{len(cases)} cases, {terms} terms, largest difference from scikit-learn {drift:.1e}: {WEIGHTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

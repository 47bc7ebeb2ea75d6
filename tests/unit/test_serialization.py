import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from mlops_provider.core.errors import CorruptArtifactError, IntegrityError, UnsafeModelError
from mlops_provider.core.serialization import dump_model, load_model, sha256_bytes


class HomeMadeClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self


def fitted():
    X = np.arange(20, dtype=float).reshape(10, 2)
    return LogisticRegression().fit(X, [0, 1] * 5), X


def test_roundtrip_with_pinned_sha():
    model, X = fitted()
    data = dump_model(model)
    loaded = load_model(data, expected_sha256=sha256_bytes(data))
    assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
    assert dump_model(model) == data  # byte-for-byte reproducible


def test_tampered_file_is_refused():
    model, _ = fitted()
    data = dump_model(model)
    with pytest.raises(IntegrityError, match="registry entry pins"):
        load_model(data + b"x", expected_sha256=sha256_bytes(data), source="v3/model.skops")


def test_pickle_is_refused_even_with_matching_sha():
    model, _ = fitted()
    data = pickle.dumps(model)
    with pytest.raises(UnsafeModelError, match="is a pickle file"):
        load_model(data, expected_sha256=sha256_bytes(data))


def test_garbage_is_not_a_skops_file():
    with pytest.raises(CorruptArtifactError, match="not a skops file"):
        load_model(b"hello world", expected_sha256=sha256_bytes(b"hello world"))


def test_untrusted_type_is_named_and_can_be_trusted_explicitly():
    X = np.zeros((4, 1))
    model = HomeMadeClassifier().fit(X, [0, 1, 0, 1])
    name = f"{HomeMadeClassifier.__module__}.HomeMadeClassifier"
    with pytest.raises(UnsafeModelError, match=name):
        dump_model(model)
    data = dump_model(model, trusted_types=[name])
    with pytest.raises(UnsafeModelError, match="outside the trusted list"):
        load_model(data, expected_sha256=sha256_bytes(data))
    assert isinstance(
        load_model(data, expected_sha256=sha256_bytes(data), trusted_types=[name]), HomeMadeClassifier
    )

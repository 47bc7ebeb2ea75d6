"""Structural checks of a loaded model, before anything calls it.

skops checks that a file holds only trusted *types*; it cannot check that the *content* of a
trusted type is safe. A few scikit-learn internals keep raw indices that compiled code follows
without bounds checks, so a crafted file of trusted types could make ``predict`` read (or, for
gradient boosting, write) outside its arrays. skops leaves two of them untrusted for this reason
(``sklearn.tree._tree.Tree`` and HistGradientBoosting's ``TreePredictor``); the supported tree
ensembles need them, so :mod:`mlops_provider.core.serialization` trusts them and this module
checks every instance, together with the shapes the compiled predict loops rely on:

* ``Tree`` (DecisionTree*, ExtraTree*, RandomForest*, ExtraTrees*, GradientBoosting*): every
  split node's children lie after it and inside the node array (so a walk ends), leaves have no
  children, and every split feature is below the width of the input the tree will see (the
  ``n_features_in_`` of its estimator and of the ensemble that validates the input for it);
* ``TreePredictor`` (HistGradientBoosting*): the same for its ``nodes`` record array, plus
  categorical splits: a bitset row that exists, and a feature the bin mapper marks categorical;
* GradientBoosting*: the compiled stage loop writes column ``k < estimators_.shape[1]`` of the
  initial raw predictions, whose width the init estimator decides: they must agree;
* libsvm models (SVC, NuSVC, SVR, NuSVR, OneClassSVM): support vectors, their counts per class,
  dual coefficients and intercepts must have consistent shapes (libsvm's C code trusts them).

A model that fails a check raises :class:`~mlops_provider.core.errors.UnsafeModelError` naming the
object (its attribute path in the model) and what is wrong. The walk visits each object once.
"""

from __future__ import annotations

import types
from typing import Any

from mlops_provider.core.errors import UnsafeModelError

#: At most this many objects are visited (a model of a few thousand trees has tens of thousands).
MAX_OBJECTS = 5_000_000


class _Walk:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, problem: str) -> UnsafeModelError:
        return UnsafeModelError(
            f"{self.source} is not a well-formed model: {path} {problem}. Refusing to load it "
            "(a crafted file could make predict read or write outside its arrays)."
        )


def _n_features(est: Any, path: str, walk: _Walk) -> int:
    n = getattr(est, "n_features_in_", None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise walk.fail(path, f"has n_features_in_={n!r}; a fitted estimator records a positive int")
    return n


def _limit(own: int, outer: int | None) -> int:
    return own if outer is None else min(own, outer)


def check_tree(tree: Any, n_features: int, path: str, walk: _Walk) -> None:
    """A ``sklearn.tree._tree.Tree`` whose input has ``n_features`` columns."""
    import numpy as np

    state = tree.__getstate__()
    nodes = state.get("nodes")
    count = state.get("node_count")
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or not isinstance(count, int):
        raise walk.fail(path, "has no node array")
    if count < 1 or len(nodes) != count:
        raise walk.fail(path, f"has node_count={count} but {len(nodes)} nodes")
    left = nodes["left_child"].astype(np.int64)
    right = nodes["right_child"].astype(np.int64)
    feature = nodes["feature"].astype(np.int64)
    idx = np.arange(count)
    leaf = left == -1
    bad_leaf = leaf & (right != -1)
    split = ~leaf
    bad = split & ((left <= idx) | (left >= count) | (right <= idx) | (right >= count))
    if bad_leaf.any() or bad.any():
        i = int(np.flatnonzero(bad_leaf | bad)[0])
        raise walk.fail(
            path, f"node {i} has children ({left[i]}, {right[i]}); they must lie after it, below {count}"
        )
    limit = min(n_features, int(getattr(tree, "n_features", n_features)))
    out = split & ((feature < 0) | (feature >= limit))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise walk.fail(path, f"node {i} splits on feature {feature[i]}, but the input has {limit} features")
    value = state.get("values")
    if not isinstance(value, np.ndarray) or value.ndim != 3 or value.shape[0] != count:
        raise walk.fail(
            path, f"has values of shape {getattr(value, 'shape', None)}; expected ({count}, outputs, classes)"
        )


def check_tree_predictor(pred: Any, n_features: int, is_categorical: Any, path: str, walk: _Walk) -> None:
    """A HistGradientBoosting ``TreePredictor`` whose input has ``n_features`` columns."""
    import numpy as np

    nodes = getattr(pred, "nodes", None)
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or nodes.ndim != 1 or len(nodes) < 1:
        raise walk.fail(path, "has no node array")
    for name in ("left", "right", "feature_idx", "is_leaf", "is_categorical", "bitset_idx"):
        if name not in nodes.dtype.names:
            raise walk.fail(path, f"has nodes without the field {name!r}")
    n = len(nodes)
    idx = np.arange(n)
    split = nodes["is_leaf"] == 0
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    feature = nodes["feature_idx"].astype(np.int64)
    bad = split & ((left <= idx) | (left >= n) | (right <= idx) | (right >= n))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise walk.fail(
            path, f"node {i} has children ({left[i]}, {right[i]}); they must lie after it, below {n}"
        )
    out = split & ((feature < 0) | (feature >= n_features))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise walk.fail(
            path, f"node {i} splits on feature {feature[i]}, but the input has {n_features} features"
        )
    cat = split & (nodes["is_categorical"] != 0)
    if cat.any():
        rows = []
        for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
            bits = getattr(pred, name, None)
            if not isinstance(bits, np.ndarray) or bits.ndim != 2 or bits.shape[1] != 8:
                raise walk.fail(
                    path, f"has categorical splits but {name} of shape {getattr(bits, 'shape', None)}"
                )
            rows.append(bits.shape[0])
        bitset = nodes["bitset_idx"].astype(np.int64)
        out = cat & (bitset >= min(rows))
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise walk.fail(path, f"node {i} uses categorical bitset {bitset[i]}, but there are {min(rows)}")
        cats = np.asarray(is_categorical if is_categorical is not None else [], dtype=bool).ravel()
        if cats.size < n_features:
            raise walk.fail(
                path,
                f"has categorical splits but the bin mapper describes {cats.size} of {n_features} features",
            )
        not_cat = cat & ~cats[np.clip(feature, 0, n_features - 1)]
        if not_cat.any():
            i = int(np.flatnonzero(not_cat)[0])
            raise walk.fail(
                path, f"node {i} makes a categorical split on feature {feature[i]}, which is not categorical"
            )


def _check_hgb(est: Any, path: str, walk: _Walk, outer: int | None) -> None:
    n = _limit(_n_features(est, path, walk), outer)
    mapper = getattr(est, "_bin_mapper", None)
    is_cat = getattr(mapper, "is_categorical_", None)
    predictors = getattr(est, "_predictors", None)
    if not isinstance(predictors, list):
        raise walk.fail(path, "has no list of predictors")
    for i, row in enumerate(predictors):
        if not isinstance(row, list):
            raise walk.fail(f"{path}._predictors[{i}]", "is not a list")
        for k, pred in enumerate(row):
            p = f"{path}._predictors[{i}][{k}]"
            if type(pred).__name__ != "TreePredictor":
                raise walk.fail(p, f"is a {type(pred).__name__}, not a TreePredictor")
            check_tree_predictor(pred, n, is_cat, p, walk)


def _check_gradient_boosting(est: Any, path: str, walk: _Walk) -> None:
    import numpy as np
    from sklearn.base import is_classifier
    from sklearn.dummy import DummyClassifier

    estimators = getattr(est, "estimators_", None)
    if not isinstance(estimators, np.ndarray) or estimators.ndim != 2 or estimators.shape[0] < 1:
        raise walk.fail(
            path, f"has estimators_ of shape {getattr(estimators, 'shape', None)}; expected (stages, K)"
        )
    k = estimators.shape[1]
    init = getattr(est, "init_", None)
    if isinstance(init, str):
        width = getattr(est, "n_trees_per_iteration_", None) if init == "zero" else None
    elif is_classifier(est) and getattr(getattr(est, "_loss", None), "is_multiclass", False):
        # the init estimator's predict_proba gives one column per class; scikit-learn's default is
        # DummyClassifier(strategy="prior"), whose width is its class_prior_
        prior = getattr(init, "class_prior_", None)
        ok = (
            type(init) is DummyClassifier
            and init.strategy == "prior"
            and isinstance(prior, np.ndarray)
            and prior.ndim == 1
            and len(prior) == len(getattr(init, "classes_", ()))
        )
        width = len(prior) if ok else None
    else:
        width = 1
    if width != k:
        raise walk.fail(
            path, f"has {k} trees per stage, but its init estimator gives {width} raw prediction column(s)"
        )


def _check_libsvm(est: Any, path: str, walk: _Walk) -> None:
    import numpy as np

    sv = getattr(est, "support_vectors_", None)
    support = getattr(est, "support_", None)
    n_support = getattr(est, "_n_support", None)
    dual = getattr(est, "_dual_coef_", None)
    intercept = getattr(est, "_intercept_", None)
    arrays = {
        "support_vectors_": sv,
        "support_": support,
        "_n_support": n_support,
        "_dual_coef_": dual,
        "_intercept_": intercept,
    }
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise walk.fail(path, f"has no array {name}")
    if sv.shape[0] == 0 and getattr(est, "kernel", None) == "precomputed":
        return
    n_sv = sv.shape[0]
    classify = getattr(est, "_impl", None) in ("c_svc", "nu_svc")
    counts = n_support if classify else n_support[:1]
    if sv.ndim != 2 or sv.shape[1] != _n_features(est, path, walk) or support.shape != (n_sv,):
        raise walk.fail(
            path, f"has support vectors of shape {sv.shape} and support_ of shape {support.shape}"
        )
    if (
        n_support.ndim != 1
        or len(n_support) < (2 if classify else 1)
        or (counts < 0).any()
        or int(counts.sum()) != n_sv
    ):
        raise walk.fail(path, f"has _n_support {n_support.tolist()} for {n_sv} support vectors")
    n_class = len(n_support) if classify else 2
    rows = n_class - 1
    if dual.ndim != 2 or dual.shape != (rows, n_sv):
        raise walk.fail(path, f"has _dual_coef_ of shape {dual.shape}; expected ({rows}, {n_sv})")
    pairs = n_class * (n_class - 1) // 2
    if intercept.shape != (pairs,):
        raise walk.fail(path, f"has _intercept_ of shape {intercept.shape}; expected ({pairs},)")
    for name in ("_probA", "_probB"):
        arr = getattr(est, name, None)
        if isinstance(arr, np.ndarray) and arr.size not in (0, pairs):
            raise walk.fail(path, f"has {name} of size {arr.size}; expected 0 or {pairs}")


def _sklearn_types() -> types.SimpleNamespace:
    """The classes the walk tells apart (imported when a model is checked, not with this module)."""
    import numpy as np
    from sklearn.base import BaseEstimator
    from sklearn.ensemble import BaseEnsemble
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    return types.SimpleNamespace(
        ndarray=np.ndarray,
        BaseEstimator=BaseEstimator,
        BaseEnsemble=BaseEnsemble,
        BaseGradientBoosting=BaseGradientBoosting,
        BaseHistGradientBoosting=BaseHistGradientBoosting,
        TreePredictor=TreePredictor,
        BaseLibSVM=BaseLibSVM,
        BaseDecisionTree=BaseDecisionTree,
        Tree=Tree,
    )


def _check_estimator(
    obj: Any, path: str, outer: int | None, walk: _Walk, sk: types.SimpleNamespace
) -> tuple[tuple[str, ...], int | None]:
    """Check ``obj`` if it is an estimator with compiled internals.

    :return: the attributes the walk must not enter (checked here already), and the input width
        ``obj`` promises the estimators it holds (``None``: no promise).
    """
    skip: tuple[str, ...] = ()
    children_outer: int | None = None
    if isinstance(obj, sk.BaseDecisionTree) and getattr(obj, "tree_", None) is not None:
        if not isinstance(obj.tree_, sk.Tree):
            raise walk.fail(f"{path}.tree_", f"is a {type(obj.tree_).__name__}, not a Tree")
        check_tree(obj.tree_, _limit(_n_features(obj, path, walk), outer), f"{path}.tree_", walk)
        skip = ("tree_",)
    elif isinstance(obj, sk.BaseHistGradientBoosting) and hasattr(obj, "_predictors"):
        _check_hgb(obj, path, walk, outer)
        skip = ("_predictors",)
    elif isinstance(obj, sk.BaseLibSVM) and hasattr(obj, "support_vectors_"):
        _check_libsvm(obj, path, walk)
    if isinstance(obj, sk.BaseGradientBoosting) and hasattr(obj, "estimators_"):
        _check_gradient_boosting(obj, path, walk)
    if (
        isinstance(obj, sk.BaseEnsemble)
        and hasattr(obj, "estimators_")
        and not hasattr(obj, "estimators_features_")
    ):
        # forests and gradient boosting call their trees without re-checking the input width
        children_outer = _limit(_n_features(obj, path, walk), outer)
    return skip, children_outer


def _children(obj: Any, path: str, skip: tuple[str, ...], sk: types.SimpleNamespace) -> list[tuple[str, Any]]:
    """(attribute path, value) of each object ``obj`` holds, in walk order."""
    if isinstance(obj, dict):
        return [(f"{path}[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, sk.ndarray):
        return [(f"{path}[{i}]", v) for i, v in enumerate(obj.ravel())] if obj.dtype == object else []
    if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
        return []
    if isinstance(obj, sk.BaseEstimator) or hasattr(obj, "__dict__"):
        return [(f"{path}.{k}", v) for k, v in vars(obj).items() if k not in skip]
    return []


def check_model_structure(model: Any, source: str = "model file") -> None:
    """Walk ``model`` and check every object listed in the module docstring; raise
    :class:`UnsafeModelError` at the first problem.

    An object reached again under another input width (a tree shared by two ensembles) is checked
    again; the compiled internals (``Tree``, ``TreePredictor``) are checked through the estimator
    that holds them, and found anywhere else they are refused.
    """
    sk = _sklearn_types()
    walk = _Walk(source)
    stack: list[tuple[Any, str, int | None]] = [(model, "model", None)]
    seen: set[tuple[int, int | None]] = set()
    while stack:
        obj, path, outer = stack.pop()
        if obj is None or isinstance(obj, (str, bytes, int, float, bool, complex)):
            continue
        if (id(obj), outer) in seen:
            continue
        seen.add((id(obj), outer))
        if len(seen) > MAX_OBJECTS:
            raise walk.fail(path, f"holds more than {MAX_OBJECTS:,} objects")
        if isinstance(obj, (sk.Tree, sk.TreePredictor)):
            raise walk.fail(path, f"is a {type(obj).__name__} outside the estimator that uses it")
        skip, children_outer = _check_estimator(obj, path, outer, walk, sk)
        if isinstance(obj, (dict, list, tuple, sk.ndarray)):
            children_outer = outer  # a container passes on what its holder promised
        for child_path, child in reversed(_children(obj, path, skip, sk)):
            stack.append((child, child_path, children_outer))

"""Safe model files: skops, exact trusted type names, a structural check, and a sha256 pin.

* :func:`dump_model` writes skops bytes that are byte-for-byte reproducible for the same model
  (zip entries in a fixed order with a fixed timestamp), so a rerun yields the same sha256, and
  refuses a model that :func:`load_model` would refuse.
* :func:`load_model` refuses a file without a sha256 pin or whose sha256 differs from the pin,
  refuses pickles, and loads with skops only if every type in the file is trusted **by exact
  name**: skops' own defaults (scikit-learn's public estimators, a few losses and links, numpy
  types), then :data:`TRUSTED_TYPES`, :data:`TRUSTED_FUNCTIONS`, ``MLOPS_TRUSTED_TYPES`` and the
  caller's ``trusted_types``. Nothing is trusted by prefix: a function under ``sklearn.`` is no
  more trusted than ``os.system``. The loaded model is then checked by
  :func:`~mlops_provider.core.model_checks.check_model_structure` before anyone calls it.
  Nothing is ever loaded with ``trusted=True``.

To trust one more type (your own estimator class, say), add its exact name as skops reports it
(``module.QualName``) to ``trusted_types=[...]`` of the operator or to ``MLOPS_TRUSTED_TYPES``
(comma-separated). Trust only classes whose code you have reviewed: a trusted class's methods run
with whatever attributes the file gives it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import warnings
import zipfile
from collections.abc import Iterable
from typing import Any

from mlops_provider.core.errors import CorruptArtifactError, IntegrityError, UnsafeModelError

#: Classes trusted beyond skops' defaults, by exact name: internals of the supported estimators
#: (found by fitting each scikit-learn classifier and regressor in the pipelines ``train_model``
#: builds, binary, multiclass and regression, with categorical and missing values), numpy's dtype
#: and random state classes, and the LightGBM/XGBoost scikit-learn wrappers.
TRUSTED_TYPES = frozenset(
    {
        # wraps a function; skops lists the function itself separately, and it must be trusted too
        "functools.partial",
        "numpy.dtype",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "numpy.random._mt19937.MT19937",
        "numpy.random.bit_generator.SeedSequence",
        # node storage of decision trees, forests and gradient boosting: checked after loading
        "sklearn.tree._tree.Tree",
        # node storage of HistGradientBoosting: checked after loading
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        "sklearn.gaussian_process.kernels.CompoundKernel",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.DotProduct",
        "sklearn.gaussian_process.kernels.ExpSineSquared",
        "sklearn.gaussian_process.kernels.Exponentiation",
        "sklearn.gaussian_process.kernels.Matern",
        "sklearn.gaussian_process.kernels.PairwiseKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.RBF",
        "sklearn.gaussian_process.kernels.RationalQuadratic",
        "sklearn.gaussian_process.kernels.Sum",
        "sklearn.gaussian_process.kernels.WhiteKernel",
        # a plain container (LightGBM's wrapper keeps its evaluation results in one)
        "collections.OrderedDict",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.basic.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.core.Booster",
    }
)
#: Functions a model file may reference, by exact name. HistGradientBoosting's categorical
#: preprocessing keeps ``partial(check_array, ...)``; nothing else is needed by the supported
#: estimators. A function named in a file is called with arguments the file chooses, so this list
#: stays as short as possible.
TRUSTED_FUNCTIONS = frozenset({"sklearn.utils.validation.check_array"})

_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
# first opcodes of pickles: PROTO (protocol 2+), and what protocols 0 and 1 start with
_PICKLE_FIRST_BYTES = frozenset(bytes([b]) for b in b"\x80(c}])NILFSVdlij")


@contextlib.contextmanager
def _quiet():
    """skops probes module attributes while resolving types, which trips deprecation warnings of
    unrelated modules (Airflow's among them); they say nothing about the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _skops():
    with _quiet():  # skops scans every loaded module when first imported
        import skops.io

    return skops.io


def _env_trusted() -> set[str]:
    raw = os.environ.get("MLOPS_TRUSTED_TYPES", "")
    return {t.strip() for t in raw.split(",") if t.strip()}


def trusted_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """Every exact type or function name trusted beyond skops' defaults, with ``extra`` (a list
    of names, or one comma-separated string) and ``MLOPS_TRUSTED_TYPES``; a malformed name is an
    :class:`~mlops_provider.core.errors.InvalidInputError` naming it."""
    from mlops_provider.core.errors import InvalidInputError

    if isinstance(extra, str):
        extra = [t.strip() for t in extra.split(",") if t.strip()]
    names = set(extra or ()) | _env_trusted()
    bad = sorted(n for n in names if not isinstance(n, str) or not _TYPE_NAME.fullmatch(n))
    if bad:
        raise InvalidInputError(
            f"The 'trusted_types' (or MLOPS_TRUSTED_TYPES) must be exact dotted type names such as "
            f"'mycompany.models.Ranker'. Got {bad!r} instead."
        )
    return TRUSTED_TYPES | TRUSTED_FUNCTIONS | frozenset(names)


def is_trusted(type_name: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``type_name`` (as skops reports it) is trusted: exact names only, never a prefix."""
    return type_name in trusted_names(extra)


def _refused(untrusted: Iterable[str], extra: Iterable[str]) -> list[str]:
    allowed = trusted_names(extra)
    return sorted(t for t in untrusted if t not in allowed)


def dump_model(model: Any, trusted_types: Iterable[str] = ()) -> bytes:
    """skops bytes for ``model``; refuses a model that could not be loaded back safely."""
    sio = _skops()

    with _quiet():
        raw = sio.dumps(model)
        data = _normalize_zip(raw)
        untrusted = sio.get_untrusted_types(data=data)
    refused = _refused(untrusted, trusted_types)
    if refused:
        raise UnsafeModelError(
            "The model holds types outside the trusted list, so it could not be loaded back safely: "
            f"{refused}. "
            "If you trust them, pass trusted_types=[...] (or set MLOPS_TRUSTED_TYPES) with these exact names."
        )
    from mlops_provider.core.model_checks import check_model_structure

    check_model_structure(model, "The model")
    return data


def _normalize_zip(raw: bytes) -> bytes:
    """Rewrite a skops archive so equal models give equal bytes.

    skops names array files and shared-reference ids after ``id()`` of the objects, which differ
    between processes; they are renumbered in order of first appearance in ``schema.json``, and the
    entries are written in a fixed order with a fixed timestamp.
    """
    import json

    src = zipfile.ZipFile(io.BytesIO(raw))
    schema = json.loads(src.read("schema.json"))
    ids: dict[int, int] = {}
    file_re = re.compile(r"^(\d+)(\.\w+)$")

    def renum(i: int) -> int:
        return ids.setdefault(int(i), len(ids) + 1)

    def walk(o):
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if k == "__id__" and isinstance(v, int):
                    out[k] = renum(v)
                elif k == "file" and isinstance(v, str) and file_re.match(v):
                    num, ext = file_re.match(v).groups()
                    out[k] = f"{renum(int(num))}{ext}"
                else:
                    out[k] = walk(v)
            return out
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    schema = walk(schema)
    entries = {"schema.json": json.dumps(schema, indent=2).encode()}
    for name in src.namelist():
        if name == "schema.json":
            continue
        m = file_re.match(name)
        new_name = f"{renum(int(m.group(1)))}{m.group(2)}" if m else name
        entries[new_name] = src.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, entries[name])
    return out.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_model(
    data: bytes,
    *,
    expected_sha256: str | None,
    source: str = "model file",
    trusted_types: Iterable[str] = (),
) -> Any:
    """Load skops bytes after checking the sha256 pin, the format and every type's exact name,
    then the model's structure (:func:`~mlops_provider.core.model_checks.check_model_structure`).

    ``expected_sha256`` is required: a version without a pin (``None``, empty, not 64 hex digits)
    is refused, since nothing would then tell a planted file from the registered one.
    """
    if not isinstance(expected_sha256, str) or not _SHA256.fullmatch(expected_sha256):
        raise IntegrityError(
            f"{source} has no valid sha256 pin (got {expected_sha256!r}; "
            "expected 64 lowercase hex digits recorded at registration). "
            "Refusing to load a model file that nothing pins."
        )
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{source} has sha256 {actual}, but its registry entry pins {expected_sha256}: "
            "the file was changed after registration. Refusing to load it."
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if data[:1] in _PICKLE_FIRST_BYTES:
            raise UnsafeModelError(
                f"{source} is a pickle file; only skops files are loaded, "
                "since a pickle can run arbitrary code on load. "
                "Re-save the model with skops (mlops_provider.core.serialization.dump_model)."
            )
        raise CorruptArtifactError(
            f"{source} is not a skops file (expected a zip archive, got {data[:8]!r}...)"
        )
    sio = _skops()
    try:
        with _quiet():
            untrusted = sio.get_untrusted_types(data=data)
    except Exception as err:
        raise CorruptArtifactError(f"{source} is not a readable skops file: {err}") from err
    refused = _refused(untrusted, trusted_types)
    if refused:
        raise UnsafeModelError(
            f"{source} holds types outside the trusted list: {refused}. Refusing to load it. "
            "If you trust them, pass trusted_types=[...] or set MLOPS_TRUSTED_TYPES with these exact names."
        )
    try:
        with _quiet():
            model = sio.loads(data, trusted=list(untrusted))
    except Exception as err:
        raise CorruptArtifactError(f"{source} could not be loaded by skops: {err}") from err
    from mlops_provider.core.model_checks import check_model_structure

    check_model_structure(model, source)
    return model

"""Typed, validated payloads of the package's asset events (no Airflow imports).

Assets::

    x-mlops://<model>/retrain-requested    extra = RetrainRequest.to_extra()
    x-mlops://<model>/champion             extra = ChampionChanged.to_extra()

An event's ``extra`` is free-form JSON to Airflow, and anyone allowed to post asset events can
send one. A consumer DAG should parse the triggering events with :func:`parse_triggering_events`
before it does any work: one bad payload rejects the whole batch with an
:class:`InvalidInputError` that names the key, what was expected and what was got, so training
never starts on a malformed or foreign request. URIs in a payload (``report_uri``) must point
inside the artifact root.

New-data events from an ``AssetWatcher`` arrive as ``{"from_trigger": True, "payload": {...}}``;
:meth:`NewDataEvent.parse` reads them and checks the file is under an allowed prefix.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlops_provider.core.errors import InvalidInputError
from mlops_provider.core.names import CHAMPION as CHAMPION_ALIAS
from mlops_provider.core.names import check_name, is_name

SCHEMA_VERSION = 1
REASONS = ("drift", "performance", "estimated_performance", "manual")
ASSET_KINDS = ("retrain-requested", "champion")
RETRAIN_REQUESTED = "retrain-requested"
CHAMPION = "champion"  # the asset kind x-mlops://<model>/champion (the alias is names.CHAMPION)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def asset_uri(model: str, kind: str) -> str:
    """``x-mlops://<model>/retrain-requested`` or ``x-mlops://<model>/champion``."""
    check_name(model, "model", "asset_uri")
    if kind not in ASSET_KINDS:
        raise InvalidInputError(
            f"The 'kind' parameter of asset_uri must be one of {list(ASSET_KINDS)}. Got {kind!r} instead."
        )
    # "x-" schemes are Airflow's custom asset schemes: no provider lookup while a DAG file is parsed
    return f"x-mlops://{model}/{kind}"


# --------------------------------------------------------------------------- validation helpers
def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _payload(extra: Any, what: str) -> dict[str, Any]:
    if not isinstance(extra, Mapping):
        raise InvalidInputError(
            f"The {what} event payload must be a JSON object (dict). Got {_got(extra)} instead."
        )
    return dict(extra)


def _key(extra: dict[str, Any], key: str, what: str, expected: str) -> Any:
    if key not in extra:
        raise InvalidInputError(
            f"The {what} event payload lacks the {key!r} key (expected {expected}); "
            f"it has keys {sorted(extra)}."
        )
    return extra[key]


def _bad(key: str, what: str, expected: str, value: Any) -> InvalidInputError:
    return InvalidInputError(
        f"The {key!r} key of the {what} event payload must be {expected}. Got {_got(value)} instead."
    )


def _model(extra: Mapping[str, Any], what: str) -> str:
    """The payload's ``model``: a model name by the one name rule."""
    model = _str(extra, "model", what)
    try:
        check_name(model, "model", what)
    except InvalidInputError as err:
        raise InvalidInputError(
            f"The 'model' key of the {what} event payload is not a valid model name: {err}"
        ) from err
    return model


def _str(extra, key, what, *, optional=False, nonempty=True) -> str | None:
    expected = "a non-empty string" + (" or null" if optional else "")
    value = _key(extra, key, what, expected)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise _bad(key, what, expected, value)
    return value


def _int(extra, key, what, *, optional=False, minimum: int | None = None) -> int | None:
    expected = "an int" + (f" >= {minimum}" if minimum is not None else "") + (" or null" if optional else "")
    value = _key(extra, key, what, expected)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise _bad(key, what, expected, value)
    return value


def _iso(value: Any, key: str, what: str) -> str:
    expected = "an ISO 8601 timestamp string (e.g. '2013-07-01T00:00:00+00:00')"
    if not isinstance(value, str):
        raise _bad(key, what, expected, value)
    try:
        dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise _bad(key, what, expected, value) from err
    return value


def _check_version(extra: dict[str, Any], type_name: str, what: str) -> None:
    """``type`` and ``schema_version`` may be absent (a hand-posted event); if present they must match."""
    if "type" in extra and extra["type"] != type_name:
        raise _bad("type", what, repr(type_name), extra["type"])
    if "schema_version" in extra:
        v = extra["schema_version"]
        if isinstance(v, bool) or v != SCHEMA_VERSION:
            raise _bad("schema_version", what, f"{SCHEMA_VERSION} (the version this package reads)", v)


def _inside_root(uri: Any, key: str, what: str, artifact_root: str | None) -> str:
    from mlops_provider.core.storage import ArtifactStore

    expected = "a URI inside the artifact root" + (f" {artifact_root!r}" if artifact_root else "")
    if not isinstance(uri, str) or not uri.strip():
        raise _bad(key, what, expected + " or null", uri)
    if not artifact_root:
        raise InvalidInputError(
            f"The {key!r} key of the {what} event payload is {uri!r}, "
            "but no artifact root was given to check it against; pass artifact_root."
        )
    if "://" not in uri and not uri.startswith("/"):
        raise _bad(key, what, expected + " (a full URI, not a relative path)", uri)
    if "/../" in f"{uri}/" or "/./" in f"{uri}/":
        raise _bad(key, what, expected + " without '..' (or '.') segments", uri)
    try:
        # key_of needs no filesystem: a store over a root that does not exist yet is fine
        ArtifactStore(artifact_root, fs=object()).key_of(uri)
    except ValueError as err:
        raise InvalidInputError(
            f"The {key!r} key of the {what} event payload must be {expected}. {err}"
        ) from err
    return uri


# --------------------------------------------------------------------------- payloads
@dataclass
class RetrainRequest:
    """Why a model should be retrained; the ``extra`` of ``x-mlops://<model>/retrain-requested``."""

    TYPE: ClassVar[str] = "retrain_requested"

    model: str
    reason: str  # "drift" | "performance" | "estimated_performance" | "manual"
    champion_version: int | None = None
    window: dict[str, str] | None = None  # {"start": ISO, "end": ISO}
    drifted_features: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    report_uri: str | None = None
    requested_at: str = field(default_factory=now_iso)

    @property
    def asset_uri(self) -> str:
        return asset_uri(self.model, RETRAIN_REQUESTED)

    def to_extra(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "reason": self.reason,
            "champion_version": self.champion_version,
            "window": dict(self.window) if self.window is not None else None,
            "drifted_features": list(self.drifted_features),
            "scores": {str(k): float(v) for k, v in self.scores.items()},
            "report_uri": self.report_uri,
            "requested_at": self.requested_at,
        }

    @classmethod
    def parse(cls, extra: Any, *, artifact_root: str | None = None) -> RetrainRequest:
        what = "retrain-requested"
        extra = _payload(extra, what)
        _check_version(extra, cls.TYPE, what)
        model = _model(extra, what)
        reason = _str(extra, "reason", what)
        if reason not in REASONS:
            raise _bad("reason", what, f"one of {list(REASONS)}", reason)
        champion_version = _int(extra, "champion_version", what, optional=True, minimum=1)
        window = _key(extra, "window", what, "{'start': ISO, 'end': ISO} or null")
        if window is not None:
            if not isinstance(window, Mapping) or set(window) != {"start", "end"}:
                raise _bad("window", what, "a dict with exactly the keys 'start' and 'end', or null", window)
            start = _iso(window["start"], "window.start", what)
            end = _iso(window["end"], "window.end", what)
            window = {"start": start, "end": end}
        drifted = _key(extra, "drifted_features", what, "a list of feature names")
        if not isinstance(drifted, list) or not all(isinstance(f, str) and f for f in drifted):
            raise _bad("drifted_features", what, "a list of non-empty strings", drifted)
        scores = _key(extra, "scores", what, "a dict of name -> number")
        if not isinstance(scores, Mapping):
            raise _bad("scores", what, "a dict of name -> number", scores)
        for k, v in scores.items():
            if (
                not isinstance(k, str)
                or isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
            ):
                raise _bad(f"scores.{k}", what, "a finite number (not a bool)", v)
        report_uri = _key(extra, "report_uri", what, "a URI inside the artifact root or null")
        if report_uri is not None:
            report_uri = _inside_root(report_uri, "report_uri", what, artifact_root)
        requested_at = _iso(_key(extra, "requested_at", what, "an ISO 8601 timestamp"), "requested_at", what)
        known = {
            "type",
            "schema_version",
            "model",
            "reason",
            "champion_version",
            "window",
            "drifted_features",
            "scores",
            "report_uri",
            "requested_at",
        }
        unknown = sorted(set(extra) - known)
        if unknown:
            raise InvalidInputError(
                f"The {what} event payload has unknown key(s) {unknown}; expected only {sorted(known)}."
            )
        return cls(
            model=model,
            reason=reason,
            champion_version=champion_version,
            window=window,
            drifted_features=list(drifted),
            scores={k: float(v) for k, v in scores.items()},
            report_uri=report_uri,
            requested_at=requested_at,
        )


@dataclass
class ChampionChanged:
    """A move of a model's alias (the champion); the ``extra`` of ``x-mlops://<model>/champion``.

    The one definition of this event: :class:`~mlops_provider.triggers.champion.ChampionChangedTrigger`
    emits :meth:`to_extra` (built by :meth:`from_alias_record`), consumers read it with :meth:`parse`.
    Its ``type`` names the schema.
    """

    TYPE: ClassVar[str] = "champion_changed"

    model: str
    version: int
    previous_version: int | None
    actor: str
    reason: str
    changed_at: str = field(default_factory=now_iso)
    alias: str = CHAMPION_ALIAS

    @property
    def asset_uri(self) -> str:
        return asset_uri(self.model, CHAMPION)

    @classmethod
    def from_alias_record(
        cls, model: str, alias: str, record: Mapping[str, Any], previous_version: int | None
    ) -> ChampionChanged:
        """The event for an alias-log record (:class:`~mlops_provider.core.registry.AliasEvent` as a dict)."""
        return cls(
            model=model,
            version=int(record["version"]),
            previous_version=previous_version,
            actor=record.get("actor"),
            reason=record.get("reason"),
            changed_at=record.get("updated_at"),
            alias=alias,
        )

    def to_extra(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "previous_version": self.previous_version,
            "actor": self.actor,
            "reason": self.reason,
            "changed_at": self.changed_at,
        }

    @classmethod
    def parse(cls, extra: Any, *, artifact_root: str | None = None) -> ChampionChanged:
        what = "champion"
        extra = _payload(extra, what)
        _check_version(extra, cls.TYPE, what)
        model = _model(extra, what)
        alias = extra.get("alias", CHAMPION_ALIAS)
        if not is_name(alias):
            raise _bad("alias", what, "an alias name such as 'champion'", alias)
        version = _int(extra, "version", what, minimum=1)
        previous = _int(extra, "previous_version", what, optional=True, minimum=1)
        actor = _str(extra, "actor", what)
        reason = _str(extra, "reason", what)
        changed_at = _iso(_key(extra, "changed_at", what, "an ISO 8601 timestamp"), "changed_at", what)
        known = {
            "type",
            "schema_version",
            "model",
            "alias",
            "version",
            "previous_version",
            "actor",
            "reason",
            "changed_at",
        }
        unknown = sorted(set(extra) - known)
        if unknown:
            raise InvalidInputError(
                f"The {what} event payload has unknown key(s) {unknown}; expected only {sorted(known)}."
            )
        return cls(
            model=model,
            version=version,
            previous_version=previous,
            actor=actor,
            reason=reason,
            changed_at=changed_at,
            alias=alias,
        )


@dataclass
class NewDataEvent:
    """A new file seen by an ``AssetWatcher``:
    extra ``{"from_trigger": True, "payload": {uri, size, mtime}}``."""

    uri: str
    size: int
    mtime: str  # ISO 8601 (an epoch number in the payload is converted)

    def to_extra(self) -> dict[str, Any]:
        return {"from_trigger": True, "payload": {"uri": self.uri, "size": self.size, "mtime": self.mtime}}

    @classmethod
    def parse(
        cls, extra: Any, *, artifact_root: str | None = None, allowed_prefix: str | None = None
    ) -> NewDataEvent:
        what = "new-data"
        extra = _payload(extra, what)
        if extra.get("from_trigger") is not True:
            raise _bad("from_trigger", what, "True (an AssetWatcher event)", extra.get("from_trigger"))
        payload = _key(extra, "payload", what, "a dict with 'uri', 'size' and 'mtime'")
        payload = _payload(payload, what)
        uri = _str(payload, "uri", what)
        if allowed_prefix:
            prefix = allowed_prefix.rstrip("/") + "/"
            if not uri.startswith(prefix) or ".." in uri[len(prefix) :].split("/"):
                raise _bad("uri", what, f"a URI under the allowed prefix {prefix!r} (no '..')", uri)
        else:
            _inside_root(uri, "uri", what, artifact_root)
        size = _int(payload, "size", what, minimum=0)
        mtime = _key(payload, "mtime", what, "an ISO timestamp or epoch seconds")
        if isinstance(mtime, (int, float)) and not isinstance(mtime, bool) and math.isfinite(mtime):
            try:
                mtime = dt.datetime.fromtimestamp(mtime, dt.timezone.utc).isoformat()
            except (OverflowError, OSError, ValueError) as err:
                raise _bad(
                    "mtime",
                    what,
                    "epoch seconds within the dates Python can represent (years 1-9999) or an ISO timestamp",
                    mtime,
                ) from err
        else:
            mtime = _iso(mtime, "mtime", what)
        return cls(uri=uri, size=size, mtime=mtime)


def parse_event(extra: Any, *, artifact_root: str | None = None, allowed_prefix: str | None = None):
    """One event's ``extra``, parsed by its shape: AssetWatcher payload, champion change or
    retrain request."""
    if isinstance(extra, Mapping) and "from_trigger" in extra:
        return NewDataEvent.parse(extra, artifact_root=artifact_root, allowed_prefix=allowed_prefix)
    if isinstance(extra, Mapping) and extra.get("type") == ChampionChanged.TYPE:
        return ChampionChanged.parse(extra, artifact_root=artifact_root)
    return RetrainRequest.parse(extra, artifact_root=artifact_root)


def _flatten(events: Any) -> list[Any]:
    if isinstance(events, Mapping):  # context["triggering_asset_events"]: {asset: [events]}
        return [e for evs in events.values() for e in evs]
    if isinstance(events, Iterable) and not isinstance(events, (str, bytes)):
        return list(events)
    raise InvalidInputError(
        "The triggering events must be a list of events (or a mapping of asset -> events). "
        f"Got {_got(events)}."
    )


def parse_triggering_events(
    events: Any, artifact_root: str | None = None, *, allowed_prefix: str | None = None
) -> list:
    """Parse every triggering event (dicts with ``"extra"``, or objects with an ``.extra``); all or nothing.

    Returns :class:`RetrainRequest` / :class:`ChampionChanged` / :class:`NewDataEvent` instances in
    order. The first invalid event rejects the whole batch, naming its position.
    """
    out = []
    for i, event in enumerate(_flatten(events)):
        if isinstance(event, Mapping):
            if "extra" not in event:
                raise InvalidInputError(
                    f"Triggering event #{i} lacks the 'extra' key; it has keys {sorted(event)}."
                )
            extra = event["extra"]
        elif hasattr(event, "extra"):
            extra = event.extra
        else:
            raise InvalidInputError(
                f"Triggering event #{i} must be a dict with 'extra' or an asset event. Got {_got(event)}."
            )
        try:
            out.append(parse_event(extra, artifact_root=artifact_root, allowed_prefix=allowed_prefix))
        except InvalidInputError as err:
            raise InvalidInputError(
                f"Triggering event #{i} rejected (no event of this batch is used): {err}"
            ) from err
    return out

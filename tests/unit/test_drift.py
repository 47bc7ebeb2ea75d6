import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlops_provider.core.drift import ReferenceProfile, RetrainPolicy, build_profile, compare
from mlops_provider.core.errors import InvalidInputError, InvalidParameterError, MissingColumnsError

WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    n = 200_000
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "hour": rng.integers(5, 24, n),
            "carrier": rng.choice(["UA", "AA", "DL", "B6"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    return ref, rng


def test_statistics_agree_with_scipy(synthetic):
    ref, rng = synthetic
    cur = ref.copy()
    cur["x"] = rng.normal(0.6, 1.3, len(ref))
    cur["carrier"] = rng.choice(["UA", "AA", "DL", "B6"], len(ref), p=[0.25, 0.25, 0.25, 0.25])
    report = compare(build_profile(ref, categorical=["carrier"]), cur)
    by = {f.feature: f for f in report.features}
    ks = stats.ks_2samp(ref["x"], cur["x"])
    assert by["x"].statistic == pytest.approx(ks.statistic, abs=2e-3)  # KS on a 1,000-quantile grid
    table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref["carrier"], cur["carrier"]])
    chi = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert by["carrier"].statistic == pytest.approx(chi.statistic, rel=1e-6)
    assert by["carrier"].p_value == pytest.approx(chi.pvalue, abs=1e-12)
    # PSI by hand on the reference deciles
    edges = np.quantile(ref["x"], np.linspace(0, 1, 11)[1:-1])
    r = np.bincount(np.searchsorted(edges, ref["x"], "right"), minlength=10) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur["x"], "right"), minlength=10) / len(cur)
    assert by["x"].psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-3)
    assert set(report.drifted_features) == {"x", "carrier"}


def test_no_drift_on_a_resample_and_drift_on_a_shifted_copy(synthetic):
    ref, rng = synthetic
    prof = build_profile(ref, categorical=["carrier"])
    same = compare(prof, ref.sample(50_000, random_state=3))
    assert same.drifted_features == [] and max(f.psi for f in same.features) < 0.01
    shifted = ref.copy()
    shifted["x"] = shifted["x"] + 1.0
    shifted["hour"] = np.clip(shifted["hour"] + 4, 5, 23)
    assert set(compare(prof, shifted).drifted_features) == {"x", "hour"}


def test_missing_rate_and_unseen_categories(synthetic):
    ref, _ = synthetic
    cur = ref.head(20_000).copy()
    cur.loc[cur.index[:4000], "x"] = np.nan
    cur.loc[cur.index[:2000], "carrier"] = "ZZ"
    by = {f.feature: f for f in compare(build_profile(ref, categorical=["carrier"]), cur).features}
    assert by["x"].drifted and "missing rate 0.0% -> 20.0%" in by["x"].reasons
    assert by["carrier"].unseen_share == pytest.approx(0.1) and any(
        "unseen" in r for r in by["carrier"].reasons
    )


def test_profile_roundtrip_and_bad_input(synthetic):
    ref, _ = synthetic
    prof = build_profile(ref.head(1000), categorical=["carrier"])
    again = ReferenceProfile.from_dict(prof.to_dict())
    assert (
        compare(again, ref.head(500)).to_dict()["scores"] == compare(prof, ref.head(500)).to_dict()["scores"]
    )
    with pytest.raises(MissingColumnsError, match=r"\['hour'\]"):
        compare(prof, ref.drop(columns=["hour"]))
    with pytest.raises(InvalidInputError, match="0 rows"):
        compare(prof, ref.head(0))
    with pytest.raises(InvalidParameterError, match="psi_threshold"):
        compare(prof, ref.head(10), psi_threshold=-1)
    with pytest.raises(InvalidInputError, match="'x' must be numeric"):
        compare(prof, ref.head(10).assign(x="a"))


def test_policy_counts_and_persistence():
    def rep(n):
        return {"n_drifted": n, "drifted_features": [f"f{i}" for i in range(n)]}

    assert RetrainPolicy(min_drifted_features=2).decide([rep(2)])[0]
    assert not RetrainPolicy(min_drifted_features=3).decide([rep(2)])[0]
    persist = RetrainPolicy(min_drifted_features=1, persistence=3)
    assert not persist.decide([rep(1), rep(1)])[0]
    assert not persist.decide([rep(1), rep(0), rep(1)])[0]
    ok, why = persist.decide([rep(0), rep(1), rep(2), rep(1)])
    assert ok and "last 3 window" in why
    with pytest.raises(InvalidParameterError, match="persistence"):
        RetrainPolicy(persistence=0)


def test_nycflights_weather_winter_vs_summer_drifts_and_january_vs_february_does_not():
    """Measured PSI from January 2013: February temp 0.46, dewp 0.34, pressure 0.54, wind_dir 0.20;
    July temp 7.9, dewp 8.2, pressure 1.56. Flight features stay below 0.005 (Feb) and 0.035 (Jul).
    Hourly weather moves month to month, so the weather features get their own threshold."""
    from mlops_provider.examples.nycflights import load_flights_with_weather

    df = load_flights_with_weather()
    features = WEATHER + ["carrier", "origin", "dest", "hour", "distance"]
    profile_jan = build_profile(df[df["month"] == 1], features, categorical=["carrier", "origin", "dest"])
    weather_aware = {"default": 0.2, "temp": 1.0, "dewp": 1.0, "pressure": 1.0, "wind_dir": 0.5, "humid": 0.5}
    summer = compare(profile_jan, df[df["month"] == 7], psi_threshold=weather_aware)
    february = compare(profile_jan, df[df["month"] == 2], psi_threshold=weather_aware)
    assert {"temp", "dewp", "pressure"} <= set(summer.drifted_features)
    assert february.drifted_features == [], february.summary()
    feb = {f.feature: f.psi for f in february.features}
    jul = {f.feature: f.psi for f in summer.features}
    assert all(feb[c] < 0.01 for c in ("carrier", "origin", "dest", "hour", "distance"))
    assert jul["temp"] > 10 * feb["temp"] and jul["dewp"] > 10 * feb["dewp"]
    # with one threshold for everything, February flags only weather features, never flight ones
    plain = compare(profile_jan, df[df["month"] == 2])
    assert set(plain.drifted_features) <= set(WEATHER)

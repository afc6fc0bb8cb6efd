"""The workload file: validated with errors that name the file, the field and the expectation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.config import ConfigError
from simulator.samples import read_samples
from simulator.service import lognormal_params, make_sampler, mean_capped, moments
from simulator.workload import Constant, Empirical, Exponential, Lognormal, Trace, load_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOOD_FN = "functions:\n  f: {service: {dist: exponential, mean: 1}}\n"


def load_text(tmp_path: Path, text: str) -> Exception:
    path = tmp_path / "workload.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_workload(path)
    assert str(path) in str(info.value)
    return info.value


def test_example_workload_loads_and_resolves_paths_beside_it() -> None:
    wl = load_workload(EXAMPLES / "workload.yaml")
    kinds = {s.arrivals.process for s in wl.streams}
    assert kinds == {"poisson", "diurnal", "mmpp", "trace"}
    dists = {fn.service.dist for fn in wl.functions.values()}
    assert dists == {"constant", "exponential", "lognormal", "empirical"}
    trace = next(s.arrivals for s in wl.streams if isinstance(s.arrivals, Trace))
    assert Path(trace.path).is_file()
    etl = wl.functions["etl"].service
    assert isinstance(etl, Empirical) and Path(etl.path).is_absolute()
    assert wl.slo


def test_mix_naming_an_unknown_function_points_at_the_entry(tmp_path: Path) -> None:
    err = load_text(
        tmp_path,
        GOOD_FN + "streams:\n  - arrivals: {process: poisson, rate: 1}\n"
        "    mix: [{function: f}, {function: g}]\n",
    )
    assert "streams[0].mix[1].function" in str(err) and "unknown function 'g'" in str(err)
    assert "expected one of: f" in str(err)


def test_bad_distribution_and_negative_rate_are_both_reported(tmp_path: Path) -> None:
    err = load_text(
        tmp_path,
        "functions:\n  f: {service: {dist: weibull, mean: 1}}\n"
        "streams:\n  - arrivals: {process: poisson, rate: -1}\n"
        "    mix: [{function: f}]\n",
    )
    msg = str(err)
    assert "functions.f.service" in msg and "weibull" in msg
    assert "streams[0].arrivals.poisson.rate" in msg and "greater than 0" in msg


def test_mmpp_lists_of_different_length_are_refused(tmp_path: Path) -> None:
    err = load_text(
        tmp_path,
        GOOD_FN + "streams:\n  - arrivals: {process: mmpp, rates: [1, 2], "
        "mean_durations: [1, 2, 3]}\n    mix: [{function: f}]\n",
    )
    assert "streams[0].arrivals.mmpp" in str(err) and "same length" in str(err)


def test_stream_without_mix_needs_a_trace(tmp_path: Path) -> None:
    err = load_text(tmp_path, GOOD_FN + "streams:\n  - arrivals: {process: poisson, rate: 1}\n")
    assert "streams[0]" in str(err) and "non-empty mix" in str(err)


def test_missing_trace_and_sample_files_are_named(tmp_path: Path) -> None:
    err = load_text(
        tmp_path,
        "functions:\n  f: {service: {dist: empirical, path: none.txt}}\n"
        "streams:\n  - arrivals: {process: trace, path: gone.csv}\n",
    )
    msg = str(err)
    assert "functions.f.service.path" in msg and "none.txt" in msg
    assert "streams[0].arrivals.path" in msg and "gone.csv" in msg


def test_bad_sample_line_is_named(tmp_path: Path) -> None:
    samples = tmp_path / "s.txt"
    samples.write_text("# header\n0.5\nfast\n")
    with pytest.raises(ConfigError, match=r"s\.txt: line 3: expected a number of seconds"):
        read_samples(samples)


def test_bad_slo_in_the_file_is_named(tmp_path: Path) -> None:
    err = load_text(
        tmp_path,
        GOOD_FN + "streams:\n  - arrivals: {process: poisson, rate: 1}\n"
        "    mix: [{function: f}]\nslo: ['p99 e2e <= soon']\n",
    )
    assert "slo[0]" in str(err)


def test_lognormal_sampler_has_the_requested_mean_and_cv() -> None:
    spec = Lognormal(dist="lognormal", mean=2.0, cv=1.5)
    sample = make_sampler(spec, np.random.default_rng(1))
    xs = np.array([sample() for _ in range(400_000)])
    assert xs.mean() == pytest.approx(2.0, rel=0.02)
    assert xs.std() / xs.mean() == pytest.approx(1.5, rel=0.05)
    assert moments(spec) == pytest.approx((2.0, (1 + 1.5**2) * 4.0))
    mu, sigma = lognormal_params(2.0, 1.5)
    assert np.median(xs) == pytest.approx(np.exp(mu), rel=0.02)
    assert sigma > 0


def test_empirical_sampler_resamples_the_measured_values(tmp_path: Path) -> None:
    samples = tmp_path / "s.txt"
    samples.write_text("1\n2\n2\n5\n")
    sample = make_sampler(Empirical(dist="empirical", path=str(samples)), np.random.default_rng(2))
    xs = [sample() for _ in range(20_000)]
    assert set(xs) == {1.0, 2.0, 5.0}
    assert np.mean(xs) == pytest.approx(2.5, rel=0.02)


@pytest.mark.parametrize(
    "spec",
    [
        Lognormal(dist="lognormal", mean=2.0, cv=1.5),
        Exponential(dist="exponential", mean=3.0),
        Constant(dist="constant", value=5.0),
    ],
)
def test_mean_capped_at_a_timeout_matches_sampling(spec: Lognormal | Exponential | Constant) -> None:
    sample = make_sampler(spec, np.random.default_rng(3))
    xs = np.minimum([sample() for _ in range(200_000)], 4.0)
    assert mean_capped(spec, 4.0) == pytest.approx(xs.mean(), rel=0.01)
    assert mean_capped(spec, 1e9) == pytest.approx(moments(spec)[0])

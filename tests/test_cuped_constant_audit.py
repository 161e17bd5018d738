"""CUPED with a pre-period covariate that is the same for every user (audit H3, defect 1).

log(1 + 30) for every user has a float sd of rounding noise (1e-15) on the whole array: the old
`x.std(0) > 0` filter kept it, the recomputed sd of the kept copy was exactly 0 and 0/0 put NaN in the
design, so `experiment ab` died with numpy's "SVD did not converge". A constant covariate says nothing:
it is dropped, and the result equals CUPED without it."""

import warnings

import numpy as np
import pytest

from edgerec.errors import EdgerecError
from edgerec.studies import stats


def _arms(n=20, seed=0):
    rng = np.random.default_rng(seed)

    def pre():
        return np.column_stack([rng.random(n), np.zeros(n), rng.random(n), np.full(n, np.log(31.0)),
                                rng.random(n), rng.random(n) * 7])

    c, t = rng.poisson(1.0, n).astype(float), rng.poisson(1.2, n).astype(float)
    return c, t, pre(), pre()


def test_cuped_test_drops_a_constant_covariate_with_rounding_noise_sd():
    c, t, pc, pt = _arms()
    assert np.concatenate([pc, pt]).std(0)[3] > 0  # the case: float noise on the 6-column array, not 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in divide" on the way
        got = stats.cuped_test(c, t, pc, pt, "plays", 0.05)
    varying = [0, 2, 4, 5]
    want = stats.cuped_test(c, t, pc[:, varying], pt[:, varying], "plays", 0.05)
    assert np.isfinite([got.delta, got.p_value, got.ci_low, got.ci_high]).all()
    assert (got.delta, got.p_value, got.ci_low, got.ci_high) == pytest.approx(
        (want.delta, want.p_value, want.ci_low, want.ci_high), rel=1e-9)


def test_cuped_adjustment_ignores_a_constant_covariate_with_rounding_noise_sd():
    c, t, pc, pt = _arms(seed=1)
    ac, at, removed = stats.cuped(c, t, pc, pt)
    varying = [0, 2, 4, 5]
    bc, bt, want = stats.cuped(c, t, pc[:, varying], pt[:, varying])
    assert np.allclose(ac, bc) and np.allclose(at, bt) and removed == pytest.approx(want)


def test_cuped_test_turns_a_failed_fit_into_an_edgerec_error(monkeypatch):
    c, t, pc, pt = _arms(seed=2)

    def no_convergence(*_a, **_k):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(stats.np.linalg, "pinv", no_convergence)
    with pytest.raises(EdgerecError, match="without CUPED"):
        stats.cuped_test(c, t, pc, pt, "plays", 0.05)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from jitrl.method.config import PolicyConfig
from jitrl.method.policy import corrected_logits, select, softmax


def kl_objective_optimum(pi0, adv, beta):
    """Maximise E_pi[A] - beta KL(pi || pi0) numerically over the simplex (softmax param.).

    The gradient is exact: with finite differences BFGS stalls near a vertex of the simplex,
    where the small probabilities' gradients fall below any usable step.
    """

    def neg(theta):
        pi = softmax(theta)
        logpi = theta - theta.max() - np.log(np.exp(theta - theta.max()).sum())
        grad_pi = adv - beta * (logpi - np.log(pi0) + 1.0)
        value = pi @ adv - beta * np.sum(pi * (logpi - np.log(pi0)))
        return -value, -(pi * (grad_pi - pi @ grad_pi))

    res = minimize(
        neg, np.zeros_like(pi0), jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 5000}
    )
    return softmax(res.x)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 8), st.floats(0.05, 5.0), st.integers(0, 10_000))
def test_closed_form_matches_numerical_optimiser(n, beta, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    adv = rng.normal(0, 1, n)
    pi0 = softmax(z)
    closed = softmax(corrected_logits(z, adv, beta))
    numeric = kl_objective_optimum(pi0, adv, beta)
    assert np.allclose(closed, numeric, atol=1e-5)

    # and it is at least as good as the optimiser's answer for the objective
    def obj(pi):
        return pi @ adv - beta * np.sum(pi * (np.log(pi) - np.log(pi0)))

    assert obj(closed) >= obj(numeric) - 1e-9


def test_limits_of_beta():
    z = np.array([0.0, 1.0, -1.0])
    adv = np.array([1.0, -1.0, 0.0])
    assert np.allclose(softmax(corrected_logits(z, adv, 1e9)), softmax(z))
    assert np.argmax(corrected_logits(z, adv, 1e-6)) == 0


def test_update_is_on_logits_not_probabilities():
    z = np.log(np.array([0.7, 0.2, 0.1]))
    adv = np.array([0.0, 1.0, 0.0])
    got = softmax(corrected_logits(z, adv, 1.0))
    want = np.array([0.7, 0.2 * np.e, 0.1]) / (0.7 + 0.2 * np.e + 0.1)
    assert np.allclose(got, want)


def test_greedy_and_seeded_sampling():
    logits = [0.0, 2.0, 1.0]
    idx, probs = select(logits, PolicyConfig(selection="greedy"), np.random.default_rng(0))
    assert idx == 1 and probs.sum() == pytest.approx(1.0)
    cfg = PolicyConfig(selection="sample", temperature=1.0)
    a = [select(logits, cfg, np.random.default_rng(7))[0] for _ in range(3)]
    b = [select(logits, cfg, np.random.default_rng(7))[0] for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(1)
    draws = np.bincount([select(logits, cfg, rng)[0] for _ in range(4000)], minlength=3) / 4000
    assert np.allclose(draws, softmax(logits), atol=0.03)


def test_errors():
    with pytest.raises(ValueError):
        corrected_logits([0.0, 1.0], [1.0], 1.0)
    with pytest.raises(ValueError):
        PolicyConfig(beta=0.0)
    with pytest.raises(ValueError):
        softmax([])


def test_greedy_ties_are_broken_at_random_but_seeded() -> None:
    import numpy as np

    from jitrl.method.config import PolicyConfig
    from jitrl.method.policy import select

    cfg = PolicyConfig(selection="greedy", tie_break="random")
    picks = {select([1.0, 1.0, 0.0, 1.0], cfg, np.random.default_rng(s))[0] for s in range(40)}
    assert picks == {0, 1, 3}  # only the maxima, each of them sometimes
    again = [select([1.0, 1.0], cfg, np.random.default_rng(7))[0] for _ in range(3)]
    assert len(set(again)) == 1
    first = PolicyConfig(selection="greedy", tie_break="first")
    assert {select([1.0, 1.0], first, np.random.default_rng(s))[0] for s in range(10)} == {0}

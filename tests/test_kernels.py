"""The Cython kernels against a plain numpy implementation of the same math.

The numpy reference draws the very same random numbers (``uniform_array`` /
``normal_array`` rebuild what the counter-based generator gives a kernel), so
one CD step must agree to rounding. Tolerances: float64 results differ only
in summation order (inner dimensions <= 2m = 20), so 1e-10 is loose; float32
products carry ~1e-7 relative error per term, and the weights (|W| ~ 0.1-1)
after one step agree to 2e-5.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from threadpoolctl import threadpool_limits

from kernel_helpers import box_muller, cd_step, exp_array, normal_array
from skdbn._kernels import _inference, _up_down
from skdbn._kernels._random import batch_key, uniform_array

TOL = {np.float32: dict(rtol=1e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def reference_cd_step(W, b, c, W_inc, b_inc, c_inc, sigma, X, chain, hid_mean, *,
                      cd_k, persistent, sample_visible, learning_rate, momentum,
                      weight_decay, sparsity_target, sparsity_cost,
                      sigma_learning_rate, sigma_min, learn_sigma, key):
    """Textbook CD-k / PCD step (report §1.4, §1.4.3) in numpy, in place."""
    dtype = W.dtype.type
    m = X.shape[0]
    H, V = W.shape
    gaussian = sigma.size > 0

    def uniform(stream, n):
        return uniform_array(key, stream, m, n, dtype)

    u0 = X / sigma if gaussian else X.copy()
    p0 = expit(u0 @ W.T + c)
    h = chain[:m] if persistent else (uniform(0, H) < p0).astype(dtype)
    err = None
    for t in range(1, cd_k + 1):
        a = h @ W
        if gaussian:
            v = a + b / sigma
            if sample_visible:
                v = v + normal_array(key, 2 * t - 1, m, V).astype(dtype)
        else:
            v = expit(a + b)
            if sample_visible:
                v = (uniform(2 * t - 1, V) < v).astype(dtype)
        if t == 1:
            diff = (u0 - v) * sigma if gaussian else u0 - v
            err = float(np.sum(diff.astype(np.float64) ** 2))
        pk = expit(v @ W.T + c)
        if persistent or t < cd_k:
            h = (uniform(2 * t, H) < pk).astype(dtype)
    chain[:m] = h

    if sparsity_cost > 0:
        hid_mean[:] = 0.9 * hid_mean + 0.1 * p0.mean(axis=0)
        p0 = p0 - sparsity_cost * (hid_mean - sparsity_target)

    G = p0.T @ u0 - pk.T @ v
    gh = p0.sum(0) - pk.sum(0)
    gv = u0.sum(0) - v.sum(0)
    if gaussian:
        gv = gv / sigma
    alpha = learning_rate / m
    if learn_sigma:
        mu = b / sigma
        s = ((u0 - mu) ** 2 - (v - mu) ** 2).sum(0) - (W * G).sum(0)
        if not sample_visible:
            s = s - m  # E[(v - mu)^2 | h] of a unit-variance Gaussian in u-space
    W_inc[:] = momentum * W_inc + alpha * G - learning_rate * weight_decay * W
    W += W_inc
    c_inc[:] = momentum * c_inc + alpha * gh
    c += c_inc
    b_inc[:] = momentum * b_inc + alpha * gv
    b += b_inc
    if learn_sigma:
        sigma[:] = np.maximum(sigma + sigma_learning_rate * s / (sigma * m), sigma_min)
    return err


def make_state(dtype, gaussian, m=10, V=13, H=7, seed=0):
    rng = np.random.RandomState(seed)
    W = rng.normal(0, 0.3, (H, V)).astype(dtype)
    b = rng.normal(0, 0.1, V).astype(dtype)
    c = rng.normal(0, 0.1, H).astype(dtype)
    W_inc = rng.normal(0, 0.01, (H, V)).astype(dtype)
    b_inc = rng.normal(0, 0.01, V).astype(dtype)
    c_inc = rng.normal(0, 0.01, H).astype(dtype)
    if gaussian:
        sigma = rng.uniform(0.5, 1.5, V).astype(dtype)
        X = rng.normal(0.2, 1.0, (m, V)).astype(dtype)
    else:
        sigma = np.zeros(0, dtype)
        X = (rng.uniform(size=(m, V)) < 0.4).astype(dtype)
        X[:, 0] = 0.5  # a probability, not only 0/1
    chain = (rng.uniform(size=(m, H)) < 0.5).astype(dtype)
    hid_mean = rng.uniform(0.05, 0.3, H).astype(dtype)
    return dict(W=W, b=b, c=c, W_inc=W_inc, b_inc=b_inc, c_inc=c_inc, sigma=sigma,
                X=X, chain=chain, hid_mean=hid_mean)


CASES = {
    "cd1": dict(),
    "cd3": dict(cd_k=3),
    "pcd": dict(persistent=True),
    "pcd2-mean-field": dict(persistent=True, cd_k=2, sample_visible=False),
    "momentum-decay": dict(momentum=0.7, weight_decay=0.01),
    "sparsity": dict(sparsity_cost=0.5, sparsity_target=0.05),
    "all": dict(cd_k=2, momentum=0.5, weight_decay=0.001, sparsity_cost=0.2),
}


def run_both(dtype, gaussian, params, learn_sigma=False, n_threads=2, shape=(10, 13, 7)):
    defaults = dict(cd_k=1, persistent=False, sample_visible=True, learning_rate=0.1,
                    momentum=0.0, weight_decay=0.0, sparsity_target=0.1,
                    sparsity_cost=0.0, sigma_learning_rate=0.05 if learn_sigma else 0.0,
                    sigma_min=1e-3, key=batch_key(7, 3, 11))
    kw = {**defaults, **params}
    ref = make_state(dtype, gaussian, *shape)
    ker = {k: v.copy() for k, v in ref.items()}
    m, (H, V) = ref["X"].shape[0], ref["W"].shape
    ref_err = reference_cd_step(
        ref["W"], ref["b"], ref["c"], ref["W_inc"], ref["b_inc"], ref["c_inc"],
        ref["sigma"], ref["X"], ref["chain"], ref["hid_mean"], learn_sigma=learn_sigma,
        **kw)
    vis = np.empty((2 * m, V), dtype)
    vis[:m] = ker["X"]
    # The kernel stores the hidden layer unit by unit (transposed).
    hid = np.empty((H, 2 * m), dtype)
    chain = np.ascontiguousarray(ker["chain"].T)
    grad = np.empty((H, V) if learn_sigma else (0, 0), dtype)
    hid_mean = ker["hid_mean"] if kw["sparsity_cost"] > 0 else np.zeros(0, dtype)
    with threadpool_limits(limits=1, user_api="blas"):
        ker_err = cd_step(
            ker["W"], ker["b"], ker["c"], ker["W_inc"], ker["b_inc"], ker["c_inc"],
            ker["sigma"], vis, hid, chain, hid_mean, grad, m,
            n_threads=n_threads, **kw)
    ker["chain"] = chain.T
    return ref, ref_err, ker, ker_err, kw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gaussian", [False, True], ids=["bernoulli", "gaussian"])
@pytest.mark.parametrize("case", list(CASES))
def test_cd_step_matches_numpy(dtype, gaussian, case):
    ref, ref_err, ker, ker_err, kw = run_both(dtype, gaussian, CASES[case])
    tol = TOL[dtype]
    for name in ("W", "b", "c", "b_inc", "c_inc", "hid_mean"):
        assert_allclose(ker[name], ref[name], err_msg=name, **tol)
    if kw["momentum"] or kw["weight_decay"]:
        assert_allclose(ker["W_inc"], ref["W_inc"], **tol)
    assert_array_equal(ker["chain"], ref["chain"])
    assert ker_err == pytest.approx(ref_err, rel=tol["rtol"] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params", [dict(), dict(momentum=0.5, cd_k=2), dict(sample_visible=False)]
)
def test_cd_step_learned_sigma_matches_numpy(dtype, params):
    ref, _, ker, _, _ = run_both(dtype, True, params, learn_sigma=True)
    assert not np.allclose(ref["sigma"], make_state(dtype, True)["sigma"])
    for name in ("W", "b", "c", "sigma", "W_inc"):
        assert_allclose(ker[name], ref[name], err_msg=name, **TOL[dtype])


@pytest.mark.parametrize("gaussian", [False, True])
def test_cd_step_same_result_for_any_thread_count(gaussian):
    # Large enough (100 x 150 x 120) that the kernel really uses 3 threads.
    results = [
        run_both(np.float64, gaussian, CASES["all"], n_threads=n, shape=(100, 150, 120))[2]
        for n in (1, 2, 3)
    ]
    for other in results[1:]:
        assert_array_equal(other["chain"], results[0]["chain"])
        assert_allclose(other["W"], results[0]["W"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conditionals_match_numpy(dtype):
    rng = np.random.RandomState(1)
    W = rng.normal(0, 1, (9, 6)).astype(dtype)
    b = rng.normal(0, 1, 6).astype(dtype)
    c = rng.normal(0, 1, 9).astype(dtype)
    sigma = rng.uniform(0.5, 2, 6).astype(dtype)
    U = rng.normal(0, 1, (11, 6)).astype(dtype)
    Hs = (rng.uniform(size=(11, 9)) < 0.5).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    with threadpool_limits(limits=1, user_api="blas"):
        p = np.empty((11, 9), dtype)
        s = np.empty((11, 9), dtype)
        _inference.hidden_given_visible(U, W, c, p, s, (5, 2), n_threads=2)
        assert_allclose(p, expit(U @ W.T + c), **tol)
        assert_array_equal(s, uniform_array(5, 2, 11, 9, dtype) < p)

        v = np.empty((11, 6), dtype)
        _inference.visible_given_hidden(Hs, W, b, np.zeros(0, dtype), v, n_threads=2)
        assert_allclose(v, expit(Hs @ W + b), **tol)
        _inference.visible_given_hidden(Hs, W, b, sigma, v, (3, 1))
        expected = b + sigma * (Hs @ W) + sigma * normal_array(3, 1, 11, 6)
        assert_allclose(v, expected, **tol)

        f = np.empty(11, dtype)
        _inference.hidden_free_energy(U, W, c, f, n_threads=2)
        assert_allclose(f, np.logaddexp(0, U @ W.T + c).sum(1), **tol)


def test_sigmoid_saturates_and_propagates_nan():
    W = np.array([[1.0]], np.float32)
    out = np.empty((4, 1), np.float32)
    U = np.array([[-1e4], [1e4], [np.inf], [np.nan]], np.float32)
    _inference.hidden_given_visible(U, W, np.zeros(1, np.float32), out)
    assert out[0, 0] == pytest.approx(0, abs=1e-30)
    assert out[1, 0] == 1 and out[2, 0] == 1
    assert np.isnan(out[3, 0])


def test_fast_expf_accuracy():
    # The float32 sigmoid uses a polynomial exp; check it against float64.
    x = np.linspace(-80, 80, 200_001).astype(np.float32)
    out = np.empty((x.size, 1), np.float32)
    _inference.hidden_given_visible(x[:, None], np.ones((1, 1), np.float32),
                                    np.zeros(1, np.float32), out)
    exact = expit(x.astype(np.float64))
    assert np.max(np.abs(out[:, 0] - exact) / exact) < 4e-7


def test_fast_exp_accuracy():
    # The Replicated Softmax's double-precision softmax uses a Pade exp:
    # within 2 ulp of libm's over the range, exact at 0, NaN kept, and the
    # clamped ends finite.
    x = np.concatenate([np.linspace(-708, 709, 400_001),
                        np.random.RandomState(0).uniform(-1, 1, 100_000)])
    out = exp_array(x)
    ulp = np.abs(out - np.exp(x)) / np.spacing(np.exp(x))
    assert ulp.max() <= 2
    assert exp_array(np.array([0.0]))[0] == 1.0
    edge = exp_array(np.array([np.nan, -1e4, 1e4]))
    assert np.isnan(edge[0]) and 0 < edge[1] < 1e-307 and np.isfinite(edge[2])


def test_random_numbers_are_uniform_and_normal():
    u = uniform_array(batch_key(1, 2, 3), 0, 1000, 500)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 3e-3 and abs(u.var() - 1 / 12) < 1e-3
    # Neighbouring rows and streams are not correlated.
    u2 = uniform_array(batch_key(1, 2, 3), 1, 1000, 500)
    assert abs(np.corrcoef(u.ravel(), u2.ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 0.01
    n = normal_array(9, 0, 1000, 200)
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01
    assert batch_key(1, 2, 3) != batch_key(1, 2, 4) != batch_key(1, 3, 3)


def test_normal_transform_matches_libm():
    # The kernels' Box-Muller runs on polynomials (so that it vectorises):
    # it must agree with sqrt(-2 log u1) cos(2 pi u2) in double precision
    # on the same uniforms, to a few float ulps of the result (atol covers
    # draws near 0, where cos or the square root has a small argument).
    rng = np.random.default_rng(0)
    h1 = rng.integers(0, 2**32, 10**6, dtype=np.uint32)
    h2 = rng.integers(0, 2**32, 10**6, dtype=np.uint32)
    edges = np.array([0, 1, 2**32 - 1, 2**31, 2**8 - 1, 2**24], dtype=np.uint32)
    h1 = np.concatenate([h1, edges, np.repeat(edges, edges.size)])
    h2 = np.concatenate([h2, edges[::-1], np.tile(edges, edges.size)])
    got = box_muller(h1, h2)
    assert got.dtype == np.float32
    u1 = ((h1 >> 2) + 1).astype(np.float32).astype(np.float64) * 2.0**-30
    u2 = (h2 >> 8).astype(np.float64) * 2.0**-24
    exact = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    assert_allclose(got, exact, rtol=2e-6, atol=2e-6)
    assert np.abs(got).max() <= np.sqrt(-2 * np.log(2.0**-30)) + 1e-5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_add_outer_matches_numpy(dtype, n_threads):
    # The delta rule of up-down fine-tuning: W += alpha * A.T @ B.
    rng = np.random.RandomState(0)
    A, B = rng.normal(size=(17, 40)).astype(dtype), rng.normal(size=(17, 300)).astype(dtype)
    W = rng.normal(size=(40, 300)).astype(dtype)
    expected = W + 0.3 * A.T @ B
    with threadpool_limits(limits=1, user_api="blas"):
        _up_down.add_outer(W, A, B, 0.3, n_threads)
    assert_allclose(W, expected, **TOL[dtype])
    with pytest.raises(ValueError, match="inconsistent shapes"):
        _up_down.add_outer(W, A, np.ascontiguousarray(B[:, :10]), 0.3, n_threads)

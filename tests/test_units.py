"""Unit types: every visible x hidden combination against plain numpy.

The numpy references draw the very same random numbers as the kernels
(``uniform_array`` / ``normal_array``), so one CD step agrees to rounding.
Free energies are checked against the unnormalised marginal computed by
brute force (enumeration, or numerical integration over Gaussian units),
partition functions against AIS and the same brute force.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, logsumexp
from threadpoolctl import threadpool_limits

from skdbn import BernoulliRBM, DBNTransformer, GaussianBernoulliRBM
from kernel_helpers import cd_step, normal_array
from skdbn._kernels import UNIT_CODES, _distributed, _inference
from skdbn._kernels._random import batch_key, uniform_array
from skdbn.metrics import log_likelihood, log_partition_ais, log_partition_exact

HIDDEN_UNITS = ["bernoulli", "gaussian", "nrelu"]
# Hidden types with an exact free energy, which skdbn.metrics accepts.
EXACT_UNITS = ["bernoulli", "gaussian"]
TOL = {np.float32: dict(rtol=1e-4, atol=5e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


# -- numpy definitions of the unit types ------------------------------------

def hidden_mean(unit, x):
    if unit == "gaussian":
        return x
    if unit == "nrelu":
        return np.maximum(x, 0)
    return expit(x)


def hidden_sample(unit, x, key, stream):
    m, n = x.shape
    dtype = x.dtype
    if unit == "gaussian":
        return x + normal_array(key, stream, m, n).astype(dtype)
    if unit == "nrelu":
        noise = np.sqrt(expit(x).astype(np.float64)) * normal_array(key, stream, m, n)
        return np.maximum(x + noise.astype(dtype), 0)
    return (uniform_array(key, stream, m, n, dtype) < expit(x)).astype(dtype)


def hidden_term(unit, x):
    """log sum_h exp(x h - e(h)) for one hidden unit, by its definition."""
    if unit == "gaussian":
        return 0.5 * x**2 + HALF_LOG_2PI
    if unit == "nrelu":
        # Stepped sigmoid units: copies with biases offset by -0.5, -1.5, ...
        n = np.arange(1, 400)
        return np.logaddexp(0, x[..., None] - n + 0.5).sum(-1)
    return np.logaddexp(0, x)


def reference_cd_step(state, unit, *, cd_k, persistent, learning_rate, momentum, key):
    """Textbook CD-k / PCD in numpy for any hidden unit type, in place."""
    W, b, c, sigma, X = state["W"], state["b"], state["c"], state["sigma"], state["X"]
    m = X.shape[0]
    gaussian_vis = sigma.size > 0
    dtype = W.dtype
    u0 = X / sigma if gaussian_vis else X.copy()
    x0 = u0 @ W.T + c
    p0 = hidden_mean(unit, x0)
    h = state["chain"] if persistent else hidden_sample(unit, x0, key, 0)
    for t in range(1, cd_k + 1):
        a = h @ W
        if gaussian_vis:
            v = a + b / sigma + normal_array(key, 2 * t - 1, m, a.shape[1]).astype(dtype)
        else:
            v = (uniform_array(key, 2 * t - 1, m, a.shape[1], dtype)
                 < expit(a + b)).astype(dtype)
        xk = v @ W.T + c
        pk = hidden_mean(unit, xk)
        if persistent or t < cd_k:
            h = hidden_sample(unit, xk, key, 2 * t)
    state["chain"] = h
    alpha = learning_rate / m
    gv = u0.sum(0) - v.sum(0)
    if gaussian_vis:
        gv = gv / sigma
    state["W_inc"] = momentum * state["W_inc"] + alpha * (p0.T @ u0 - pk.T @ v)
    W += state["W_inc"]
    state["c_inc"] = momentum * state["c_inc"] + alpha * (p0.sum(0) - pk.sum(0))
    c += state["c_inc"]
    state["b_inc"] = momentum * state["b_inc"] + alpha * gv
    b += state["b_inc"]


def make_state(dtype, gaussian_vis, unit, m=10, V=9, H=6, seed=0):
    rng = np.random.RandomState(seed)
    state = dict(
        W=rng.normal(0, 0.3, (H, V)), b=rng.normal(0, 0.1, V), c=rng.normal(0, 0.1, H),
        W_inc=rng.normal(0, 0.01, (H, V)), b_inc=rng.normal(0, 0.01, V),
        c_inc=rng.normal(0, 0.01, H),
        sigma=rng.uniform(0.5, 1.5, V) if gaussian_vis else np.zeros(0),
        X=rng.normal(0.2, 1, (m, V)) if gaussian_vis else (rng.uniform(size=(m, V)) < 0.4),
        chain=(rng.uniform(size=(m, H)) < 0.5) if unit == "bernoulli"
        else rng.normal(0, 1, (m, H)),
    )
    return {k: np.asarray(v, dtype=dtype) for k, v in state.items()}


CASES = {
    "cd1": dict(),
    "cd2-momentum": dict(cd_k=2, momentum=0.6),
    "pcd": dict(persistent=True),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("hidden", HIDDEN_UNITS)
@pytest.mark.parametrize("case", list(CASES))
def test_cd_step_every_unit_matches_numpy(dtype, visible, hidden, case):
    kw = {**dict(cd_k=1, persistent=False, learning_rate=0.1, momentum=0.0,
                 key=batch_key(5, 2, 9)), **CASES[case]}
    ref = make_state(dtype, visible == "gaussian", hidden)
    ker = {k: v.copy() for k, v in ref.items()}
    reference_cd_step(ref, hidden, **kw)
    m, (H, V) = ker["X"].shape[0], ker["W"].shape
    vis = np.empty((2 * m, V), dtype)
    vis[:m] = ker["X"]
    chain = np.ascontiguousarray(ker["chain"].T)
    with threadpool_limits(limits=1, user_api="blas"):
        cd_step(ker["W"], ker["b"], ker["c"], ker["W_inc"], ker["b_inc"], ker["c_inc"],
                ker["sigma"], vis, np.empty((H, 2 * m), dtype), chain,
                np.zeros(0, dtype), np.empty((0, 0), dtype), m, n_threads=2,
                hidden_unit=UNIT_CODES[hidden], **kw)
    # W_inc is only kept with momentum (else the update goes straight into W).
    names = ("W", "b", "c", "b_inc", "c_inc") + (("W_inc",) if kw["momentum"] else ())
    for name in names:
        assert_allclose(ker[name], ref[name], err_msg=name, **TOL[dtype])
    if hidden == "bernoulli":
        assert_array_equal(chain.T, ref["chain"])
    else:
        assert_allclose(chain.T, ref["chain"], **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", HIDDEN_UNITS)
def test_conditionals_and_free_energy_terms_match_numpy(dtype, hidden):
    rng = np.random.RandomState(1)
    W = rng.normal(0, 1, (7, 5)).astype(dtype)
    c = rng.normal(0, 1, 7).astype(dtype)
    U = rng.normal(0, 1, (300, 5)).astype(dtype)  # more rows than a key chunk
    x = U @ W.T + c
    code = UNIT_CODES[hidden]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
    with threadpool_limits(limits=1, user_api="blas"):
        p = np.empty_like(x)
        s = np.empty_like(x)
        _inference.hidden_given_visible(U, W, c, p, s, (4, 3), n_threads=2, hidden_unit=code)
        assert_allclose(p, hidden_mean(hidden, x), **tol)
        expected = hidden_sample(hidden, x, 4, 3)
        if hidden == "bernoulli":
            assert_array_equal(s, expected)
        else:
            assert_allclose(s, expected, **tol)
        # The distributed slices' version of the same conditional.
        act = (U @ W.T).astype(dtype)
        s2 = np.empty_like(x)
        _distributed.hidden_from_input(act, c, samples=s2, draw=(4, 3), hidden_unit=code)
        assert_allclose(act, p, **tol)
        assert_allclose(s2, s, **tol)
        f = np.empty(300, dtype)
        _inference.hidden_free_energy(U, W, c, f, n_threads=2, hidden_unit=code)
        assert_allclose(f, hidden_term(hidden, x.astype(np.float64)).sum(1), **tol)


def test_unit_samples_have_their_distribution():
    """Gaussian hidden samples: mean = input, unit variance."""
    x = np.full((2000, 50), 1.5)
    s = np.empty_like(x)
    with threadpool_limits(limits=1, user_api="blas"):
        _distributed.hidden_from_input(x.copy(), np.zeros(50), samples=s, draw=(8, 0),
                                       hidden_unit=UNIT_CODES["gaussian"])
    assert abs(s.mean() - 1.5) < 0.01
    assert abs(s.std() - 1.0) < 0.01


# -- free energy against brute force ------------------------------------------

def _small_model(cls, hidden, V=3, H=2, seed=0, scale=0.5, **kw):
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(20, V)) < 0.5 if cls is BernoulliRBM else rng.normal(size=(20, V))
    rbm = cls(n_components=H, n_iter=0, hidden_units=hidden, **kw).fit(X.astype(float))
    rbm.components_[:] = rng.normal(0, scale, (H, V))
    rbm.intercept_hidden_[:] = rng.normal(0, 0.5, H)
    rbm.intercept_visible_[:] = rng.normal(0, 0.5, V)
    return rbm


def _grid(n=801, lim=12.0):
    g = np.linspace(-lim, lim, n)
    return g, g[1] - g[0]


def _log_marginal_over_hidden(rbm, v):
    """log sum/integral over h of exp(-E(v, h)), by enumeration / quadrature."""
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    sigma = getattr(rbm, "sigma_", None)
    if sigma is None:
        visible = v @ b
        u = v
    else:
        visible = -0.5 * np.sum(((v - b) / sigma) ** 2)
        u = v / sigma
    x = W @ u + c
    total = visible
    for xj in x:  # the hidden units are independent given v
        if rbm.hidden_units == "bernoulli":
            total += logsumexp([0.0, xj])
        elif rbm.hidden_units == "nrelu":
            # Enumerate the on/off states of 14 stepped copies (the rest are
            # negligible for |x| < 5): 2**14 joint states.
            offsets = np.arange(1, 15) - 0.5
            states = (np.arange(2**14)[:, None] >> np.arange(14)) & 1
            total += logsumexp(states @ (xj - offsets))
        else:
            g, dh = _grid()
            total += logsumexp(xj * g - 0.5 * g**2) + np.log(dh)
    return total


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
@pytest.mark.parametrize("hidden", HIDDEN_UNITS)
def test_free_energy_is_minus_log_unnormalised_marginal(cls, hidden):
    rbm = _small_model(cls, hidden)
    rng = np.random.RandomState(3)
    X = (rng.uniform(size=(5, 3)) < 0.5).astype(float) if cls is BernoulliRBM \
        else rng.normal(size=(5, 3))
    expected = [-_log_marginal_over_hidden(rbm, v) for v in X]
    # NReLU: 14 enumerated copies leave out terms below e^-9.
    atol = 1e-3 if hidden == "nrelu" else 1e-8
    assert_allclose(rbm.free_energy(X), expected, rtol=1e-8, atol=atol)


def test_nrelu_free_energy_term_for_large_inputs():
    # The closed-form linear part and the geometric tail against the sum.
    x = np.array([-60.0, -3.0, 0.0, 2.5, 40.0, 123.4])
    got = [_inference.hidden_free_term(UNIT_CODES["nrelu"], float(v)) for v in x]
    assert_allclose(got, hidden_term("nrelu", x), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("func", [log_partition_exact, log_partition_ais,
                                  lambda rbm: log_likelihood(rbm, np.zeros((1, 3)))])
def test_metrics_refuse_nrelu(func):
    rbm = _small_model(BernoulliRBM, "nrelu")
    with pytest.raises(ValueError, match="hidden_units='nrelu'.*approximation"):
        func(rbm)


def test_log_partition_exact_gaussian_hidden_by_brute_force():
    # Bernoulli visibles: enumerate v, integrate h numerically.
    rbm = _small_model(BernoulliRBM, "gaussian", V=3, H=2)
    states = ((np.arange(8)[:, None] >> np.arange(3)) & 1).astype(float)
    brute = logsumexp([_log_marginal_over_hidden(rbm, v) for v in states])
    assert log_partition_exact(rbm) == pytest.approx(brute, abs=1e-8)
    # Gaussian visibles and hidden units: a 2-d integral over (v, h).
    rbm = _small_model(GaussianBernoulliRBM, "gaussian", V=1, H=1, sigma=0.8)
    rbm.components_[:] = 0.7  # normalisable: |W| < 1
    g, dv = _grid(1201, 15.0)
    brute = logsumexp([_log_marginal_over_hidden(rbm, np.array([v])) for v in g]) + np.log(dv)
    assert log_partition_exact(rbm) == pytest.approx(brute, abs=1e-6)


def test_log_partition_exact_refuses_an_improper_gaussian_model():
    rbm = _small_model(GaussianBernoulliRBM, "gaussian", V=2, H=2)
    rbm.components_[:] = [[2.0, 0.0], [0.0, 0.1]]
    with pytest.raises(ValueError, match="no finite partition function"):
        log_partition_exact(rbm)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_ais_matches_exact_for_gaussian_hidden(cls):
    rbm = _small_model(cls, "gaussian", V=6, H=4, scale=0.2)
    exact = log_partition_exact(rbm)
    est = log_partition_ais(rbm, n_runs=200, betas=np.linspace(0, 1, 2001),
                            random_state=0, n_jobs=1)
    assert est.lower - 0.05 <= exact <= est.upper + 0.05
    assert est.log_z == pytest.approx(exact, abs=0.05)


@pytest.mark.parametrize("hidden", EXACT_UNITS)
def test_exact_log_likelihood_rises_during_training(hidden):
    rng = np.random.RandomState(0)
    prototypes = rng.uniform(size=(3, 8)) < 0.5
    X = (prototypes[rng.randint(0, 3, 300)] ^ (rng.uniform(size=(300, 8)) < 0.05))
    X = X.astype(float)
    rbm = BernoulliRBM(n_components=4, hidden_units=hidden, learning_rate=0.05,
                       batch_size=10, n_iter=1, persistent=False, random_state=0)
    rbm.fit(X)
    history = [log_likelihood(rbm, X)]
    for _ in range(15):
        rbm.partial_fit(X)
        history.append(log_likelihood(rbm, X))
    assert history[-1] > history[0] + 0.3, history
    assert np.all(np.isfinite(history))


# -- estimators ---------------------------------------------------------------

@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", ["gaussian", "nrelu"])
def test_real_valued_hidden_estimator_methods(cls, dtype, hidden):
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(40, 6)) < 0.5) if cls is BernoulliRBM else rng.normal(size=(40, 6))
    X = X.astype(dtype)
    rbm = cls(n_components=3, hidden_units=hidden, learning_rate=0.01, n_iter=3,
              random_state=0).fit(X)
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    sigma = getattr(rbm, "sigma_", np.ones(6, dtype))
    tol = TOL[dtype]
    h = rbm.transform(X)
    assert h.dtype == dtype
    assert_allclose(h, hidden_mean(hidden, (X / sigma) @ W.T + c), **tol)
    rec = rbm.reconstruct(X)
    if cls is BernoulliRBM:
        assert_allclose(rec, expit(h @ W + b), **tol)
    else:
        assert_allclose(rec, b + sigma * (h @ W), **tol)
    v = rbm.gibbs(X)
    assert v.shape == X.shape and np.all(np.isfinite(v))
    # The same random_state gives the same model.
    again = cls(n_components=3, hidden_units=hidden, learning_rate=0.01, n_iter=3,
                random_state=0).fit(X)
    assert_array_equal(again.components_, rbm.components_)


def test_hidden_units_is_validated():
    with pytest.raises(ValueError, match="hidden_units"):
        BernoulliRBM(hidden_units="linear").fit(np.zeros((2, 2)))


def test_dbn_with_gaussian_code_layer():
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(60, 10)) < 0.3).astype(np.float64)
    dbn = DBNTransformer(hidden_layer_sizes=(6, 2), hidden_units=["bernoulli", "gaussian"],
                         n_iter=2, learning_rate=[0.05, 0.01], up_down_iter=1,
                         random_state=0).fit(X)
    bottom, top = dbn.rbms_
    assert bottom.hidden_units == "bernoulli" and top.hidden_units == "gaussian"
    assert isinstance(top, BernoulliRBM)
    codes = dbn.transform(X)
    assert_allclose(codes, top.transform(bottom.transform(X)), rtol=1e-12)
    assert dbn.inverse_transform(codes).shape == X.shape
    assert dbn.sample(3, n_gibbs=5, random_state=0).shape == (3, 10)
    # Above a layer of Gaussian hidden units the next RBM's visibles are Gaussian.
    dbn = DBNTransformer(hidden_layer_sizes=(5, 3), hidden_units=["gaussian", "bernoulli"],
                         n_iter=1, learning_rate=0.01, random_state=0).fit(X)
    assert isinstance(dbn.rbms_[1], GaussianBernoulliRBM)
    assert_allclose(dbn.rbms_[1].sigma_, 1.0)


# -- softmax groups of visible units ----------------------------------------

GROUPS = [(2, 5), (6, 9)]


def softmax_visible(x, groups, key, stream, sample):
    """Bernoulli visibles with softmax ``groups``: the mean, or the kernel's
    draw (one uniform per group at its first column, inverse CDF)."""
    m, V = x.shape
    u = uniform_array(key, stream, m, V, x.dtype)
    p = expit(x)
    out = (u < p).astype(x.dtype) if sample else p
    for g0, g1 in groups:
        x64 = x[:, g0:g1].astype(np.float64)
        e = np.exp(x64 - x64.max(1, keepdims=True)).astype(x.dtype).astype(np.float64)
        q = (e / np.exp(x64 - x64.max(1, keepdims=True)).sum(1, keepdims=True))
        q = q.astype(x.dtype)
        if not sample:
            out[:, g0:g1] = q
            continue
        below = u[:, g0:g0 + 1] < np.cumsum(q[:, :-1].astype(np.float64), axis=1)
        chosen = np.where(below.any(1), below.argmax(1), g1 - g0 - 1)
        out[:, g0:g1] = np.eye(g1 - g0, dtype=x.dtype)[chosen]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("persistent", [False, True], ids=["cd1", "pcd"])
def test_cd_step_softmax_groups_matches_numpy(dtype, hidden, persistent):
    key = batch_key(3, 1, 4)
    ref = make_state(dtype, False, hidden)
    for g0, g1 in GROUPS:  # one-hot data in the groups
        ref["X"][:, g0:g1] = np.eye(g1 - g0, dtype=dtype)[np.arange(10) % (g1 - g0)]
    ker = {k: v.copy() for k, v in ref.items()}
    W, b, c, X = ref["W"], ref["b"], ref["c"], ref["X"]
    m, (H, V) = X.shape[0], W.shape
    x0 = X @ W.T + c
    p0 = hidden_mean(hidden, x0)
    h = ref["chain"] if persistent else hidden_sample(hidden, x0, key, 0)
    v = softmax_visible(h @ W + b, GROUPS, key, 1, sample=True)
    xk = v @ W.T + c
    pk = hidden_mean(hidden, xk)
    chain_ref = hidden_sample(hidden, xk, key, 2) if persistent else None
    alpha = 0.1 / m
    W_ref = W + alpha * (p0.T @ X - pk.T @ v)
    b_ref = b + alpha * (X.sum(0) - v.sum(0))

    vis = np.empty((2 * m, V), dtype)
    vis[:m] = ker["X"]
    chain = np.ascontiguousarray(ker["chain"].T)
    groups = np.array(GROUPS, dtype=np.intp)
    with threadpool_limits(limits=1, user_api="blas"):
        err = cd_step(ker["W"], ker["b"], ker["c"], ker["W_inc"], ker["b_inc"],
                      ker["c_inc"], ker["sigma"], vis, np.empty((H, 2 * m), dtype),
                      chain, np.zeros(0, dtype), np.empty((0, 0), dtype), m,
                      persistent=persistent, learning_rate=0.1, key=key, n_threads=2,
                      hidden_unit=UNIT_CODES[hidden], groups=groups)
    assert_allclose(vis[m:], v, **TOL[dtype])
    for g0, g1 in GROUPS:  # one-hot negative visibles
        assert_array_equal(vis[m:, g0:g1].sum(1), 1)
    assert_allclose(ker["W"], W_ref, **TOL[dtype])
    assert_allclose(ker["b"], b_ref, **TOL[dtype])
    assert err == pytest.approx(float(np.sum((X - v).astype(np.float64) ** 2)), rel=1e-4)
    if persistent:
        assert_allclose(chain.T, chain_ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_visible_given_hidden_softmax_groups(dtype):
    rng = np.random.RandomState(2)
    W = rng.normal(0, 1, (5, 9)).astype(dtype)
    b = rng.normal(0, 1, 9).astype(dtype)
    Hs = (rng.uniform(size=(300, 5)) < 0.5).astype(dtype)
    groups = np.array(GROUPS, dtype=np.intp)
    out = np.empty((300, 9), dtype)
    with threadpool_limits(limits=1, user_api="blas"):
        _inference.visible_given_hidden(Hs, W, b, np.zeros(0, dtype), out, n_threads=2,
                                        groups=groups)
        assert_allclose(out, softmax_visible(Hs @ W + b, GROUPS, 0, 0, False),
                        **TOL[dtype])
        _inference.visible_given_hidden(Hs, W, b, np.zeros(0, dtype), out, (6, 1),
                                        n_threads=2, groups=groups)
    assert_allclose(out, softmax_visible(Hs @ W + b, GROUPS, 6, 1, True), **TOL[dtype])


def test_softmax_groups_estimator():
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(50, 9)) < 0.5).astype(float)
    for g0, g1 in GROUPS:
        X[:, g0:g1] = np.eye(g1 - g0)[rng.randint(0, g1 - g0, 50)]
    rbm = BernoulliRBM(n_components=4, n_iter=3, softmax_groups=GROUPS,
                       random_state=0).fit(X)
    v = rbm.gibbs(X)
    rec = rbm.reconstruct(X)
    for g0, g1 in GROUPS:
        assert_array_equal(v[:, g0:g1].sum(1), 1)
        assert_allclose(rec[:, g0:g1].sum(1), 1, rtol=1e-12)
    with pytest.raises(ValueError, match="softmax visible groups"):
        log_partition_exact(rbm)
    with pytest.raises(ValueError, match="sorted, disjoint"):
        BernoulliRBM(n_components=4, softmax_groups=[(0, 3), (2, 5)]).fit(X)
    with pytest.raises(ValueError, match="sorted, disjoint"):
        BernoulliRBM(n_components=4, softmax_groups=[(7, 12)]).fit(X)


def test_unknown_unit_code_raises_in_every_kernel():
    from kernel_helpers import STEP_DEFAULTS
    from skdbn._kernels import _ais, _cd
    from skdbn._state import RBMState

    rng = np.random.RandomState(0)
    W, b, c = rng.normal(0, 1, (3, 4)), np.zeros(4), np.zeros(3)
    U, out = rng.uniform(size=(5, 4)), np.empty((5, 3))
    match = "unknown hidden unit code 7"
    for bad in (7, -1):
        match = f"unknown hidden unit code {bad}"
        with pytest.raises(ValueError, match=match):
            _inference.hidden_given_visible(U, W, c, out, hidden_unit=bad)
        with pytest.raises(ValueError, match=match):
            _inference.hidden_free_energy(U, W, c, np.empty(5), hidden_unit=bad)
        with pytest.raises(ValueError, match=match):
            _inference.hidden_free_term(bad, 0.5)
        with pytest.raises(ValueError, match=match):
            _distributed.hidden_from_input(out, c, hidden_unit=bad)
        with pytest.raises(ValueError, match=match):
            _ais.ais_run(W, b, c, np.zeros(0), b, np.linspace(0, 1, 3), np.empty(2),
                         dict(seed=0, n_threads=1, hidden_unit=bad))
        state = RBMState(W.copy(), b.copy(), c.copy(), np.zeros(0), np.zeros((5, 3), order="F"),
                         seed=0)
        scratch = (np.zeros((10, 4)), np.zeros((3, 10)), np.zeros((0, 0)))
        with pytest.raises(ValueError, match=match):
            _cd.cd_step(state, scratch, 5, {**STEP_DEFAULTS, "hidden_unit": bad})
        assert_array_equal(state.components, W)  # nothing ran


def test_unknown_activation_code_raises_in_the_backprop_kernel():
    from skdbn._kernels import _mlp

    rng = np.random.RandomState(0)
    weights = [rng.normal(0, 1, (3, 4)), rng.normal(0, 1, (2, 3))]
    biases = [np.zeros(3), np.zeros(2)]
    acts = [None, np.empty((5, 3)), np.empty((5, 2))]
    for bad in (3, -1):
        kinds = np.array([0, bad], dtype=np.int32)
        with pytest.raises(ValueError, match=f"unknown activation code {bad}"):
            _mlp.forward(rng.uniform(size=(5, 4)), weights, biases, acts, 1, kinds)

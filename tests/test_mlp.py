"""The MLP kernels against numpy, and PretrainedMLPClassifier / DBNTransformer."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit, softmax
from threadpoolctl import threadpool_limits

from skdbn._kernels import _mlp

TOL = {np.float32: dict(rtol=2e-4, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-13)}


def make_net(sizes, dtype, seed=0):
    rng = np.random.RandomState(seed)
    weights = [rng.normal(0, 0.5, (o, i)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.5, o).astype(dtype) for o in sizes[1:]]
    return weights, biases


def reference_step(X, y, weights, biases, s1, s2, bs1, bs2, *, adam, lr, momentum,
                   alpha, beta1, beta2, eps, step):
    acts = [X]
    for l, (W, b) in enumerate(zip(weights, biases)):
        z = acts[-1] @ W.T + b
        acts.append(softmax(z, axis=1) if l == len(weights) - 1 else expit(z))
    m = X.shape[0]
    P = acts[-1]
    loss = -np.mean(np.log(P[np.arange(m), y]))
    D = P.copy()
    D[np.arange(m), y] -= 1
    D /= m
    if adam:
        lr = lr * np.sqrt(1 - beta2**step) / (1 - beta1**step)
    for l in range(len(weights) - 1, -1, -1):
        W = weights[l]
        G = D.T @ acts[l] + alpha * W
        gb = D.sum(0)
        D_prev = (D @ W) * acts[l] * (1 - acts[l]) if l > 0 else None
        if adam:
            s1[l][:] = beta1 * s1[l] + (1 - beta1) * G
            s2[l][:] = beta2 * s2[l] + (1 - beta2) * G**2
            W -= lr * s1[l] / (np.sqrt(s2[l]) + eps)
            bs1[l][:] = beta1 * bs1[l] + (1 - beta1) * gb
            bs2[l][:] = beta2 * bs2[l] + (1 - beta2) * gb**2
            biases[l] -= lr * bs1[l] / (np.sqrt(bs2[l]) + eps)
        else:
            s1[l][:] = momentum * s1[l] - lr * G
            W += s1[l]
            bs1[l][:] = momentum * bs1[l] - lr * gb
            biases[l] += bs1[l]
        D = D_prev
    return loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("adam", [False, True])
@pytest.mark.parametrize("sizes", [(13, 4), (13, 9, 7, 5)])
def test_train_step_matches_numpy(dtype, adam, sizes):
    m = 11
    rng = np.random.RandomState(1)
    X = rng.uniform(size=(m, sizes[0])).astype(dtype)
    y = rng.randint(0, sizes[-1], m).astype(np.int32)
    kw = dict(adam=adam, lr=0.3, momentum=0.9, alpha=0.01, beta1=0.9, beta2=0.999,
              eps=1e-8, step=3)
    ref_w, ref_b = make_net(sizes, dtype)
    ker_w, ker_b = make_net(sizes, dtype)
    states = []
    for _ in range(2):
        st = [[rng.normal(0, 0.01, W.shape).astype(dtype) for W in ref_w],
              [rng.uniform(0, 0.01, W.shape).astype(dtype) for W in ref_w],
              [rng.normal(0, 0.01, b.shape).astype(dtype) for b in ref_b],
              [rng.uniform(0, 0.01, b.shape).astype(dtype) for b in ref_b]]
        states.append(st)
    ker_states = [[a.copy() for a in group] for group in states[0]]
    ref_loss = reference_step(X, y, ref_w, ref_b, *states[0], **kw)
    acts = [None] + [np.empty((m, n), dtype) for n in sizes[1:]]
    deltas = [None] + [np.empty((m, n), dtype) for n in sizes[1:]]
    grads = [np.empty_like(W) for W in ker_w]
    with threadpool_limits(limits=1, user_api="blas"):
        loss = _mlp.train_step(X, y, ker_w, ker_b, *ker_states, acts, deltas, grads,
                               adam=adam, learning_rate=kw["lr"], momentum=kw["momentum"],
                               alpha=kw["alpha"], step=kw["step"], n_threads=2)
    assert loss == pytest.approx(ref_loss, rel=TOL[dtype]["rtol"])
    for a, b in zip(ker_w + ker_b, ref_w + ref_b):
        assert_allclose(a, b, **TOL[dtype])
    for group_k, group_r in zip(ker_states, states[0]):
        for a, b in zip(group_k, group_r):
            assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_numpy(dtype):
    sizes = (30, 20, 10, 3)
    weights, biases = make_net(sizes, dtype)
    X = np.random.RandomState(0).uniform(size=(50, 30)).astype(dtype)
    acts = [None] + [np.empty((50, n), dtype) for n in sizes[1:]]
    with threadpool_limits(limits=1, user_api="blas"):
        _mlp.forward(X, weights, biases, acts, n_threads=2)
    a = X
    for l, (W, b) in enumerate(zip(weights, biases)):
        z = a @ W.T + b
        a = softmax(z, axis=1) if l == len(weights) - 1 else expit(z)
        assert_allclose(acts[l + 1], a, **TOL[dtype])

"""ReplicatedSoftmaxRBM: the model's math against brute force, its kernel
step against numpy drawing the same random numbers, and what it learns from
a corpus drawn from known topics."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, logsumexp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from kernel_helpers import STEP_DEFAULTS
from skdbn import DistributedFit, ReplicatedSoftmaxRBM
from skdbn._kernels import _inference, driver
from skdbn._kernels._random import batch_key, uniform_array
from skdbn._state import RBMState
from skdbn.metrics import log_partition_exact

# float64: sums of at most a few hundred terms; float32 carries ~1e-7
# relative error per product term, on weights of order 0.1-1.
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def topic_corpus(n_docs, n_topics=4, words_per_topic=10, mean_length=30, seed=0):
    """Documents of one topic each: ~Poisson(mean_length) draws from a topic
    that puts 90 % of its mass on its own words. Returns counts and topics."""
    rng = np.random.RandomState(seed)
    V = n_topics * words_per_topic
    topics = np.full((n_topics, V), 0.1 / (V - words_per_topic))
    for k in range(n_topics):
        topics[k, k * words_per_topic:(k + 1) * words_per_topic] = 0.9 / words_per_topic
    labels = rng.randint(n_topics, size=n_docs)
    lengths = rng.poisson(mean_length, n_docs) + 1
    X = np.array([rng.multinomial(d, topics[k]) for d, k in zip(lengths, labels)], float)
    return X, labels


def tiny_model(dtype=np.float64, H=3, V=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.poisson(1.0, (20, V)).astype(dtype)
    model = ReplicatedSoftmaxRBM(n_components=H, n_iter=0, random_state=0).fit(X)
    model.components_[:] = rng.normal(0, 0.5, (H, V))
    model.intercept_visible_[:] = rng.normal(0, 0.5, V)
    model.intercept_hidden_[:] = rng.normal(0, 0.5, H)
    return model, X


def sequences(V, D):
    """The count vector of every sequence of D words from V."""
    for seq in itertools.product(range(V), repeat=D):
        yield np.bincount(np.array(seq, dtype=int), minlength=V).astype(float)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_free_energy_against_brute_force(dtype):
    model, X = tiny_model(dtype)
    W, b, c = (a.astype(np.float64) for a in
               (model.components_, model.intercept_visible_, model.intercept_hidden_))
    H = W.shape[0]
    expected = []
    for v in X.astype(np.float64):
        D = v.sum()
        # -F(v) = log sum_h exp(-E(v, h)), E = -h W v - b v - D c h.
        expected.append(-logsumexp([h @ W @ v + b @ v + D * (c @ h) for h in
                                    itertools.product([0.0, 1.0], repeat=H)]))
    assert_allclose(model.free_energy(X), expected, **TOL[dtype])
    assert_allclose(model.free_energy(sp.csr_matrix(X)), expected, **TOL[dtype])


@pytest.mark.parametrize("D", [0, 1, 2, 3])
def test_exact_log_partition_against_brute_force(D):
    model, _ = tiny_model()
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    terms = [h @ W @ v + b @ v + D * (c @ h) for v in sequences(4, D)
             for h in map(np.array, itertools.product([0.0, 1.0], repeat=3))]
    assert log_partition_exact(model, length=D) == pytest.approx(logsumexp(terms), rel=1e-12)


def test_log_probabilities_sum_to_one():
    """Every document of length D, weighted by its number of orderings, has
    total probability 1 under score_samples (the sequence probability)."""
    from scipy.special import gammaln

    model, _ = tiny_model()
    D = 3
    docs = np.unique(np.array(list(sequences(4, D))), axis=0)
    orderings = gammaln(D + 1) - gammaln(docs + 1).sum(axis=1)
    assert logsumexp(model.score_samples(docs) + orderings) == pytest.approx(0, abs=1e-10)


def test_log_partition_needs_a_length():
    model, _ = tiny_model()
    with pytest.raises(ValueError, match="length=D"):
        log_partition_exact(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_visible_draws_are_multinomial(dtype):
    """D draws from the softmax: each row sums to D, the mean counts are
    D p within 5 standard errors, and the mean-field mode gives D p."""
    rng = np.random.RandomState(1)
    V, H, n = 6, 3, 4000
    W = rng.normal(0, 1, (H, V)).astype(dtype)
    b = rng.normal(0, 1, V).astype(dtype)
    h = np.tile((rng.uniform(size=H) < 0.5).astype(dtype), (n, 1))
    D = np.full(n, 7, dtype)
    a = h[0].astype(np.float64) @ W + b
    p = np.exp(a - logsumexp(a))
    out = np.empty((n, V), dtype)
    _inference.visible_given_hidden(h, W, b, np.zeros(0, dtype), out, (5, 1), lengths=D)
    assert_array_equal(out.sum(axis=1), D)
    assert np.all(out == np.round(out)) and out.min() >= 0
    se = np.sqrt(7 * p * (1 - p) / n)
    assert np.all(np.abs(out.mean(axis=0) - 7 * p) < 5 * se)
    _inference.visible_given_hidden(h, W, b, np.zeros(0, dtype), out, None, lengths=D)
    assert_allclose(out[0], 7 * p, rtol=1e-5 if dtype == np.float32 else 1e-12)


def reference_draws(P, D, key, stream):
    """numpy's version of the kernel's multinomial draws: the sorted uniforms
    of exponential spacings against the cumulative probabilities."""
    m, V = P.shape
    n = int(D.max()) + 1
    E = -np.log1p(-uniform_array(key, stream, m, n, np.float64))
    out = np.zeros((m, V), P.dtype)
    for i in range(m):
        d = int(D[i])
        x = np.cumsum(E[i, :d]) / E[i, :d + 1].sum()
        cum = np.cumsum(P[i].astype(np.float64))
        idx = np.minimum(np.searchsorted(cum, x, side="right"), V - 1)
        out[i] = np.bincount(idx, minlength=V)
    return out


def reference_step(W, b, c, X, key, cd_k, learning_rate, momentum, W_inc, b_inc, c_inc):
    """CD-k of a Replicated Softmax in numpy (sampled counts), in place."""
    dtype = W.dtype.type
    m, V = X.shape
    H = W.shape[0]
    D = X.sum(axis=1)
    p0 = expit(X @ W.T + D[:, None] * c)
    h = (uniform_array(key, 0, m, H, dtype) < p0).astype(dtype)
    for t in range(1, cd_k + 1):
        a = (h @ W + b).astype(np.float64)
        P = np.exp(a - a.max(axis=1, keepdims=True))
        P = (P / P.sum(axis=1, keepdims=True)).astype(dtype)
        v = reference_draws(P, D, key, 2 * t - 1).astype(dtype)
        if t == 1:
            err = float(np.sum((X - v).astype(np.float64) ** 2))
        pk = expit(v @ W.T + D[:, None] * c)
        if t < cd_k:
            h = (uniform_array(key, 2 * t, m, H, dtype) < pk).astype(dtype)
    alpha = learning_rate / X.sum()  # the gradient per word
    W_inc[:] = momentum * W_inc + alpha * (p0.T @ X - pk.T @ v)
    W += W_inc
    c_inc[:] = momentum * c_inc + alpha * (D[:, None] * (p0 - pk)).sum(axis=0)
    c += c_inc
    b_inc[:] = momentum * b_inc + alpha * (X.sum(axis=0) - v.sum(axis=0))
    b += b_inc
    return err


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cd_k", [1, 2])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_cd_step_matches_numpy(dtype, cd_k, sparse):
    from skdbn._csr import columns
    from skdbn._visible import BERNOULLI

    rng = np.random.RandomState(0)
    m, V, H = 12, 9, 5
    X = rng.poisson(0.8, (m, V)).astype(dtype)
    W = rng.normal(0, 0.3, (H, V)).astype(dtype)
    b = rng.normal(0, 0.3, V).astype(dtype)
    c = rng.normal(0, 0.1, H).astype(dtype)
    incs = [rng.normal(0, 0.01, s).astype(dtype) for s in ((H, V), V, H)]
    key = batch_key(3, 1, 4)
    ref = [a.copy() for a in (W, b, c, *incs)]
    ref_err = reference_step(ref[0], ref[1], ref[2], X, key, cd_k, 0.05, 0.5, *ref[3:])

    state = RBMState(W, b, c, np.zeros(0, dtype), np.zeros((m, H), dtype, order="F"), seed=0,
                     components_inc=incs[0], visible_inc=incs[1], hidden_inc=incs[2])
    vis = np.empty((2 * m, V), dtype)
    vis[:m] = X
    scratch = (vis, np.empty((H, 2 * m), dtype), np.empty((0, 0), dtype))
    data = columns(sp.csr_matrix(X), dtype, BERNOULLI) if sparse else None
    options = {**STEP_DEFAULTS, "cd_k": cd_k, "learning_rate": 0.05, "momentum": 0.5,
               "key": key, "n_threads": 2}
    with threadpool_limits(limits=1, user_api="blas"):
        err = driver("_cd").cd_step(state, scratch, m, options, None, data, X.sum(axis=1))
    assert err == pytest.approx(ref_err, rel=1e-6)
    for got, want in zip((W, b, c, *incs), ref):
        assert_allclose(got, want, **TOL[dtype])


def test_same_model_for_any_n_jobs():
    X, _ = topic_corpus(200)
    fits = [ReplicatedSoftmaxRBM(n_components=8, n_iter=2, random_state=0, n_jobs=n).fit(X)
            for n in (1, 2)]
    assert_array_equal(fits[0].components_, fits[1].components_)


def test_sparse_fit_equals_dense_fit():
    X, _ = topic_corpus(200)
    kw = dict(n_components=8, n_iter=2, random_state=0)
    dense = ReplicatedSoftmaxRBM(**kw).fit(X)
    csr = ReplicatedSoftmaxRBM(**kw).fit(sp.csr_matrix(X))
    assert_allclose(csr.components_, dense.components_, rtol=1e-10, atol=1e-12)
    assert_allclose(csr.transform(sp.csr_matrix(X)), dense.transform(X), rtol=1e-10)


def test_learns_the_topics_of_a_synthetic_corpus():
    """Held-out perplexity (exact) below the unigram model's, and topic
    posteriors that tell the generating topic apart far above chance."""
    X, topic = topic_corpus(1200)
    train, test = slice(0, 1000), slice(1000, None)
    model = ReplicatedSoftmaxRBM(n_components=8, random_state=0).fit(X[train])
    p = (X[train].sum(axis=0) + 1) / (X[train].sum() + X.shape[1])
    unigram = np.exp(-(X[test] @ np.log(p)).sum() / X[test].sum())
    assert model.perplexity(X[test]) < 0.9 * unigram
    features = model.transform(X)
    accuracy = cross_val_score(LogisticRegression(max_iter=1000), features, topic, cv=3).mean()
    assert accuracy > 0.9  # chance: 0.25


def test_count_vectorizer_pipeline_and_grid_search():
    docs = ["the cat sat on the mat", "the dog sat on the log", "cats and dogs",
            "a cat and a dog", "the mat and the log", "dogs chase cats"] * 5
    labels = [0, 1, 0, 1, 0, 1] * 5
    pipe = make_pipeline(CountVectorizer(),
                         ReplicatedSoftmaxRBM(n_components=4, n_iter=3, random_state=0),
                         LogisticRegression())
    search = GridSearchCV(pipe, {"replicatedsoftmaxrbm__learning_rate": [0.01, 0.05]}, cv=2)
    search.fit(docs, labels)
    rbm = search.best_estimator_[1]
    assert rbm.n_features_in_ == len(search.best_estimator_[0].vocabulary_)
    assert list(rbm.get_feature_names_out()) == [f"replicatedsoftmaxrbm{i}" for i in range(4)]


def test_sample_gives_documents_of_the_requested_length():
    X, _ = topic_corpus(200)
    model = ReplicatedSoftmaxRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    docs = model.sample(5, length=12, n_gibbs=20, random_state=0)
    assert_array_equal(docs.sum(axis=1), 12)
    assert_array_equal(docs, model.sample(5, length=12, n_gibbs=20, random_state=0))


def test_bad_counts():
    with pytest.raises(ValueError, match="Negative values"):
        ReplicatedSoftmaxRBM(n_iter=1).fit(-np.ones((3, 4)))
    with pytest.warns(UserWarning, match="word counts"):
        ReplicatedSoftmaxRBM(n_components=2, n_iter=1).fit(np.full((3, 4), 0.5))


def test_distributed_fit_refuses_with_the_reason():
    X, _ = topic_corpus(50)
    with DistributedFit(n_workers=2):
        with pytest.raises(ValueError, match="softmax of a document spans"):
            ReplicatedSoftmaxRBM(n_components=4, n_iter=1).fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ais_matches_exact_log_partition(dtype):
    """AIS of Z_D for several lengths in one run, within 0.1 nats of the
    enumeration, on a model trained on a topic corpus (so that its weights
    shape the distribution)."""
    from skdbn.metrics import _replicated_softmax_ais, log_partition_ais

    X, _ = topic_corpus(300, n_topics=3, words_per_topic=5, mean_length=10)
    model = ReplicatedSoftmaxRBM(n_components=6, n_iter=5, random_state=0,
                                 dtype=dtype).fit(X)
    betas = np.linspace(0, 1, 2001)
    estimates = _replicated_softmax_ais(model, [1, 8, 20], n_runs=50, betas=betas,
                                        random_state=0)
    for d, est in estimates.items():
        exact = log_partition_exact(model, length=d)
        assert abs(est.log_z - exact) < 0.1, (d, est.log_z, exact)
        assert est.lower <= exact + 0.1 and exact - 0.1 <= est.upper
    one = log_partition_ais(model, n_runs=50, betas=betas, random_state=0, length=8)
    assert abs(one.log_z - log_partition_exact(model, length=8)) < 0.1


def test_perplexity_by_ais_agrees_with_exact(monkeypatch):
    """A model above score_samples' enumeration threshold is scored by AIS;
    on the same model the exact value (still enumerable) agrees."""
    import skdbn._replicated_softmax as rs

    X, _ = topic_corpus(300, n_topics=3, words_per_topic=5, mean_length=10)
    model = ReplicatedSoftmaxRBM(n_components=6, n_iter=5, random_state=0).fit(X)
    test = X[np.isin(X.sum(axis=1), [9, 11])]
    exact = model.perplexity(test)
    monkeypatch.setattr(rs, "_EXACT_MAX_HIDDEN", 0)
    monkeypatch.setattr(rs, "_AIS_BETAS", np.linspace(0, 1, 2001))
    estimate, lower, upper = model.perplexity(test, return_interval=True)
    assert lower <= estimate <= upper
    assert lower < upper
    assert estimate == pytest.approx(exact, rel=0.01)


# ----------------------------------------------------------------------
# Semantic hashing: a deep autoencoder over word counts, binary codes,
# retrieval by Hamming distance.
# ----------------------------------------------------------------------

def test_semantic_hashing_retrieves_documents_of_the_same_topic():
    from skdbn import DBNAutoencoder
    from skdbn.neighbors import HammingNeighbors

    X, topic = topic_corpus(1500)
    train, test = slice(0, 1200), slice(1200, None)
    ae = DBNAutoencoder((50, 8), visible_units="counts", code_units="binary",
                        pretrain_n_iter=10, max_iter=20, random_state=0).fit(X[train])
    assert isinstance(ae.dbn_.rbms_[0], ReplicatedSoftmaxRBM)
    codes = ae.transform(X[train])
    assert set(np.unique(codes)) <= {0, 1}
    # The fine-tuning loss is the counts' negative log-likelihood per word:
    # near the entropy of a topic (2.74 nats), far below a uniform guess.
    assert ae.loss_curve_[-1] < 3.0 < np.log(X.shape[1])
    index = HammingNeighbors(n_neighbors=20).fit(codes)
    ind = index.kneighbors(ae.transform(X[test]), return_distance=False)
    assert (topic[train][ind] == topic[test, None]).mean() > 0.9  # chance: 0.25
    assert_array_equal(ae.transform(sp.csr_matrix(X[test])), ae.transform(X[test]))
    assert_allclose(ae.inverse_transform(codes[:5]).sum(axis=1), 1, rtol=1e-6)
    words = ae.inverse_transform(ae.transform(X[test]))
    nll = -(X[test] * np.log(words)).sum(axis=1).mean()
    assert ae.score(X[test]) == pytest.approx(-nll, rel=1e-6)


def test_softmax_reconstruction_loss_is_the_counts_log_likelihood():
    """The kernel's softmax output trained on word frequencies, weighted by
    the lengths, reports -sum(v log p) / sum(D) before its update."""
    from skdbn._kernels import _mlp

    rng = np.random.RandomState(0)
    m, V, H = 6, 5, 3
    counts = rng.poisson(2.0, (m, V)).astype(np.float64)
    D = counts.sum(axis=1)
    X = rng.uniform(size=(m, 4))
    weights = [rng.normal(0, 0.5, (H, 4)), rng.normal(0, 0.5, (V, H))]
    biases = [np.zeros(H), rng.normal(0, 0.5, V)]
    a1 = expit(X @ weights[0].T)
    z = a1 @ weights[1].T + biases[1]
    log_p = z - logsumexp(z, axis=1, keepdims=True)
    expected = -(counts * log_p).sum() / D.sum()
    optimizer = ([np.zeros_like(W) for W in weights], [np.zeros((1, 1))] * 2,
                 [np.zeros_like(b) for b in biases], [np.zeros(1)] * 2)
    scratch = ([None, np.empty((m, H)), np.empty((m, V))], [None, np.empty((m, H))],
               [np.empty_like(W) for W in weights])
    kinds = np.array([_mlp.KIND_CODES["sigmoid"], _mlp.KIND_CODES["softmax"]], np.int32)
    options = dict(adam=False, learning_rate=0.1, momentum=0.0, alpha=0.0, beta1=0.9,
                   beta2=0.999, epsilon=1e-8, step=1, n_threads=1, key=0)
    loss = _mlp.reconstruction_step(X, counts / D[:, None], (weights, biases), optimizer,
                                    scratch, kinds, options, sample_weight=D)
    assert loss == pytest.approx(expected, rel=1e-12)


def test_hamming_neighbors_against_brute_force():
    from skdbn.neighbors import HammingNeighbors

    rng = np.random.RandomState(0)
    base = (rng.uniform(size=(60, 37)) < 0.5).astype(float)
    queries = (rng.uniform(size=(7, 37)) < 0.5).astype(float)
    full = (queries[:, None, :] != base[None, :, :]).sum(axis=2)
    index = HammingNeighbors(n_neighbors=9).fit(base)
    dist, ind = index.kneighbors(queries)
    assert_array_equal(ind, np.argsort(full, axis=1, kind="stable")[:, :9])
    assert_array_equal(dist, np.sort(full, axis=1)[:, :9])
    # The stored codes themselves: never their own neighbour.
    own = index.kneighbors(n_neighbors=3, return_distance=False)
    assert not np.any(own == np.arange(60)[:, None])
    dists, inds = index.radius_neighbors(queries, radius=14)
    for i in range(7):
        assert_array_equal(np.sort(inds[i]), np.flatnonzero(full[i] <= 14))
        assert np.all(np.diff(dists[i]) >= 0)
    with pytest.raises(ValueError, match="binary codes"):
        HammingNeighbors().fit(rng.uniform(size=(5, 8)))
    with pytest.raises(ValueError, match="n_neighbors must be"):
        index.kneighbors(queries, n_neighbors=61)


def test_unrolled_counts_network_equals_dbn_passes():
    """Before fine-tuning, the encoder (counts and length in, the length's
    weights the hidden biases) is the DBN's up-pass and the decoder its
    down-pass, ending in the Replicated Softmax's word distribution."""
    from skdbn import DBNAutoencoder

    X, _ = topic_corpus(200)
    ae = DBNAutoencoder((20, 6), visible_units="counts", pretrain_n_iter=3, max_iter=0,
                        random_state=0).fit(X)
    assert_allclose(ae.transform(X), ae.dbn_.transform(X), rtol=1e-10, atol=1e-12)
    codes = ae.transform(X[:10])
    assert_allclose(ae.inverse_transform(codes), ae.dbn_.inverse_transform(codes),
                    rtol=1e-10, atol=1e-12)


def test_dbn_with_counts_refuses_up_down():
    from skdbn import DBNTransformer

    X, _ = topic_corpus(50)
    with pytest.raises(ValueError, match="not supported with visible_units='counts'"):
        DBNTransformer((8, 4), visible_units="counts", n_iter=1, up_down_iter=1).fit(X)

"""RBMState, the epoch loop and the registry of random streams."""

import copy

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skdbn import BernoulliRBM, GaussianBernoulliRBM
from skdbn import _streams
from skdbn._kernels import UNIT_CODES
from skdbn._state import CDParams, RBMState, blocks, momentum_at, train_epochs

DTYPES = [np.float32, np.float64]


def fitted(cls=BernoulliRBM, dtype=np.float64, **params):
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(30, 8)) < 0.4).astype(dtype)
    params = dict(n_components=5, n_iter=2, batch_size=7, momentum=0.5, random_state=0,
                  n_jobs=1) | params
    return cls(**params).fit(X), X


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_attributes_are_the_states_arrays(dtype):
    rbm, _ = fitted(dtype=dtype)
    state = rbm.state_
    assert rbm.components_ is state.components
    assert rbm.intercept_hidden_ is state.intercept_hidden
    assert rbm.intercept_visible_ is state.intercept_visible
    assert rbm.h_samples_ is state.chains
    assert state.components.dtype == dtype
    assert set(state.arrays()) >= {"components", "components_inc", "chains", "sigma"}
    # Setting a public attribute sets the state's array.
    W = np.zeros_like(state.components)
    rbm.components_ = W
    assert rbm.state_.components is W


def test_unfitted_estimator_has_no_state():
    rbm = BernoulliRBM()
    assert not hasattr(rbm, "components_")
    assert not hasattr(rbm, "state_")


def test_snapshot_restores_values_into_the_same_arrays():
    rbm, X = fitted()
    state = rbm.state_
    W, chains = state.components, state.chains
    before = {k: v.copy() for k, v in state.arrays().items()}
    seed = state.seed
    saved = state.snapshot()
    W += 1.0
    state.chains = np.ones((50, 5))
    state.seed = 7
    state.restore(saved)
    assert state.components is W and state.chains is chains and state.seed == seed
    for name, value in before.items():
        assert_array_equal(state.arrays()[name], value, err_msg=name)


def test_failed_partial_fit_restores_the_state_in_place():
    rbm, X = fitted()
    W = rbm.components_
    before = {k: v.copy() for k, v in rbm.state_.arrays().items()}
    calls = rbm.state_.n_inference_calls
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        rbm.partial_fit(bad)

    def diverge(*args, **kwargs):
        rbm.state_.components[:] = np.inf
        return np.inf

    rbm.state_.step = diverge
    with pytest.raises(FloatingPointError):
        rbm.partial_fit(X)
    del rbm.state_.step
    assert rbm.components_ is W
    for name, value in before.items():
        assert_array_equal(rbm.state_.arrays()[name], value, err_msg=name)
    assert rbm.state_.n_inference_calls == calls


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_blocks_of_the_workers_assemble_the_whole_state(n_workers):
    rbm, _ = fitted(GaussianBernoulliRBM, n_components=7)
    state = rbm.state_
    state.hidden_offsets = np.linspace(0.2, 0.8, 7).astype(state.dtype)
    whole = {k: v.copy() for k, v in state.arrays().items()}
    copy, means = RBMState.from_wire([a.copy() for a in state.wire_arrays(rbm.visible_means_)],
                                     state.seed)
    assert_array_equal(means, rbm.visible_means_)
    for name in RBMState.ARRAYS:
        assert_array_equal(getattr(copy, name), getattr(state, name))
    # Scramble the copy, then write every worker's blocks back into it.
    for name in ("components", "components_inc", "intercept_visible", "visible_inc",
                 "intercept_hidden", "hidden_inc", "sigma", "hidden_mean", "hidden_offsets"):
        getattr(copy, name)[...] = -1
    hb, vb = blocks(7, n_workers), blocks(8, n_workers)
    for rank in range(n_workers):
        vs, hs = slice(vb[rank], vb[rank + 1]), slice(hb[rank], hb[rank + 1])
        parts = [state.components[:, vs], state.components_inc[:, vs],
                 state.intercept_visible[vs], state.visible_inc[vs],
                 state.intercept_hidden[hs], state.hidden_inc[hs], state.chains,
                 state.sigma[vs], state.hidden_mean, state.hidden_offsets]
        shapes = copy.block_shapes(rank, n_workers, state.chains.shape[0])
        assert [p.shape for p in parts] == [tuple(s) for s in shapes]
        copy.set_blocks(rank, n_workers, parts)
    for name in RBMState.BLOCKS:
        assert_array_equal(getattr(copy, name), whole[name], err_msg=name)


def test_unused_hidden_offsets_travel_empty():
    rbm, _ = fitted(BernoulliRBM, n_components=5)
    assert rbm.state_.hidden_offsets is None
    arrays = rbm.state_.wire_arrays(rbm.visible_means_)
    assert arrays[RBMState.WIRE.index("hidden_offsets")].size == 0
    copy, _ = RBMState.from_wire(arrays, rbm.state_.seed)
    assert copy.hidden_offsets is None
    assert rbm.state_.block_shapes(0, 2, 3)[-1] == (0,)


def test_train_epochs_visits_every_minibatch_once_in_the_registrys_order():
    X = np.arange(23)[:, None]
    seen, ends = [], []

    def step(batch, epoch, index, momentum):
        seen.append((epoch, index, batch[:, 0].tolist(), momentum))
        return float(len(batch))

    train_epochs(X, 2, seed=5, first_epoch=3, batch_size=5,
                 begin_epoch=lambda epoch: momentum_at("schedule", epoch),
                 step=step, end_epoch=lambda e, err, last: ends.append((e, err, len(last))))
    assert [e for e, *_ in ends] == [3, 4]
    assert all(err == 23.0 for _, err, _ in ends)
    for epoch in (3, 4):
        visits = [s for s in seen if s[0] == epoch]
        assert [s[1] for s in visits] == list(_streams.epoch_order(5, epoch, 5))
        assert sorted(sum((s[2] for s in visits), [])) == list(range(23))
        assert {s[3] for s in visits} == {0.5 if epoch < 5 else 0.9}


def test_cd_params_follow_the_estimator():
    rbm = GaussianBernoulliRBM(sigma="learn", sigma_learning_rate=0.2, cd_k=3)
    params = CDParams.of(rbm, learning_rate=0.5)
    assert (params.cd_k, params.learning_rate, params.sigma_learning_rate) == (3, 0.5, 0.2)
    assert params.learn_sigma and not params.centering
    params = CDParams.of(GaussianBernoulliRBM(sigma=2.0, sigma_learning_rate=0.2))
    assert params.sigma_learning_rate == 0.0 and not params.learn_sigma
    assert CDParams.of(BernoulliRBM(centering=True)).centering
    params = CDParams.of(BernoulliRBM(hidden_units="nrelu", softmax_groups=[(0, 3)]))
    assert params.hidden_unit == UNIT_CODES["nrelu"]
    assert_array_equal(params.groups, [[0, 3]])


def test_stream_numbers_are_distinct_within_a_key():
    # Within one CD step's key: the data's hidden samples, then per Gibbs
    # step one visible and one hidden stream, never shared.
    cd = [_streams.cd_hidden(0)] + [f(s) for s in range(1, 50)
                                    for f in (_streams.cd_visible, _streams.cd_hidden)]
    assert len(set(cd)) == len(cd)
    passes = [f(layer) for layer in range(100) for f in (_streams.up_pass, _streams.down_pass)]
    assert len(set(passes)) == len(passes)
    assert _streams.GIBBS_HIDDEN != _streams.GIBBS_VISIBLE
    assert len({_streams.INFERENCE_EPOCH, _streams.SAMPLE_CHAIN_EPOCH,
                _streams.SAMPLE_DOWN_EPOCH}) == 3


def test_gibbs_draws_from_the_inference_key():
    rbm, X = fitted()
    key = _streams.inference_key(rbm.state_.seed, rbm.state_.n_inference_calls)
    assert rbm.state_.next_inference_key() == key
    assert rbm.state_.next_inference_key() != key


def test_pickle_of_the_estimator_before_rbmstate_loads():
    rbm, X = fitted(GaussianBernoulliRBM, sigma="learn")
    state = rbm.state_
    # The __dict__ an older skdbn pickled: the arrays on the estimator.
    old = {k: v for k, v in rbm.__getstate__().items() if k != "_state"}
    old |= {"components_": state.components, "intercept_visible_": state.intercept_visible,
            "intercept_hidden_": state.intercept_hidden, "_sigma": state.sigma,
            "h_samples_": state.chains, "_seed": state.seed,
            "_components_inc": state.components_inc, "_visible_inc": state.visible_inc,
            "_hidden_inc": state.hidden_inc, "_hidden_mean": state.hidden_mean}
    loaded = GaussianBernoulliRBM.__new__(GaussianBernoulliRBM)
    loaded.__setstate__(copy.deepcopy(old))
    assert not {"components_", "_sigma", "_seed"} & set(vars(loaded))
    assert_array_equal(loaded.transform(X), rbm.transform(X))
    assert_array_equal(loaded.gibbs(X), rbm.gibbs(X))
    assert_array_equal(loaded.partial_fit(X).components_, rbm.partial_fit(X).components_)

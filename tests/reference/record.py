"""Record the reference outputs that ``tests/test_reference.py`` checks.

Each configuration below trains a tiny model with a fixed seed and returns
its learned arrays (weights, biases, sigma, increments, chains, errors) and,
where the model samples, the samples it draws. The recorded values pin the
random draws and the arithmetic bit for bit: a restructuring of the engine
must reproduce them exactly, or change this file's output on purpose and say
why in its commit message.

Run from the repository root, after building the kernels, to (re)write the
fixture::

    python tests/reference/record.py

The fixture is ``tests/reference/reference.npz`` (a few tens of kB).
Configurations that need worker processes (``DistributedFit``) start two
local workers once, shared by all of them.
"""

# SPDX-License-Identifier: BSD-3-Clause

import json
import os
import platform
import sys

import numpy as np

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.npz")

DTYPES = {"f32": np.float32, "f64": np.float64}

# The key under which the fixture keeps the environment it was recorded in.
ENVIRONMENT_KEY = "__environment__"


def environment():
    """What decides the rounding of every result, besides skdbn's own code:
    the BLAS libraries (build, version, kernel), the CD kernels' CPU variant,
    numpy, scipy and the processor architecture. Bit-for-bit equality is only
    defined between runs that agree on all of it."""
    import scipy
    from threadpoolctl import threadpool_info

    from skdbn._kernels import cd_variant

    blas = sorted(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                  for i in threadpool_info() if i.get("user_api") == "blas")
    return {"numpy": np.__version__, "scipy": scipy.__version__, "blas": blas,
            "cd_variant": cd_variant(), "machine": platform.machine()}


def binary_data(dtype, n=48, d=12, seed=0):
    rng = np.random.RandomState(seed)
    return (rng.uniform(size=(n, d)) < rng.uniform(0.1, 0.7, d)).astype(dtype)


def real_data(dtype, n=48, d=10, seed=1):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n, d)).astype(dtype)


def rbm_arrays(rbm, prefix=""):
    """Every learned array of a fitted RBM, by name."""
    state = getattr(rbm, "state_", None)
    if state is not None:
        out = {
            "components": state.components,
            "intercept_hidden": state.intercept_hidden,
            "intercept_visible": state.intercept_visible,
            "h_samples": state.chains,
            "components_inc": state.components_inc,
            "visible_inc": state.visible_inc,
            "hidden_inc": state.hidden_inc,
            "hidden_mean": state.hidden_mean,
            "sigma": state.sigma,
            "seed": state.seed,
            "hidden_offsets": state.hidden_offsets,
        }
    else:
        # The engine before RBMState (the code the fixture was recorded on).
        out = {
            "components": rbm.components_,
            "intercept_hidden": rbm.intercept_hidden_,
            "intercept_visible": rbm.intercept_visible_,
            "h_samples": rbm.h_samples_,
            "components_inc": rbm._components_inc,
            "visible_inc": rbm._visible_inc,
            "hidden_inc": rbm._hidden_inc,
            "hidden_mean": rbm._hidden_mean,
            "sigma": rbm._sigma,
            "seed": rbm._seed,
            "hidden_offsets": getattr(rbm, "_hidden_offsets", None),
        }
    out["errors"] = np.asarray(rbm.reconstruction_errors_, dtype=np.float64)
    out["seed"] = np.asarray(out["seed"], dtype=np.int64)
    if out["hidden_offsets"] is None:
        del out["hidden_offsets"]
    return {prefix + k: np.asarray(v) for k, v in out.items()}


# (name, kind, dtype-key, parameters). kind picks the estimator / procedure.
RBM_CASES = [
    ("bern_pcd", "bernoulli", dict()),
    ("bern_cd2_mom_decay", "bernoulli",
     dict(persistent=False, cd_k=2, momentum=0.5, weight_decay=1e-3)),
    ("bern_schedule_sparse", "bernoulli",
     dict(momentum="schedule", sparsity_cost=0.1, sparsity_target=0.2, n_iter=6)),
    ("bern_sampled_stats", "bernoulli",
     dict(sampled_statistics=True, sample_visible=False, batch_size=7)),
    ("bern_centering", "bernoulli", dict(centering=True, momentum=0.5)),
    ("bern_njobs2", "bernoulli", dict(persistent=False, cd_k=3, n_jobs=2)),
    ("gauss_cd", "gaussian", dict()),
    ("gauss_pcd_sample", "gaussian",
     dict(persistent=True, sample_visible=True, momentum=0.9, weight_decay=1e-4)),
    ("gauss_fixed_sigma", "gaussian", dict(sigma=np.linspace(0.5, 2.0, 10), cd_k=2)),
    ("gauss_learn_sigma", "gaussian",
     dict(sigma="learn", sigma_learning_rate=1e-2, sparsity_cost=0.05)),
    ("gauss_njobs2", "gaussian", dict(sigma="learn", n_jobs=2)),
]


def rbm_case(kind, dtype, params):
    from skdbn import BernoulliRBM, GaussianBernoulliRBM

    if kind == "bernoulli":
        X = binary_data(dtype)
        base = dict(n_components=7, n_iter=3, batch_size=10, learning_rate=0.1,
                    random_state=0, n_jobs=1)
        rbm = BernoulliRBM(**(base | params)).fit(X)
    else:
        X = real_data(dtype)
        base = dict(n_components=6, n_iter=3, batch_size=10, learning_rate=0.01,
                    random_state=0, n_jobs=1)
        rbm = GaussianBernoulliRBM(**(base | params)).fit(X)
    out = rbm_arrays(rbm)
    # partial_fit continues from the fitted state; gibbs draws from the
    # inference stream.
    rbm.partial_fit(X[:23])
    out |= rbm_arrays(rbm, "partial_")
    out["gibbs"] = rbm.gibbs(X[:5])
    out["gibbs2"] = rbm.gibbs(X[:5])
    return out


DBN_CASES = [
    ("dbn_bern", dict(hidden_layer_sizes=(8, 5), up_down_iter=0)),
    ("dbn_bern_updown", dict(hidden_layer_sizes=(8, 6, 4), up_down_iter=2, persistent=True,
                             cd_k=2)),
    ("dbn_gauss_updown", dict(hidden_layer_sizes=(7, 5), visible_units="gaussian",
                              learning_rate=[0.01, 0.05], up_down_iter=2)),
    ("dbn_single_updown", dict(hidden_layer_sizes=(6,), up_down_iter=2)),
]


def dbn_case(dtype, params):
    from skdbn import DBNTransformer

    X = real_data(dtype) if params.get("visible_units") == "gaussian" else binary_data(dtype)
    base = dict(n_iter=2, batch_size=10, random_state=0, n_jobs=1)
    dbn = DBNTransformer(**(base | params)).fit(X)
    out = {}
    for i, rbm in enumerate(dbn.rbms_):
        out |= rbm_arrays(rbm, f"layer{i}_")
    for i, (W, b) in enumerate(zip(dbn.generative_components_, dbn.generative_intercepts_)):
        out[f"gen{i}_components"], out[f"gen{i}_intercepts"] = W, b
    out["up_down_errors"] = np.asarray(dbn.up_down_errors_, dtype=np.float64)
    out["sample"] = dbn.sample(4, n_gibbs=3, random_state=1)
    dbn.partial_fit(X[:20])
    for i, rbm in enumerate(dbn.rbms_):
        out |= rbm_arrays(rbm, f"partial_layer{i}_")
    return out


def patch_case(dtype, learn):
    from skdbn import GaussianBernoulliRBM, merge_patch_rbms

    rng = np.random.RandomState(2)
    images = rng.normal(size=(30, 4, 4, 1)).astype(dtype)
    # 2x2 patches with stride 2: four patch RBMs, plus the subsampled one.
    patches = [images[:, y:y + 2, x:x + 2].reshape(30, -1) for y in (0, 2) for x in (0, 2)]
    sigma = "learn" if learn else 1.0
    rbms = [GaussianBernoulliRBM(3, n_iter=2, batch_size=10, random_state=k, sigma=sigma,
                                 n_jobs=1).fit(p) for k, p in enumerate(patches)]
    sub = images.reshape(30, 2, 2, 2, 2, 1).mean(axis=(2, 4)).reshape(30, -1)
    subsampled = GaussianBernoulliRBM(2, n_iter=2, batch_size=10, random_state=9,
                                      sigma=sigma, n_jobs=1).fit(sub)
    merged = merge_patch_rbms(rbms, (4, 4, 1), patch_shape=(2, 2), stride=2,
                              subsampled_rbm=subsampled, random_state=5)
    out = rbm_arrays(merged, "merged_")
    merged.partial_fit(images.reshape(30, -1))
    return out | rbm_arrays(merged, "trained_")


DISTRIBUTED_CASES = [
    ("bern_pcd_sampled", "bernoulli", dict(sampled_statistics=True)),
    ("bern_cd2_mom", "bernoulli",
     dict(persistent=False, cd_k=2, momentum=0.5, weight_decay=1e-3, batch_size=9)),
    ("gauss_cd", "gaussian", dict()),
]


def distributed_case(backend, strategy, kind, dtype, params):
    from skdbn import BernoulliRBM, GaussianBernoulliRBM

    backend.strategy = strategy
    if kind == "bernoulli":
        X = binary_data(dtype)
        base = dict(n_components=8, n_iter=3, batch_size=10, learning_rate=0.1,
                    random_state=0, n_jobs=1)
        rbm = BernoulliRBM(**(base | params)).fit(X)
    else:
        X = real_data(dtype)
        base = dict(n_components=6, n_iter=3, batch_size=10, learning_rate=0.01,
                    random_state=0, n_jobs=1)
        rbm = GaussianBernoulliRBM(**(base | params)).fit(X)
    return rbm_arrays(rbm)


def local_cases():
    """(name, function returning the arrays) of every single-process case."""
    cases = []
    for dkey, dtype in DTYPES.items():
        for name, kind, params in RBM_CASES:
            cases.append((f"{name}_{dkey}",
                          lambda k=kind, d=dtype, p=params: rbm_case(k, d, p)))
        for name, params in DBN_CASES:
            cases.append((f"{name}_{dkey}", lambda d=dtype, p=params: dbn_case(d, p)))
        for learn in (False, True):
            cases.append((f"patch_{'learn' if learn else 'fixed'}_{dkey}",
                          lambda d=dtype, lr=learn: patch_case(d, lr)))
    return cases


def distributed_cases():
    """(name, function of the backend returning the arrays) of the K=2 cases."""
    cases = []
    for dkey, dtype in DTYPES.items():
        for strategy in ("replicated", "partitioned"):
            for name, kind, params in DISTRIBUTED_CASES:
                cases.append((f"dist_{strategy}_{name}_{dkey}",
                              lambda b, s=strategy, k=kind, d=dtype, p=params:
                              distributed_case(b, s, k, d, p)))
    return cases


def distributed_backend():
    from skdbn import DistributedFit

    # sync_every below the epoch size, so that replicated runs synchronise.
    return DistributedFit(n_workers=2, sync_every=20)


def record():
    import warnings

    arrays = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, case in local_cases():
            arrays |= {f"{name}/{k}": v for k, v in case().items()}
        with distributed_backend() as backend:
            for name, case in distributed_cases():
                arrays |= {f"{name}/{k}": v for k, v in case(backend).items()}
    np.savez_compressed(FIXTURE, **arrays,
                        **{ENVIRONMENT_KEY: np.array(json.dumps(environment()))})
    return arrays


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    arrays = record()
    print(f"{len(arrays)} arrays, {os.path.getsize(FIXTURE)} bytes -> {FIXTURE}")

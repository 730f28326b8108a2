"""The kernels' entry points as the kernel tests call them.

``cd_step`` takes the model's arrays one by one and the options as keywords
(with the defaults of a plain CD-1 step) and runs the kernel's one-object
form (``skdbn._kernels._cd.cd_step(state, scratch, m, options, groups)``) on
views of them, so a test reads every array it passed in afterwards.
"""

from skdbn._kernels import driver
from skdbn._state import RBMState

STEP_DEFAULTS = dict(cd_k=1, persistent=False, sample_visible=True,
                     sampled_statistics=False, learning_rate=0.1, momentum=0.0,
                     weight_decay=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                     sigma_learning_rate=0.0, sigma_min=1e-3, key=0, n_threads=1,
                     hidden_unit=0)

# The tests' helpers of the build that runs (its normals round as its kernels do).
_testing = driver("_testing")
normal_array = _testing.normal_array
box_muller = _testing.box_muller
exp_array = _testing.exp_array


def cd_step(W, b, c, W_inc, b_inc, c_inc, sigma, vis, hid, chain, hid_mean, grad, m,
            *, groups=None, **options):
    """One kernel step; ``chain`` is (n_hidden, >= m), stored by unit."""
    state = RBMState(W, b, c, sigma, chain.T, seed=0, components_inc=W_inc,
                     visible_inc=b_inc, hidden_inc=c_inc, hidden_mean=hid_mean)
    return driver("_cd").cd_step(state, (vis, hid, grad), m, {**STEP_DEFAULTS, **options},
                                 groups)


TRAIN_DEFAULTS = dict(adam=False, learning_rate=0.1, momentum=0.9, alpha=0.0, beta1=0.9,
                      beta2=0.999, epsilon=1e-8, step=1, n_threads=1, key=0)


def train_step(X, y, weights, biases, s1, s2, b1, b2, acts, deltas, grads, *,
               sample_weight=None, keep=None, **options):
    """``_mlp.train_step`` with its arrays one by one and options as keywords."""
    from skdbn._kernels import _mlp

    return _mlp.train_step(X, y, (weights, biases), (s1, s2, b1, b2), (acts, deltas, grads),
                           {**TRAIN_DEFAULTS, **options}, sample_weight, keep)


def reconstruction_step(X, T, weights, biases, s1, s2, b1, b2, acts, deltas, grads, kinds,
                        noise=None, *, sample_weight=None, **options):
    """``_mlp.reconstruction_step`` with its arrays one by one and options as keywords."""
    from skdbn._kernels import _mlp

    return _mlp.reconstruction_step(X, T, (weights, biases), (s1, s2, b1, b2),
                                    (acts, deltas, grads), kinds,
                                    {**TRAIN_DEFAULTS, **options}, noise, sample_weight)

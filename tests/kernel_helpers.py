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


def cd_step(W, b, c, W_inc, b_inc, c_inc, sigma, vis, hid, chain, hid_mean, grad, m,
            *, groups=None, **options):
    """One kernel step; ``chain`` is (n_hidden, >= m), stored by unit."""
    state = RBMState(W, b, c, sigma, chain.T, seed=0, components_inc=W_inc,
                     visible_inc=b_inc, hidden_inc=c_inc, hidden_mean=hid_mean)
    return driver("_cd").cd_step(state, (vis, hid, grad), m, {**STEP_DEFAULTS, **options},
                                 groups)

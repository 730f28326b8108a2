"""The registry of random streams: every number that names one, in one place.

Every random number of skdbn comes from the counter-based generator of
``_kernels/_random.pxd``, keyed by ``(key, stream, row, column)``, where a
key mixes ``(seed, epoch, minibatch)`` (:func:`minibatch_key`). Two uses that
shared a ``(key, stream)`` pair would draw the same numbers, so the epochs and
streams of each use are named here and nowhere else. Changing a value
changes the draws, and with them the reference models of
``tests/test_reference.py``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from ._kernels._random import batch_key

__all__ = [
    "AIS_HIDDEN", "AIS_VISIBLE", "INFERENCE_EPOCH", "GIBBS_HIDDEN", "GIBBS_VISIBLE", "SAMPLE_CHAIN_EPOCH",
    "SAMPLE_DOWN_EPOCH", "cd_hidden", "cd_visible", "down_pass", "draw_seed", "dropout_mask",
    "epoch_order", "inference_key", "initial_hidden", "minibatch_key", "up_pass",
]

# -- keys ---------------------------------------------------------------------
# Epoch reserved for the draws of gibbs / score_samples, so that they never
# reuse the key of a training minibatch.
INFERENCE_EPOCH = 2**62
# DBNTransformer.sample: its Gibbs chain in the top RBM, then its top-down pass.
SAMPLE_CHAIN_EPOCH = 1
SAMPLE_DOWN_EPOCH = 2


def draw_seed(rng, size=None):
    """A seed of the counter-based generator (or ``size`` of them) from ``rng``."""
    seeds = rng.randint(np.iinfo(np.int64).max, size=size)
    return int(seeds) if size is None else [int(s) for s in seeds]


def minibatch_key(seed, epoch, batch):
    """Key of minibatch ``batch`` of ``epoch``: a mix of the three."""
    return batch_key(seed, epoch, batch)


def inference_key(seed, call):
    """Key of the ``call``-th inference block (gibbs) of a model."""
    return batch_key(seed, INFERENCE_EPOCH, call)


def epoch_order(seed, epoch, n_batches):
    """The order in which ``epoch`` visits the minibatches."""
    return np.random.default_rng([seed, epoch]).permutation(n_batches)


def initial_hidden(seed, shape):
    """Random binary hidden states starting DBNTransformer.sample's chains."""
    return np.random.default_rng(seed).random(shape) < 0.5


# -- streams within one key ------------------------------------------------------
# One CD-k step: the hidden samples of Gibbs step t (t = 0: the data's
# positive phase) and the visible samples of step t >= 1. The kernel's
# gibbs_chain (_kernels/_cd.pyx) draws from the same numbers.
def cd_hidden(step):
    return 2 * step


def cd_visible(step):
    return 2 * step - 1


# One Gibbs step v -> h -> v' outside training (gibbs, sample).
GIBBS_HIDDEN = 0
GIBBS_VISIBLE = 1


# AIS (``_kernels/_ais.pyx``), keyed by a seed drawn with ``draw_seed`` per
# call: intermediate distribution k uses ``batch_key(seed, k, 0)``, its
# hidden samples stream AIS_HIDDEN and its visible samples stream
# AIS_VISIBLE (k = 0: the base model's visible draw).
AIS_HIDDEN = 0
AIS_VISIBLE = 1


# DBN up-down fine-tuning, keyed by its own seed: the stochastic up-pass
# samples hidden layer ``layer`` from stream ``up_pass(layer)``, the
# down-pass samples it from ``down_pass(layer)``; 1000 keeps the two
# families apart for any depth below a thousand layers.
def up_pass(layer):
    return layer


def down_pass(layer):
    return 1000 + layer


# Dropout in backpropagation (``_kernels/_mlp.pyx``), keyed by a seed drawn
# with ``draw_seed`` per fine-tuning call: minibatch ``b`` of epoch ``e``
# (counted over the network's life, ``n_iter_``) uses ``minibatch_key(seed,
# e, b)``; the mask of layer ``l``'s input is stream ``l`` (0: the features).
def dropout_mask(layer):
    return layer

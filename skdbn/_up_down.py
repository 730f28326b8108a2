"""Up-down fine-tuning and top-down generation of a stack of RBMs.

One implementation for :class:`~skdbn.DBNTransformer` and
:class:`~skdbn.DBNClassifier` (Hinton, Osindero & Teh 2006): the lower
layers have untied recognition weights (their RBMs' ``components_``) and
generative weights (``generative_components_``); the top RBM stays an
undirected associative memory, whose visible layer may end with clamped
units (the classifier's labels).
"""

# SPDX-License-Identifier: BSD-3-Clause

import time

import numpy as np
import scipy.sparse as sp

from . import _streams
from ._kernels import _inference, _up_down
from ._state import CDParams, hidden_unit_code, softmax_groups_array, train_epochs
from .utils._threads import kernel_threads


class UpDownMixin:
    """Up-down fine-tuning and generation for estimators with ``rbms_``.

    The estimator provides ``rbms_`` (bottom first, the top RBM last),
    ``up_down_learning_rate`` and ``verbose``; this mixin owns
    ``generative_components_``, ``generative_intercepts_`` and
    ``up_down_errors_``.
    """

    def _tie_generative_weights(self):
        """Generative weights of the lower layers = the RBMs' (tied) weights."""
        self.generative_components_ = [r.components_.copy() for r in self.rbms_[:-1]]
        self.generative_intercepts_ = [r.intercept_visible_.copy() for r in self.rbms_[:-1]]
        self.up_down_errors_ = []

    def _up_down(self, data, n_epochs, rng, n_clamped=0, mean_field_top=False):
        """``n_epochs`` of up-down fine-tuning (contrastive wake-sleep).

        Per minibatch: a stochastic bottom-up pass with the recognition
        weights, whose states train the generative weights to reconstruct
        each layer from the one above (wake); CD-k in the top RBM from the
        penultimate wake state, followed by the last ``n_clamped`` columns
        of ``data`` (the labels: clamped in the positive phase, sampled in
        the negative one); a stochastic top-down pass from the top RBM's
        negative state with the generative weights, whose states train the
        recognition weights to reconstruct each layer from the one below
        (sleep). Both rules are delta rules on sigmoid (or, at the bottom,
        Gaussian) units.

        With ``mean_field_top``, the top RBM's positive phase (and the wake
        state of the layer below it) is the up-pass's probabilities rather
        than a binary sample: the representation that greedy training and
        recognition by free energy use.

        Epochs are numbered on from ``len(up_down_errors_)``, so calls that
        draw the same seeds from ``rng`` continue one another's streams.
        """
        rbms, top = self.rbms_, self.rbms_[-1]
        lr = self.up_down_learning_rate
        state = top.state_
        batch_size = min(rbms[0].batch_size, data.shape[0])
        params = CDParams.of(top, learning_rate=lr)
        buffers = state.buffers(batch_size, params)
        # The top RBM's CD and the up and down passes draw from separate
        # seeds, so that no stream of one repeats a stream of the other.
        seed, pass_seed = _streams.draw_seed(rng, size=2)
        dtype = top.components_.dtype
        n_in = data.shape[1] - n_clamped
        begin = time.perf_counter()

        def begin_epoch(epoch):
            nonlocal begin
            begin = time.perf_counter()
            return 0.0

        def step(batch, epoch, index, momentum):
            if sp.issparse(batch):
                batch = batch.toarray()
            m = batch.shape[0]
            pass_key = _streams.minibatch_key(pass_seed, epoch, index)
            wake = self._stochastic_up_pass(np.ascontiguousarray(batch[:, :n_in], dtype=dtype),
                                            pass_key, n_threads, mean_field_top)
            n_top = wake[-1].shape[1]
            buffers[0][:m, :n_top] = wake[-1]
            buffers[0][:m, n_top:] = batch[:, n_in:]
            err = state.step(buffers, m, params, momentum,
                             _streams.minibatch_key(seed, epoch, index), n_threads,
                             top.visible_means_)
            if len(rbms) == 1:
                # No lower layers: up-down is CD on the single RBM.
                return err
            sleep = self._stochastic_down_pass(buffers[0][m:2 * m, :n_top], pass_key,
                                               n_threads)
            return self._delta_rules(wake, sleep, lr, n_threads)

        def end_epoch(epoch, sq_error, last):
            error = sq_error / data.shape[0]
            if not (np.isfinite(error) and self._weights_finite()):
                raise FloatingPointError(
                    f"Up-down fine-tuning diverged in epoch {epoch + 1}: the weights "
                    f"became non-finite or beyond any useful size with "
                    f"up_down_learning_rate={lr}. Use a smaller up_down_learning_rate; "
                    "the model was left as it was before this call."
                )
            self.up_down_errors_.append(error)
            if self.verbose:
                print(f"[{type(self).__name__}] Up-down epoch {epoch + 1}, "
                      f"reconstruction error = {error:.4f}, "
                      f"time = {time.perf_counter() - begin:.2f}s")

        # Overflow is detected after each epoch and reported as divergence.
        with kernel_threads(self.n_jobs) as n_threads, np.errstate(over="ignore", invalid="ignore"):
            train_epochs(data, n_epochs, seed=seed, first_epoch=len(self.up_down_errors_),
                         batch_size=batch_size, begin_epoch=begin_epoch, step=step,
                         end_epoch=end_epoch)

    def _weights_finite(self):
        return all(rbm.state_.divergence() is None for rbm in self.rbms_) and all(
            np.isfinite(a.min()) and np.isfinite(a.max())
            for a in self.generative_components_ + self.generative_intercepts_)

    def _stochastic_up_pass(self, v, key, n_threads, mean_field_top=False):
        """Wake states: the data, then binary samples of each hidden layer
        below the top RBM's hidden layer, with the recognition weights (the
        last one's probabilities instead with ``mean_field_top``)."""
        states = [v]
        last = len(self.rbms_) - 2
        for layer, rbm in enumerate(self.rbms_[:-1]):
            u = rbm.state_.visible.to_input(states[-1])
            probs = np.empty((v.shape[0], rbm.n_components), v.dtype)
            samples = np.empty_like(probs)
            _inference.hidden_given_visible(u, rbm.components_, rbm.intercept_hidden_, probs,
                                            samples, (key, _streams.up_pass(layer)),
                                            n_threads, hidden_unit_code(rbm))
            states.append(probs if mean_field_top and layer == last else samples)
        return states

    def _stochastic_down_pass(self, top_visible, key, n_threads):
        """Sleep states, bottom first: binary samples of each layer below the
        penultimate one given the layer above, with the generative weights;
        the visible layer is its mean."""
        states = [np.ascontiguousarray(top_visible)]
        for layer in reversed(range(len(self.rbms_) - 1)):
            states.insert(0, self._generate(layer, states[0], sample=layer > 0, key=key,
                                            stream=_streams.down_pass(layer),
                                            n_threads=n_threads))
        return states

    def _generate(self, layer, hidden, sample, key, stream, n_threads):
        """Top-down conditional (mean or sample) of ``layer``'s visible
        units, in v-space."""
        W = self.generative_components_[layer]
        out = np.empty((hidden.shape[0], W.shape[1]), W.dtype)
        _inference.visible_given_hidden(hidden, W, self.generative_intercepts_[layer],
                                        self.rbms_[layer].state_.sigma, out,
                                        (key, stream) if sample else None, n_threads,
                                        lengths=self.rbms_[layer]._down_lengths(hidden))
        return out

    def _delta_rules(self, wake, sleep, lr, n_threads):
        """Generative weights from the wake states, recognition weights from
        the sleep states; returns the bottom layer's squared wake error."""
        m = wake[0].shape[0]
        alpha = lr / m
        error = 0.0
        for layer, rbm in enumerate(self.rbms_[:-1]):
            visible = rbm.state_.visible
            # Wake: predict layer `layer` from the sampled layer above.
            diff = wake[layer] - self._generate(layer, wake[layer + 1], sample=False, key=0,
                                                stream=0, n_threads=n_threads)
            if layer == 0:
                error = float(np.sum(diff.astype(np.float64) ** 2))
            diff, bias_step = visible.generative_step(diff)
            self.generative_intercepts_[layer] += alpha * bias_step
            _up_down.add_outer(self.generative_components_[layer], wake[layer + 1], diff,
                               alpha, n_threads)
            # Sleep: predict the layer above from the dreamed layer below.
            u = np.ascontiguousarray(visible.to_input(sleep[layer]))
            q = np.empty_like(sleep[layer + 1])
            _inference.hidden_given_visible(u, rbm.components_, rbm.intercept_hidden_, q,
                                            n_threads=n_threads,
                                            hidden_unit=hidden_unit_code(rbm))
            q = sleep[layer + 1] - q
            rbm.intercept_hidden_ += alpha * q.sum(axis=0)
            _up_down.add_outer(rbm.components_, q, u, alpha, n_threads)
        return error

    def _dream(self, n_samples, n_gibbs, seed, n_clamped=0, clamped=None):
        """Samples of the generative model, in the data's space.

        Alternating Gibbs sampling in the top RBM for ``n_gibbs`` steps from
        random binary hidden states, then a top-down pass from its visible
        layer without its last ``n_clamped`` columns (the labels): binary
        samples of each lower hidden layer and the mean of the data layer.
        If given, ``clamped`` (n_samples, n_clamped) holds those columns
        during the Gibbs sampling; otherwise they are sampled too.
        """
        top = self.rbms_[-1]
        sigma = top.state_.sigma
        dtype = top.components_.dtype
        n_hidden, n_visible = top.components_.shape
        n_free = n_visible - n_clamped
        groups = softmax_groups_array(top)
        v = np.empty((n_samples, n_visible), dtype)
        p = np.empty((n_samples, n_hidden), dtype)
        h = _streams.initial_hidden(seed, p.shape).astype(dtype)
        n_layers = len(self.rbms_)
        with kernel_threads(self.n_jobs) as n_threads:
            for step in range(n_gibbs):
                key = _streams.minibatch_key(seed, _streams.SAMPLE_CHAIN_EPOCH, step)
                _inference.visible_given_hidden(h, top.components_, top.intercept_visible_,
                                                sigma, v, (key, _streams.GIBBS_VISIBLE),
                                                n_threads, groups=groups)
                if clamped is not None:
                    v[:, n_free:] = clamped
                u = top.state_.visible.to_input(v)
                _inference.hidden_given_visible(u, top.components_, top.intercept_hidden_, p,
                                                h, (key, _streams.GIBBS_HIDDEN), n_threads,
                                                hidden_unit_code(top))
            down_key = _streams.minibatch_key(seed, _streams.SAMPLE_DOWN_EPOCH, n_layers - 1)
            _inference.visible_given_hidden(
                h, top.components_, top.intercept_visible_, sigma, v,
                (down_key, _streams.GIBBS_VISIBLE) if n_layers > 1 else None, n_threads,
                groups=groups)
            data = np.ascontiguousarray(v[:, :n_free])
            for layer in reversed(range(n_layers - 1)):
                data = self._generate(
                    layer, data, sample=layer > 0,
                    key=_streams.minibatch_key(seed, _streams.SAMPLE_DOWN_EPOCH, layer),
                    stream=_streams.GIBBS_VISIBLE, n_threads=n_threads)
        return data

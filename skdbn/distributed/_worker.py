"""One worker's share of model-parallel CD (report §4.2 and §4.5).

The visible units are split into K contiguous blocks and so are the hidden
units; worker k owns visible block V_k and hidden block H_k, with their
biases. It runs the phases of the single-process step in its order
(``_distributed.chain_phases``: one definition of the CD-k / PCD chain) and
between them all-gathers its blocks of activities (binary ones as bits).
Every product, element-wise step and update rule is the single-process
kernel's (the phases of ``skdbn._kernels``, through ``_distributed`` and
``_inference``), applied to slices; the random numbers follow the global
unit index, so the workers draw exactly what one process would. Sparse
minibatches stay sparse: their products are the kernels' sparse ones.

``"replicated"`` (§4.2): every worker has the whole minibatch and two slices
of W: the rows of its hidden units (``G``, the "green" weights) and the
columns of its visible units (``P``, the "purple" weights, canonical).
Weights in both are updated on two workers and re-synchronised from ``P``
every ``sync_every`` examples.

``"partitioned"`` (§4.5): every worker has only its visible columns of the
data and of W (``P``); hidden inputs are summed from the workers' partial
products (an exchange of floats), and each weight lives once.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas as _scipy_blas

from .. import _streams
from .._kernels import UNIT_CODES, _distributed, _inference
from .._csr import columns
from .._state import (_OFFSET_RATE, CDParams, blocks, hidden_unit_code, momentum_at, softmax_groups_array,
                      train_epochs, visible_blocks)
from .._visible import visible_units

# Message tags of the collectives within a step.
_TAG_POS, _TAG_NEG, _TAG_VIS, _TAG_SUM, _TAG_SYNC, _TAG_SIGMA, _TAG_CENTRE = range(1, 8)


def minibatch(batch, dtype, keep_sparse):
    """A minibatch as the step takes it: CSR rows stay sparse (their
    products are sparse, as in the fused step) unless ``keep_sparse`` is
    false (a learned sigma needs the dense statistics); dense rows become a
    C-contiguous array of the model's dtype."""
    if sp.issparse(batch):
        if keep_sparse:
            return sp.csr_matrix(batch)
        batch = batch.toarray()
    return np.ascontiguousarray(batch, dtype=dtype)


def squared_error(v, recon):
    """sum((v - recon)^2) in float64, for dense or CSR v: the sum of recon^2
    plus, at each nonzero x, (x - r)^2 - r^2."""
    recon = recon.astype(np.float64)
    if not sp.issparse(v):
        return float(np.sum((v - recon) ** 2))
    coo = v.tocoo()
    r = recon[coo.row, coo.col]
    x = coo.data.astype(np.float64)
    return float(np.sum(recon**2) + np.sum((x - r) ** 2 - r**2))


def pack(a, binary):
    """Bytes of ``a`` for the wire: bit-packed when binary."""
    if binary:
        return np.packbits(a.ravel() != 0)
    return np.ascontiguousarray(a).view(np.uint8).ravel()


def unpack_into(buf, out, binary):
    """Write a received block into ``out`` (a view of shape (m, n))."""
    m, n = out.shape
    if binary:
        out[...] = np.unpackbits(buf, count=m * n).reshape(m, n)
    else:
        out[...] = buf.view(out.dtype).reshape(m, n)


class LoneMesh:
    """The mesh of a worker alone (rank 0 of 1): every exchange is a no-op.
    A ``Trainer`` on it runs a worker's step without peers (to time it, or
    to test it in one process)."""

    rank, size, bytes_sent = 0, 1, 0

    def allgather(self, buf, tag):
        return {}

    def exchange(self, outgoing, tag):
        return {}

    def release(self, peer, buf):
        pass


class Trainer:
    """Worker ``rank``'s slices of the model and its CD step.

    Parameters
    ----------
    mesh : SocketMesh or MPIMesh
        Collectives to the other workers.
    rbm : BernoulliRBM or GaussianBernoulliRBM
        The estimator with its hyper-parameters and epoch count ``n_iter_``.
    state : RBMState
        The full initial state (weights, biases, increments, chains, seed).
    X : ndarray
        Training data: all columns (replicated) or this worker's visible
        block (partitioned).
    strategy : {"replicated", "partitioned"}
    sync_every : int
        Examples between weight synchronisations (replicated).
    n_threads : int
        OpenMP threads of the kernels.
    """

    def __init__(self, mesh, rbm, state, X, strategy, sync_every, n_threads):
        self.mesh, self.rbm, self.state, self.X = mesh, rbm, state, X
        self.strategy, self.sync_every, self.n_threads = strategy, sync_every, n_threads
        k, K = mesh.rank, mesh.size
        W = state.components
        n_hid, n_vis = W.shape
        groups = softmax_groups_array(rbm)
        self.hb, self.vb = blocks(n_hid, K), visible_blocks(n_vis, K, groups)
        self.h0, self.h1 = self.hb[k], self.hb[k + 1]
        self.v0, self.v1 = self.vb[k], self.vb[k + 1]
        hs, vs = slice(self.h0, self.h1), slice(self.v0, self.v1)
        def copy(a):
            return np.array(a, order="C", copy=True)
        self.P, self.P_inc = copy(W[:, vs]), copy(state.components_inc[:, vs])
        if strategy == "replicated":
            self.G, self.G_inc = copy(W[hs]), copy(state.components_inc[hs])
        self.b, self.b_inc = copy(state.intercept_visible[vs]), copy(state.visible_inc[vs])
        self.c, self.c_inc = copy(state.intercept_hidden[hs]), copy(state.hidden_inc[hs])
        # The softmax groups among the own columns (visible_blocks keeps
        # each group on one worker), numbered from the own first column.
        self.groups = None
        if groups is not None:
            own = groups[(groups[:, 0] >= self.v0) & (groups[:, 1] <= self.v1)]
            self.groups = np.ascontiguousarray(own - self.v0) if own.size else None
        # The visible unit type, of all columns and of the own ones.
        self.visible = state.visible
        self.sigma_k = copy(state.sigma[vs])
        self.visible_k = visible_units(self.sigma_k)
        # The workers' kernels take the chain example by example.
        self.chain = state.chains = np.ascontiguousarray(state.chains)
        self.since_sync = 0
        self.n_steps = 0
        # The chain of a minibatch, as the fused step runs it, and the
        # step's options (the momentum is the epoch's).
        params = CDParams.of(rbm)
        self.options = params.step_options(momentum=0.0, key=0, n_threads=n_threads)
        self.phases = _distributed.chain_phases(self.options)
        self.learn_sigma = params.learn_sigma
        # A learned sigma forms each weight gradient in scratch first (as
        # the fused step's ``grad`` buffer): kept, not allocated per step.
        self.grad = self.grad_green = None
        if self.learn_sigma:
            self.grad = np.empty_like(self.P)
            if strategy == "replicated":
                self.grad_green = np.empty_like(self.G)
        self.hidden_mean = np.array(state.hidden_mean, copy=True)
        # The centred gradient: visible offsets (the data's means) and the
        # hidden offsets of all units, which every worker moves alike.
        self.centering = params.centering
        self.offsets = np.zeros(0, W.dtype)
        if self.centering:
            self.mu = np.asarray(rbm.visible_means_, dtype=W.dtype)
            self.offsets = (np.full(n_hid, 0.5, W.dtype) if state.hidden_offsets is None
                            else np.array(state.hidden_offsets, copy=True))

    # -- collectives on column blocks -------------------------------------
    def _gather(self, own, full, bounds, binary, tag):
        """All-gather column blocks: ``own`` is this worker's block of
        ``full`` (m, n); the others' blocks are written into ``full``."""
        k = self.mesh.rank
        full[:, bounds[k]:bounds[k + 1]] = own
        for peer, buf in self.mesh.allgather(pack(own, binary), tag).items():
            unpack_into(buf, full[:, bounds[peer]:bounds[peer + 1]], binary)
            self.mesh.release(peer, buf)

    def _hidden_input(self, u, out, tag):
        """Total input of the own hidden units, u being all visible columns
        (replicated) or the own ones (partitioned)."""
        if self.strategy == "replicated":
            self._product(u, self.G, out)
            return
        partial = np.empty((out.shape[0], self.P.shape[0]), out.dtype)
        self._product(u, self.P, partial)
        k = self.mesh.rank
        outgoing = {p: np.ascontiguousarray(partial[:, self.hb[p]:self.hb[p + 1]]).view(np.uint8)
                    for p in range(self.mesh.size) if p != k}
        received = self.mesh.exchange(outgoing, tag)
        # Sum in rank order, so that every run adds the same way.
        out[...] = 0
        for p in range(self.mesh.size):
            if p == k:
                out += partial[:, self.h0:self.h1]
            else:
                out += received[p].view(out.dtype).reshape(out.shape)
                self.mesh.release(p, received[p])

    def _product(self, u, W, out):
        """out = u @ W.T, for u dense or Columns."""
        if isinstance(u, tuple):
            _inference.sparse_input(u, W, out, self.n_threads)
        else:
            _distributed.input_product(u, W, out, self.n_threads)

    def _u_space(self, v):
        """(u = v / sigma of the columns this worker multiplies, the own
        columns of v, the own columns of u); u as Columns (``_csr.columns``)
        for sparse rows."""
        dtype = self.P.dtype
        if sp.issparse(v):
            if self.strategy == "replicated":
                v_own = v[:, self.v0:self.v1]
                return (columns(v, dtype, self.visible), v_own,
                        columns(v_own, dtype, self.visible_k))
            u = columns(v, dtype, self.visible_k)
            return u, v, u
        if self.strategy == "replicated":
            u = np.ascontiguousarray(self.visible.to_input(v))
            return u, v[:, self.v0:self.v1], np.ascontiguousarray(u[:, self.v0:self.v1])
        u = np.ascontiguousarray(self.visible_k.to_input(v))
        return u, v, u

    def reconstruction_error(self, v):
        """Squared error, over the own visible columns, of the mean-field
        reconstruction of ``v``: the progress measure of single-process PCD."""
        u, v_own, _ = self._u_space(v)
        m, dtype = v.shape[0], self.P.dtype
        hid = np.empty((m, self.h1 - self.h0), dtype)
        self._hidden_input(u, hid, _TAG_SUM)
        _distributed.hidden_from_input(hid, self.c, hidden_unit=hidden_unit_code(self.rbm))
        full = np.empty((m, self.P.shape[0]), dtype)
        self._gather(hid, full, self.hb, False, _TAG_POS)
        recon = np.empty((m, self.v1 - self.v0), dtype)
        _inference.visible_given_hidden(full, self.P, self.b, self.sigma_k, recon,
                                        n_threads=self.n_threads, col0=self.v0,
                                        groups=self.groups)
        return squared_error(v_own, recon)

    # -- one minibatch ------------------------------------------------------
    def _up(self, phase, u, act, stats, chain, key, tag):
        """A hidden phase: the own hidden units given the visibles ``u`` into
        ``act``; their samples all-gathered into ``chain`` if the phase
        advances it, and its statistics into ``stats`` (all hidden units)."""
        rbm = self.rbm
        sampled = rbm.sampled_statistics
        unit = hidden_unit_code(rbm)
        # Samples of Bernoulli hidden units travel as bits.
        binary = unit == UNIT_CODES["bernoulli"]
        self._hidden_input(u, act, _TAG_SUM)
        samples = np.empty_like(act) if phase["advance"] else None
        _distributed.hidden_from_input(act, self.c, samples=samples, sampled=sampled,
                                       sign=phase["sign"], draw=(key, phase["stream"]),
                                       col0=self.h0, hidden_unit=unit)
        if samples is not None:
            self._gather(samples, chain, self.hb, binary, tag)
        if not phase["statistics"]:
            return
        if sampled and samples is not None:
            # The statistics are the samples just gathered, signed.
            np.multiply(chain, phase["sign"], out=stats)
        elif sampled and binary and phase["sign"] < 0:
            # Bits travel unsigned: gather the samples, then negate.
            self._gather(-act, stats, self.hb, True, tag)
            np.negative(stats, out=stats)
        else:
            self._gather(act, stats, self.hb, sampled and binary, tag)

    def _down(self, phase, chain, key, v_own, recon, full):
        """A visible phase: the own visible columns given the chain into
        ``recon`` (u-space), all-gathered into ``full`` (replicated).
        Returns the squared error against the data if the phase measures it."""
        rbm = self.rbm
        draw = (key, phase["stream"]) if rbm.sample_visible else None
        _inference.visible_given_hidden(chain, self.P, self.b, self.sigma_k, recon, draw,
                                        self.n_threads, col0=self.v0, u_space=True,
                                        groups=self.groups)
        error = None
        if phase["measure"]:
            error = squared_error(v_own, self.visible_k.from_input(recon))
        if full is not None:
            binary = self.visible.binary and rbm.sample_visible
            self._gather(recon, full, self.vb, binary, _TAG_VIS)
        return error

    def step(self, v, key, momentum):
        """One CD-k / PCD update on minibatch ``v``; returns the own
        visible columns' squared reconstruction error.

        The phases are the fused step's (``_distributed.chain_phases``), with
        the exchanges between them: a hidden phase computes the own hidden
        units and all-gathers their samples when they advance the chain and
        their statistics; a visible phase computes the own visible columns
        and, replicated, all-gathers them.
        """
        rbm = self.rbm
        m, dtype = v.shape[0], self.P.dtype
        n_hid = self.P.shape[0]
        before = self._centring_terms() if self.centering else None
        n_own_h = self.h1 - self.h0
        u0, v_own, u0_own = self._u_space(v)
        # Hidden states driving the negative phase: the persistent fantasy
        # particles (updated in place), or the samples of this step.
        chain = self.chain[:m] if rbm.persistent else np.empty((m, n_hid), dtype)
        # Own hidden units (rows :m the data's, m:2m the chain's) and the
        # statistics of all hidden units.
        hid_own = np.empty((2 * m, n_own_h), dtype)
        hid_full = np.empty((2 * m, n_hid), dtype)
        vis_full = (np.empty((2 * m, self.vb[-1]), dtype) if self.strategy == "replicated"
                    else None)
        vis_own = np.empty((2 * m, self.v1 - self.v0), dtype)
        # Sparse data stay Columns (``data``): the updates read them there.
        data = (u0, u0_own) if sp.issparse(v) else None
        if data is None:
            vis_own[:m] = u0_own
            if vis_full is not None:
                vis_full[:m] = u0
        u1 = vis_full[m:] if vis_full is not None else vis_own[m:]
        error = 0.0
        for phase in self.phases:
            if phase["kind"] == "down":
                measured = self._down(phase, chain, key, v_own, vis_own[m:],
                                      None if vis_full is None else vis_full[m:])
                error = error if measured is None else measured
            elif phase["kind"] == "up_data":
                self._up(phase, u0, hid_own[:m], hid_full[:m], chain, key, _TAG_POS)
            else:
                self._up(phase, u1, hid_own[m:], hid_full[m:], chain, key, _TAG_NEG)

        if rbm.sparsity_cost > 0:
            # Every worker holds all positive statistics and the running
            # means of all hidden units: each applies the same penalty.
            _distributed.sparsity_penalty(hid_full[:m], self.hidden_mean,
                                          rbm.sparsity_target, rbm.sparsity_cost)
            hid_own[:m] = hid_full[:m, self.h0:self.h1]
        self._update(hid_own, hid_full, vis_own, vis_full, m, momentum, data)
        if before is not None:
            self._centre(before, hid_full[:m])
        self.since_sync += m
        self.n_steps += 1
        if self.strategy == "replicated" and self.since_sync >= self.sync_every:
            self.synchronise()
        return error

    def _update(self, hid_own, hid_full, vis_own, vis_full, m, momentum, data=None):
        """The fused step's updates: purple (and green) weights, own biases
        and, when learned, own sigma (all-gathered when replicated).
        ``data``: (all columns, own columns) of a sparse minibatch as
        Columns, which stand for the first m rows of ``vis_full``, ``vis_own``."""
        u0, u0_own = (None, None) if data is None else data
        rbm, n_threads, dtype = self.rbm, self.n_threads, vis_own.dtype
        options = dict(self.options, momentum=momentum)
        sigma_parts = ()
        if self.learn_sigma:
            s_data = np.zeros(vis_own.shape[1])
            _distributed.sigma_gradient_parts(vis_own, m, self.b, self.sigma_k,
                                              rbm.sample_visible, s_data)
            wg = np.zeros((n_threads, vis_own.shape[1]))
            sigma_parts = (self.grad, wg)
        _distributed.apply_gradient(self.P, self.P_inc, hid_full, vis_own, m, options,
                                    *sigma_parts, pos=u0_own)
        if self.strategy == "replicated":
            # The green copy follows the purple rule (its sigma terms unused).
            green_parts = (self.grad_green, np.zeros((n_threads, self.G.shape[1]))) \
                if self.learn_sigma else ()
            _distributed.apply_gradient(self.G, self.G_inc, hid_own, vis_full, m, options,
                                        *green_parts, pos=u0)
        lr = rbm.learning_rate
        _distributed.apply_bias_gradient(self.c, self.c_inc, hid_own, m, False,
                                         np.zeros(0, dtype), lr, momentum)
        _distributed.apply_bias_gradient(self.b, self.b_inc, vis_own, m, True, self.sigma_k,
                                         lr, momentum, pos=u0_own)
        if self.learn_sigma:
            _distributed.apply_sigma_gradient(self.sigma_k, s_data, wg, m, options)
            if self.strategy == "replicated":
                self._gather(self.sigma_k[None], self.state.sigma[None], self.vb, False,
                             _TAG_SIGMA)

    def _offsets_input(self):
        """The visible offsets as the one row of visibles that
        :meth:`_hidden_input` multiplies (all columns or the own ones)."""
        mu = self.mu if self.strategy == "replicated" else self.mu[self.v0:self.v1]
        return np.ascontiguousarray(mu[None])

    def _centring_terms(self):
        """What the centred update needs from before the plain one: the own
        biases, (W mu) of the own hidden units and (lambda W) of the own
        visible columns."""
        w_mu = np.empty((1, self.h1 - self.h0), self.P.dtype)
        self._hidden_input(self._offsets_input(), w_mu, _TAG_SUM)
        return self.b.copy(), self.c.copy(), w_mu[0], self.offsets @ self.P

    def _centre(self, before, positive):
        """The centred gradient (``RBMState._centred_step``) on the blocks:
        W -= dc mu^T + lambda db^T, the biases absorb the offsets' share, and
        lambda follows the mean ``positive`` statistics of all hidden units."""
        b0, c0, w_mu, lam_w = before
        db, dc_own = self.b - b0, self.c - c0
        dc = np.empty((1, self.P.shape[0]), self.P.dtype)
        self._gather(dc_own[None], dc, self.hb, False, _TAG_CENTRE)
        ger = _scipy_blas.sger if self.P.dtype == np.float32 else _scipy_blas.dger
        mu_own, lam = self.mu[self.v0:self.v1], self.offsets
        if self.P.shape[1]:
            ger(-1.0, mu_own, dc[0], a=self.P.T, overwrite_a=True)
            ger(-1.0, db, lam, a=self.P.T, overwrite_a=True)
        if self.strategy == "replicated":
            db_all = np.empty((1, self.vb[-1]), self.P.dtype)
            self._gather(db[None], db_all, self.vb, False, _TAG_CENTRE)
            if self.G.shape[0]:
                ger(-1.0, self.mu, dc_own, a=self.G.T, overwrite_a=True)
                ger(-1.0, db_all[0], lam[self.h0:self.h1], a=self.G.T, overwrite_a=True)
        self.b -= lam @ self.P - lam_w
        w_mu_new = np.empty((1, self.h1 - self.h0), self.P.dtype)
        self._hidden_input(self._offsets_input(), w_mu_new, _TAG_SUM)
        self.c -= w_mu_new[0] - w_mu
        lam += _OFFSET_RATE * (positive.mean(axis=0) - lam)

    def synchronise(self):
        """Copy the canonical (purple) weights over the green copies (§4.2)."""
        self.since_sync = 0
        if self.strategy != "replicated" or self.mesh.size == 1:
            return
        k = self.mesh.rank
        for source, target in ((self.P, self.G), (self.P_inc, self.G_inc)):
            outgoing = {p: np.ascontiguousarray(source[self.hb[p]:self.hb[p + 1]]).view(np.uint8)
                        for p in range(self.mesh.size) if p != k}
            for p, buf in self.mesh.exchange(outgoing, _TAG_SYNC).items():
                block = target[:, self.vb[p]:self.vb[p + 1]]
                block[...] = buf.view(target.dtype).reshape(block.shape)
                self.mesh.release(p, buf)
            target[:, self.v0:self.v1] = source[self.h0:self.h1]

    # -- epochs -------------------------------------------------------------
    def run_epochs(self, n_epochs, report):
        """``n_epochs`` passes over the data, in the single-process order of
        minibatches; ``report(epoch, squared error, rows)`` after each: the
        first reconstructions of the epoch (CD) or the mean-field
        reconstruction of its last minibatch (PCD), as in single-process
        training."""
        rbm, state = self.rbm, self.state
        n_samples = self.X.shape[0]
        batch_size = min(rbm.batch_size, n_samples)
        dtype = state.dtype
        if state.chains.shape[0] < batch_size:
            self.chain = state.chains = np.resize(state.chains, (batch_size, self.P.shape[0]))

        def begin_epoch(epoch):
            momentum = momentum_at(rbm.momentum, epoch)
            if momentum == 0 and rbm.weight_decay == 0:
                self.P_inc.fill(0)
                if self.strategy == "replicated":
                    self.G_inc.fill(0)
            return momentum

        def step(batch, epoch, index, momentum):
            v = minibatch(batch, dtype, not self.learn_sigma)
            return self.step(v, _streams.minibatch_key(state.seed, epoch, index), momentum)

        def end_epoch(epoch, sq_error, last):
            rbm.n_iter_ += 1
            if rbm.persistent:
                v = minibatch(last, dtype, True)
                report(epoch, self.reconstruction_error(v), v.shape[0])
            else:
                report(epoch, sq_error, n_samples)

        train_epochs(self.X, n_epochs, seed=state.seed, first_epoch=rbm.n_iter_,
                     batch_size=rbm.batch_size, begin_epoch=begin_epoch, step=step,
                     end_epoch=end_epoch)
        # No final synchronisation: the coordinator keeps only the canonical
        # (purple) slices, and the next fit starts from them.

    def blocks(self):
        """This worker's canonical blocks, in the order of ``RBMState.BLOCKS``."""
        return [self.P, self.P_inc, self.b, self.b_inc, self.c, self.c_inc, self.chain,
                self.sigma_k, self.hidden_mean, self.offsets]

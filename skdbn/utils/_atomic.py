"""All-or-nothing fits: a fit that raises leaves the estimator as it was."""

import contextvars
import functools

import numpy as np
from sklearn.base import BaseEstimator

# Estimators already captured by an enclosing atomic call (a DBN's
# partial_fit captures its RBMs): their own partial_fit need not copy again.
_captured = contextvars.ContextVar("skdbn_captured", default=frozenset())


def atomic_fit(fresh):
    """Decorator of a fitting method: on any exception, restore the estimator.

    Parameters
    ----------
    fresh : bool
        True for a method that builds its fitted state in new objects (``fit``):
        the previous state is then only referenced, never copied, so a fit
        costs no memory for its safety net. False for one that updates the
        fitted state in place (``partial_fit``): its arrays are copied
        first (once per call, never per minibatch) and copied back into the
        same objects on failure, so references a caller holds stay valid.
    """

    def decorator(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            outer = _captured.get()
            if id(self) in outer:
                return method(self, *args, **kwargs)
            saved = _shallow(self) if fresh else _capture(self)
            token = _captured.set(outer | _estimators(saved))
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                # KeyboardInterrupt too: an interrupted fit must not leave
                # half-updated weights behind.
                _restore(saved)
                raise
            finally:
                _captured.reset(token)

        return wrapper

    return decorator


def _estimators(record):
    """Ids of the estimators whose whole state ``record`` can restore."""
    kind = record[0]
    if kind == "estimator" and record[3]:
        return frozenset({id(record[1])}).union(*map(_estimators, record[3].values()))
    if kind == "list":
        return frozenset().union(*map(_estimators, record[3]))
    return frozenset()


def _shallow(estimator):
    return ("estimator", estimator, dict(estimator.__dict__), {})


def _capture(obj):
    """A record from which :func:`_restore` puts ``obj`` back as it is now."""
    if isinstance(obj, np.ndarray):
        # Read-only arrays (e.g. a memory-mapped model) cannot change.
        return ("array", obj, obj.copy() if obj.flags.writeable else None)
    if isinstance(obj, list):
        return ("list", obj, list(obj), [_capture(item) for item in obj])
    if callable(getattr(obj, "snapshot", None)) and callable(getattr(obj, "restore", None)):
        # An object that copies itself (skdbn._state.RBMState).
        return ("snapshot", obj, obj.snapshot())
    if isinstance(obj, BaseEstimator):
        state = dict(obj.__dict__)
        return ("estimator", obj, state, {k: _capture(v) for k, v in state.items()})
    return ("other", obj)


def _restore(record):
    kind, obj = record[0], record[1]
    if kind == "array":
        if record[2] is not None:
            np.copyto(obj, record[2])
    elif kind == "snapshot":
        obj.restore(record[2])
    elif kind == "list":
        obj[:] = record[2]
        for item in record[3]:
            _restore(item)
    elif kind == "estimator":
        obj.__dict__.clear()
        obj.__dict__.update(record[2])
        for item in record[3].values():
            _restore(item)

"""skdbn: Restricted Boltzmann Machines and Deep Belief Networks for scikit-learn."""

from . import metrics
from ._rbm import BernoulliRBM, GaussianBernoulliRBM

__version__ = "0.1.0.dev0"

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "metrics", "__version__"]

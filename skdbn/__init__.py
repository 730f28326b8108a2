"""skdbn: Restricted Boltzmann Machines and Deep Belief Networks for scikit-learn."""

from ._rbm import BernoulliRBM, GaussianBernoulliRBM

__version__ = "0.1.0.dev0"

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "__version__"]

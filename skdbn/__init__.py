"""skdbn: Restricted Boltzmann Machines and Deep Belief Networks for scikit-learn."""

from . import metrics, neighbors
from ._autoencoder import DBNAutoencoder
from ._dbn import DBNTransformer
from ._dbn_classifier import DBNClassifier
from ._mlp import PretrainedMLPClassifier
from ._patches import merge_patch_rbms
from ._rbm import BernoulliRBM, GaussianBernoulliRBM
from ._replicated_softmax import ReplicatedSoftmaxRBM
from ._zca import ZCAWhitener
from .distributed import DistributedFit
from .utils import show_versions

__version__ = "0.1.0.dev0"

__all__ = [
    "BernoulliRBM",
    "DBNAutoencoder",
    "DBNClassifier",
    "DBNTransformer",
    "DistributedFit",
    "GaussianBernoulliRBM",
    "PretrainedMLPClassifier",
    "ReplicatedSoftmaxRBM",
    "ZCAWhitener",
    "merge_patch_rbms",
    "metrics",
    "neighbors",
    "show_versions",
    "__version__",
]

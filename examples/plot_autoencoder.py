"""
=======================================================
Deep autoencoder: non-linear dimensionality reduction
=======================================================

A :class:`~skdbn.DBNAutoencoder` pretrains a stack of RBMs, unrolls it into
an encoder and a mirrored decoder, and fine-tunes the whole network by
backpropagation of the reconstruction error (Hinton & Salakhutdinov, 2006).
Its top layer has linear (Gaussian) units, so the code is a real vector like
PCA's, but the map to it is non-linear. On scikit-learn's 8x8 digits this
example compares it with :class:`~sklearn.decomposition.PCA` of the same
dimension: reconstructions of held-out digits from 10-D codes, and the 2-D
codes of the test digits coloured by class (the paper's picture, on a small
data set).
"""

# %%
# Data: the digits scaled to [0, 1], a stratified 75/25 split.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skdbn import DBNAutoencoder

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)


def squared_error(X, X_rec):
    """Squared error per image, summed over the pixels, mean over images."""
    return float(np.mean(np.sum((X_rec - X) ** 2, axis=1)))


# %%
# 10-D codes
# ----------
# Three RBMs of 128, 64 and 10 units (the last with linear units), then 100
# epochs of Adam on the unrolled 64-128-64-10-64-128-64 network.
autoencoder = DBNAutoencoder((128, 64, 10), pretrain_n_iter=20, learning_rate_init=3e-3,
                             max_iter=100, random_state=0).fit(X_train)
pca = PCA(10).fit(X_train)
reconstructions = {
    "test digits": X_test,
    "DBNAutoencoder, 10-D": autoencoder.inverse_transform(autoencoder.transform(X_test)),
    "PCA, 10-D": pca.inverse_transform(pca.transform(X_test)),
}
for name, X_rec in list(reconstructions.items())[1:]:
    print(f"{name}: squared error per test digit {squared_error(X_test, X_rec):.3f}")

fig_rec, axes = plt.subplots(3, 10, figsize=(8, 2.8))
for row, (name, X_rec) in zip(axes, reconstructions.items()):
    for ax, image in zip(row, X_rec):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name.split(",")[0], fontsize=7, rotation=0, ha="right", va="center")
fig_rec.suptitle("Reconstructions of held-out digits from 10 numbers")
fig_rec.tight_layout()

# %%
# 2-D codes
# ---------
# The same with a 2-D code layer: the autoencoder separates the classes far
# better than the first two principal components.
autoencoder_2d = DBNAutoencoder((128, 64, 2), pretrain_n_iter=20, learning_rate_init=3e-3,
                                max_iter=100, random_state=0).fit(X_train)
pca_2d = PCA(2).fit(X_train)
fig_codes, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (name, model) in zip(axes, [("DBNAutoencoder", autoencoder_2d), ("PCA", pca_2d)]):
    codes = model.transform(X_test)
    error = squared_error(X_test, model.inverse_transform(codes))
    points = ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=8)
    ax.set_title(f"{name}: 2-D codes of the test digits\n"
                 f"(squared error per digit {error:.2f})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig_codes.colorbar(points, ax=axes, ticks=range(10), label="digit")

if __name__ == "__main__":
    fig_rec.savefig("autoencoder_reconstructions.png", dpi=100)
    fig_codes.savefig("autoencoder_codes.png", dpi=100)
    plt.show()

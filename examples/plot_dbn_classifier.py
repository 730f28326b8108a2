"""
=====================================================
A generative classifier of digits: images and labels
=====================================================

:class:`skdbn.DBNClassifier` is the Deep Belief Network of Hinton, Osindero
& Teh (2006) that models images and their labels together: RBMs stacked on
the pixels without labels, then a top RBM whose visible layer is the last
feature layer joined with one softmax group of ten label units. It
recognises a digit by an up-pass to the top RBM's features ``h`` and the
label of lowest free energy, ``p(y | h) ∝ exp(-F(h, y))``, and it generates
a digit of a chosen class by letting the top RBM's Gibbs chain run with
that label clamped, then a top-down pass to the pixels.

This example trains a 64-300-800 network (plus the ten label units) on
80 % of scikit-learn's digits, greedily and then by 40 epochs of up-down
fine-tuning, shows the confusion matrix on the other 20 %, and draws ten
digits of each class.
"""

# %%
# Data and model. ``n_jobs=1``: on 8x8 digits the matrix products are too
# small for threads.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from skdbn import DBNClassifier

begin = time.perf_counter()
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, stratify=y, random_state=0)

clf = DBNClassifier(hidden_layer_sizes=(300, 800), n_iter=[20, 80], momentum="schedule",
                    learning_rate=0.05, up_down_learning_rate=0.01, n_jobs=1,
                    random_state=0).fit(X_train, y_train)
baseline = LogisticRegression(max_iter=2000).fit(X_train, y_train)
print(f"DBNClassifier after greedy training:  {clf.score(X_test, y_test):.3f}")

# %%
# Up-down fine-tuning with the labels, one epoch per ``partial_fit`` call,
# with three Gibbs steps in the top RBM as in the paper.
clf.rbms_[-1].set_params(cd_k=3)
for epoch in range(40):
    clf.partial_fit(X_train, y_train)
print(f"DBNClassifier after 40 up-down epochs: {clf.score(X_test, y_test):.3f}")
print(f"logistic regression on the pixels:     {baseline.score(X_test, y_test):.3f}")

# %%
# Generation: 200 Gibbs steps in the top RBM per chain, with the label
# clamped, then the top-down pass. The logistic regression, which never saw
# the DBN, says which digits the samples look like.
labels = np.repeat(clf.classes_, 10)
samples = clf.sample(len(labels), y=labels, n_gibbs=200, random_state=0)
agree = np.mean(baseline.predict(samples) == labels)
print(f"samples classified as their clamped label by the logistic regression: {agree:.2f}")
print(f"example run time: {time.perf_counter() - begin:.0f} s")

# %%
# The confusion matrix, and one row of samples per clamped label.
fig = plt.figure(figsize=(11, 5.5))
ax = fig.add_subplot(1, 2, 1)
ConfusionMatrixDisplay.from_predictions(y_test, clf.predict(X_test), ax=ax, colorbar=False)
ax.set_title("test digits")
grid = samples.reshape(10, 10, 8, 8).transpose(0, 2, 1, 3).reshape(80, 80)
ax = fig.add_subplot(1, 2, 2)
ax.imshow(grid, cmap="gray_r", interpolation="nearest")
ax.set_xticks([])
ax.set_yticks(np.arange(4, 80, 8), [str(c) for c in clf.classes_])
ax.set_ylabel("clamped label")
ax.set_title("generated digits")
fig.tight_layout()
if __name__ == "__main__":
    fig.savefig("dbn_classifier.png", dpi=100)

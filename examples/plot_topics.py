"""
===================================================
Topics of documents with a Replicated Softmax model
===================================================

A :class:`~skdbn.ReplicatedSoftmaxRBM` learns topics from word counts. The
documents here are drawn from six known topics (each a word distribution
that favours its own dozen words), one or two topics per document, so that
what the model finds can be checked: the words each hidden unit raises most
are printed, and the documents' topic posteriors place them on a map (their
first two principal components) coloured by their main topic. The same
pipeline takes real text through
:class:`~sklearn.feature_extraction.text.CountVectorizer`; the Results page
measures it on a labelled corpus against scikit-learn's
:class:`~sklearn.decomposition.LatentDirichletAllocation`.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from skdbn import ReplicatedSoftmaxRBM

TOPICS = {
    "cooking": "oven bake flour sugar butter recipe dough roast salt pepper simmer sauce",
    "football": "goal match team league striker referee penalty season coach stadium fans kick",
    "computing": "kernel compiler memory thread cache python code bug server disk cpu linux",
    "astronomy": "star planet orbit galaxy telescope comet moon solar nebula light gravity sky",
    "gardening": "soil seed plant water rose compost prune bloom weed garden leaf root",
    "music": "guitar chord melody drum song band concert piano rhythm tune album note",
}
COMMON = "the a of and to in is it that for on with as was at by this from but".split()

rng = np.random.RandomState(0)
names = list(TOPICS)
texts, main_topic = [], []
for _ in range(1500):
    k = rng.randint(len(names))
    mix = [k] if rng.uniform() < 0.6 else [k, rng.randint(len(names))]
    words = []
    for _ in range(rng.poisson(30) + 5):
        if rng.uniform() < 0.3:
            words.append(rng.choice(COMMON))
        else:
            words.append(rng.choice(TOPICS[names[rng.choice(mix)]].split()))
    texts.append(" ".join(words))
    main_topic.append(names[k])
main_topic = np.array(main_topic)

vectorizer = CountVectorizer()
counts = vectorizer.fit_transform(texts)  # sparse word counts, as they come
model = ReplicatedSoftmaxRBM(n_components=12, random_state=0)
posteriors = model.fit_transform(counts)

vocabulary = vectorizer.get_feature_names_out()
print("The words each hidden unit raises most:")
for j in range(model.n_components):
    top = np.argsort(model.components_[j])[::-1][:6]
    print(f"  unit {j:2d}: {' '.join(vocabulary[top])}")

accuracy = cross_val_score(LogisticRegression(max_iter=1000), posteriors, main_topic,
                           cv=3).mean()
print(f"\nmain topic from the posteriors: accuracy {accuracy:.2f} (chance about "
      f"{1 / len(names):.2f})")

xy = PCA(n_components=2, random_state=0).fit_transform(posteriors)
fig, ax = plt.subplots(figsize=(7, 6))
for name in names:
    sel = main_topic == name
    ax.scatter(xy[sel, 0], xy[sel, 1], s=8, label=name, alpha=0.6)
ax.set_title("Documents by their topic posteriors (first two principal components)")
ax.legend(fontsize=8, markerscale=2)
fig.tight_layout()
fig.savefig("topics.png")

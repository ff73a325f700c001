"""Tiny text models written by the tests: a random BERT and its tokenizer in a
folder, read through ``model="hf:<folder>"`` (no hub, no download), and small
labeled texts."""

import numpy as np

POSITIVE = ["good", "great", "fine", "nice", "happy", "love", "best", "superb"]
NEGATIVE = ["bad", "awful", "poor", "sad", "hate", "worst", "ugly", "boring"]
NEUTRAL = ["the", "a", "movie", "film", "was", "is", "this", "plot", "very", "and",
           "book", "story", "really", "quite", "it"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_tiny_bert(folder, *, n_layers=2, hidden=32, seed=0):
    """A random ``BertModel`` and a ``BertTokenizerFast`` saved in ``folder``;
    returns the folder."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    words = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL
    config = transformers.BertConfig(
        vocab_size=len(words), hidden_size=hidden,
        num_hidden_layers=n_layers, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=64)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder)
    vocab = {word: i for i, word in enumerate(words)}
    try:  # transformers 5 takes the vocabulary itself
        tokenizer = transformers.BertTokenizerFast(vocab=vocab, do_lower_case=True)
    except TypeError:  # transformers 4: a vocab.txt file
        (folder / "vocab.txt").write_text("\n".join(words) + "\n")
        tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    assert tokenizer("good movie")["input_ids"][1] == vocab["good"], "vocabulary not read"
    tokenizer.save_pretrained(folder)
    return folder


def sentiment_texts(n=48, seed=0):
    """``n`` short texts, half built of positive words (label 1), half of
    negative ones (label 0), with neutral filler."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(POSITIVE if label else NEGATIVE, size=2))
        words += list(rng.choice(NEUTRAL, size=int(rng.integers(2, 6))))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)

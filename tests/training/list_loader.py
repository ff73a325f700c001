"""A loader over an in-memory tensor with the two methods the batch helpers call
(``batches`` and ``prepare``), shared by test_steps and test_batches."""


class ListLoader:
    def __init__(self, data):
        self.data = data

    def batches(self, batch_size, indices):
        for start in range(0, len(indices), batch_size):
            yield self.data[indices[start:start + batch_size]]

    def prepare(self, batch, augment=None):
        return batch

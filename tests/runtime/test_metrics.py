"""The commit-latency histogram only grows: each scrape adds the batches committed since the
last one, never re-counts a batch, and never forgets one it saw."""

from perpetua.runtime.metrics import _CommitHistogram

MS = 1_000_000


def _buckets(histogram: _CommitHistogram) -> dict[str, float]:
    metric = histogram.metric()
    return {s.labels["le"]: s.value for s in metric.samples if s.name.endswith("_bucket")}


def test_counts_grow_by_the_new_batches_only() -> None:
    histogram = _CommitHistogram()
    histogram.add_new(2, [3 * MS, 30 * MS])
    assert histogram.count == 2 and _buckets(histogram)["0.005"] == 1.0
    histogram.add_new(2, [3 * MS, 30 * MS])  # nothing new: nothing added
    assert histogram.count == 2
    # one more batch; the sequencer's window dropped the oldest sample meanwhile
    histogram.add_new(3, [30 * MS, 400 * MS])
    assert histogram.count == 3 and histogram.sum_ns == 433 * MS
    assert _buckets(histogram) == {**_buckets(histogram), "0.5": 3.0, "+Inf": 3.0}
    before = _buckets(histogram)
    histogram.add_new(10, [1 * MS])  # more batches than the window kept: counts what it has
    after = _buckets(histogram)
    assert histogram.count == 4 and all(after[k] >= before[k] for k in before)

"""The sequencer: the single writer that numbers, journals, applies and releases commands.

Modules: `sequencer` (the `Sequencer`: threads, submitting, stopping, failure), `intake` (the
bounded input queue and run state), `writer` (stamps, numbers and applies commands),
`committer` (makes batches durable, then releases and publishes them), `config` (limits,
statistics, the journal protocol and `NullJournal`).

Threads (all daemon threads named ``perpetua-sequencer-*``):
    writer      takes commands from the bounded input queue in batches; for each command runs
                the timers due by now (scheduler), stamps ``ts_ns`` (monotonic), encodes it,
                assigns the next seq and applies it to the engine. It alone touches the engine.
    committer   appends each batch's records to the journal, commits (one write, one fsync under
                FsyncPolicy.ALWAYS), then publishes the batch to the subscribers and only then
                resolves its results (so whoever a result reaches can read views that hold it),
                batch after batch in seq order. It alone touches the journal.
    snapshotter writes snapshots handed over by the committer, verifies them by restoring
                them, then prunes old snapshots and the journal segments they cover
                (`perpetua.sequencer.snapshotter`).

Pipelining: the writer may apply up to ``pipeline_batches_max`` batches ahead of the last
durable one (2: it applies batch N+1 while N is being synced, which is where a Python writer
gets its time back from fsync, as fsync releases the GIL). 1 disables pipelining.

Crash safety (the invariant: nothing that depends on a command leaves the process before the
command is durable)
    - A result is resolved and a batch published only by the committer, after
      ``journal.commit()`` returned for every record in it. Under FsyncPolicy.ALWAYS that means
      synced (see `journal`); results of batch N+1 wait for N+1's own commit.
    - The engine may run ahead of the journal by the pipelined batches. That state is visible
      to nobody (no result, no event, no snapshot) until its records are durable: the writer
      takes a snapshot image between batches, but the committer hands it to the snapshotter
      only after the batch that ends at its seq is durable.
    - Journal segments are pruned only below the oldest kept snapshot, and only after the new
      snapshot was read back and restored to its recorded state hash.
    - A command whose ``apply`` raises is a programmer error: it is not journaled (so replay does
      not crash on it again), the commands before it in its batch are committed and released,
      everything after it is failed with `SequencerFailed`, and the sequencer stops. A journal
      error fails the sequencer the same way (the file state is unknown: restart and recover).
      Either way ``on_failure`` is called and the failure logged at CRITICAL: the process must
      restart (snapshot + replay), as architecture §7 says.

Backpressure (architecture §7): at ``queue_depth_max`` waiting commands, new PlaceOrder,
AmendOrder and Batch commands are refused at once with `Overloaded` (the gateway answers 503).
Cancels, CancelAllAfter and internal commands (deposits, withdrawals, index prices, ...) are
never refused for load: they are admitted up to ``queue_depth_hard_max``, and past that their
submitter waits for room (the queue stays bounded). Commands keep their arrival order.

Results: ``submit`` returns a future of ``Result(seq, ts_ns, events)`` (an asyncio future when
called on an event loop, so the gateway writes ``await sequencer.submit(cmd)``). Subscribers
get ``(seq, ts_ns, command, events)`` per durable command (`subscribe`) or ``list[Applied]`` per
durable batch (`subscribe_batches`), in seq order, on the committer thread. They must be quick
and must not raise or block (hand work to your own queue): a subscriber that raises fails the
sequencer, one that blocks stalls every result behind it. Events lists are shared: never mutate.
"""

from perpetua.sequencer.delivery import (
    Applied,
    CommandInvalid,
    Overloaded,
    Result,
    SequencerError,
    SequencerFailed,
    SequencerStopped,
)
from perpetua.sequencer.runner.config import (
    DEFAULT_SEQUENCER_CONFIG,
    SHEDDABLE_COMMAND_TYPES,
    JournalLike,
    NullJournal,
    SequencerConfig,
    SequencerStats,
)
from perpetua.sequencer.runner.sequencer import Sequencer, SubmitFuture

__all__ = [
    "DEFAULT_SEQUENCER_CONFIG",
    "SHEDDABLE_COMMAND_TYPES",
    "Applied",
    "CommandInvalid",
    "JournalLike",
    "NullJournal",
    "Overloaded",
    "Result",
    "Sequencer",
    "SequencerConfig",
    "SequencerError",
    "SequencerFailed",
    "SequencerStats",
    "SequencerStopped",
    "SubmitFuture",
]

"""Cluster transport: the sequencer's journal on a NATS JetStream stream, leadership by a lease
in a JetStream key-value bucket, replicas that apply the stream, and command submission over
NATS request/reply.

Modules: `loop` (an asyncio loop on its own thread, for threads that must call NATS), `stream`
(the journal stream: names, configuration, the batch message format), `journal`
(`JetStreamJournal`, the sequencer's `JournalLike` over the stream, fenced by the expected last
sequence), `lease` (`Lease`: who may lead), `replica` (`Replica`: an engine that applies the
stream message by message), `submit` (the request/reply wire between gateways and the leader).
"""

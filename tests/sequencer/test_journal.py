"""The command journal: round trips, group commit, torn tails, corruption, repair, pruning."""

import fcntl
import logging
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpetua.core.invariant import InvariantError
from perpetua.sequencer import journal as journal_module
from perpetua.sequencer.journal import (
    FsyncPolicy,
    JournalBackpressureError,
    JournalConfig,
    JournalCorruptError,
    JournalFailedError,
    JournalLockedError,
    JournalRangeError,
    iter_records,
    open_journal,
    prune_before,
    repair_journal,
)
from perpetua.sequencer.journal import format as journal_format
from tests.sequencer.journal_files import (
    SEGMENT_HEADER,
    SMALL_SEGMENTS,
    all_spans,
    copy_journal,
    encode_record,
    encode_segment_header,
    flip_bit,
    overwrite,
    parse_segment,
    patch_journal,
    payload_for,
    random_sizes,
    read_all,
    segment_paths,
    truncate,
    write_journal,
)

HEADER_BYTES = SEGMENT_HEADER.size

# --- round trip and rotation -------------------------------------------------------------


@pytest.mark.parametrize("first_seq", [1, 2**32 - 300])
def test_round_trip_across_rotation(tmp_path: Path, first_seq: int) -> None:
    config = JournalConfig(
        segment_bytes_max=2048, pending_bytes_max=4096, record_payload_bytes_max=1024
    )  # the default FsyncPolicy.ALWAYS
    sizes = random_sizes(600, seed=1)
    written = write_journal(tmp_path, sizes, [1, 5, 8, 2], config, first_seq=first_seq)

    paths = segment_paths(tmp_path)
    assert len(paths) > 10
    for path in paths:
        spans = parse_segment(path)  # checks the name matches the header's first seq
        assert spans, f"{path} holds no record"
        assert path.name == f"journal-{spans[0].seq:020d}.log"
        assert path.stat().st_size <= config.segment_bytes_max
    assert read_all(tmp_path, first_seq) == written
    middle = first_seq + 333
    assert read_all(tmp_path, middle) == written[333:]
    assert read_all(tmp_path, first_seq + 600) == []

    journal, report = open_journal(tmp_path, config)
    with journal:
        assert report.torn_tail is None
        assert report.segment_count == len(paths)
        assert report.first_seq == first_seq
        assert report.next_seq == first_seq + 600
        assert report.record_count == 600
        assert journal.next_seq == journal.durable_seq + 1 == first_seq + 600
        journal.append(first_seq + 600, b"after reopen")
        assert journal.commit() == first_seq + 600
    assert read_all(tmp_path, first_seq)[-1] == (first_seq + 600, b"after reopen")


def test_a_batch_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    written = write_journal(tmp_path, [100] * 40, [2, 30, 8])
    sizes = [path.stat().st_size for path in segment_paths(tmp_path)]
    assert max(sizes) > SMALL_SEGMENTS.segment_bytes_max
    oversized = [p for p in segment_paths(tmp_path) if p.stat().st_size > 2048]
    assert [len(parse_segment(path)) for path in oversized] == [30]
    assert read_all(tmp_path) == written


def test_empty_directory_starts_at_first_seq(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "journal"
    journal, report = open_journal(directory, SMALL_SEGMENTS, first_seq=42)
    with journal:
        assert (report.next_seq, report.first_seq, report.record_count) == (42, 42, 0)
        assert journal.durable_seq == 41
        assert segment_paths(directory) == [directory / f"journal-{42:020d}.log"]
        journal.append(42, b"")
        journal.commit()
    assert read_all(directory, 42) == [(42, b"")]
    journal, report = open_journal(directory, SMALL_SEGMENTS, first_seq=1)  # ignored now
    journal.close()
    assert report.next_seq == 43


def test_new_segment_syncs_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    real = journal_module.fsync_directory
    patch_journal(monkeypatch, "fsync_directory", lambda d: (synced.append(d), real(d)))
    config = JournalConfig(segment_bytes_max=256)
    journal, _ = open_journal(tmp_path, config)
    assert synced == [tmp_path]  # the first segment
    with journal:
        for seq in range(1, 4):
            journal.append(seq, b"x" * 150)
            journal.commit()
    assert len(segment_paths(tmp_path)) == 3
    assert synced == [tmp_path] * 3


def test_open_syncs_what_recovery_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records a dead process wrote but never synced are made durable before use."""
    write_journal(tmp_path, [10, 20, 30])
    synced: list[int] = []
    real = journal_module.sync_file
    patch_journal(monkeypatch, "sync_file", lambda fd: (synced.append(fd), real(fd)))
    journal, report = open_journal(tmp_path)  # FsyncPolicy.ALWAYS
    journal.close()
    assert report.next_seq == 4 and len(synced) == 1
    journal, _ = open_journal(tmp_path, SMALL_SEGMENTS)  # FsyncPolicy.NONE
    journal.close()
    assert len(synced) == 1


# --- group commit ------------------------------------------------------------------------


def test_nothing_reaches_the_file_before_commit(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    journal, _ = open_journal(journal_dir)
    with journal:
        for seq in range(1, 4):
            journal.append(seq, payload_for(seq, 50))
        assert journal.pending_count == 3
        assert journal.pending_bytes == 3 * (16 + 50)
        assert journal.durable_seq == 0
        assert journal.segment_path.stat().st_size == HEADER_BYTES
        assert read_all(journal_dir) == []
        # A crash now: what is on disk is all a restart sees.
        crashed = copy_journal(journal_dir, tmp_path / "crashed")
        reopened, report = open_journal(crashed)
        reopened.close()
        assert report.next_seq == 1 and report.torn_tail is None

        assert journal.commit() == 3
        assert journal.durable_seq == 3 and journal.pending_count == 0
        assert read_all(journal_dir) == [(s, payload_for(s, 50)) for s in range(1, 4)]
        stats = journal.fsync_stats
        assert stats.fsync_count == 1
        assert stats.total_ns == stats.max_ns == stats.last_ns > 0

        assert journal.commit() == 3  # nothing pending: no write, no sync
        assert journal.fsync_stats.fsync_count == 1


def test_commit_is_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal, _ = open_journal(tmp_path)
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: memoryview) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(journal_format.os, "write", counting_write)
    with journal:
        for seq in range(1, 101):
            journal.append(seq, b"payload")
        journal.commit()
    assert writes == [100 * (16 + 7)]


def test_fsync_policy_none_never_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    patch_journal(monkeypatch, "sync_file", calls.append)
    config = JournalConfig(segment_bytes_max=256, fsync_policy=FsyncPolicy.NONE)
    journal, _ = open_journal(tmp_path, config)
    with journal:
        for seq in range(1, 6):
            journal.append(seq, b"y" * 100)
            assert journal.commit() == seq
        assert journal.fsync_stats.fsync_count == 0
    assert calls == []
    assert [seq for seq, _ in read_all(tmp_path)] == [1, 2, 3, 4, 5]


def test_pending_buffer_is_bounded(tmp_path: Path) -> None:
    config = JournalConfig(pending_bytes_max=1000, record_payload_bytes_max=400)
    journal, _ = open_journal(tmp_path, config)
    with journal:
        journal.append(1, b"a" * 400)
        journal.append(2, b"b" * 400)
        with pytest.raises(JournalBackpressureError, match="commit before appending seq 3"):
            journal.append(3, b"c" * 400)
        assert journal.next_seq == 3 and journal.pending_bytes == 832  # unchanged
        assert journal.commit() == 2
        journal.append(3, b"c" * 400)
        assert journal.commit() == 3
    assert [seq for seq, _ in read_all(tmp_path)] == [1, 2, 3]


def test_programmer_errors_crash(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path, JournalConfig(record_payload_bytes_max=10))
    journal.append(1, b"ok")
    with pytest.raises(InvariantError, match="append of seq 3, expected 2"):
        journal.append(3, b"gap")
    with pytest.raises(InvariantError, match="append of seq 1, expected 2"):
        journal.append(1, b"again")
    with pytest.raises(InvariantError, match="record_payload_bytes_max"):
        journal.append(2, b"x" * 11)
    journal.close()
    with pytest.raises(InvariantError, match="used after close"):
        journal.commit()
    with pytest.raises(InvariantError, match="pending_bytes_max"):
        JournalConfig(pending_bytes_max=100, record_payload_bytes_max=100)


def test_close_drops_uncommitted_records(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path)
    journal.append(1, b"kept")
    journal.commit()
    journal.append(2, b"never acknowledged")
    journal.close()
    journal.close()  # idempotent
    assert read_all(tmp_path) == [(1, b"kept")]


def test_failed_sync_makes_the_journal_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, _ = open_journal(tmp_path)
    journal.append(1, b"one")
    journal.commit()

    def failing_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    patch_journal(monkeypatch, "sync_file", failing_sync)
    journal.append(2, b"two")
    with pytest.raises(OSError, match="Input/output"):
        journal.commit()
    assert journal.durable_seq == 1
    monkeypatch.undo()
    with pytest.raises(JournalFailedError, match="restart and recover"):
        journal.commit()
    with pytest.raises(JournalFailedError):
        journal.append(3, b"three")
    journal.close()


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path)
    with pytest.raises(JournalLockedError):
        open_journal(tmp_path)
    with pytest.raises(JournalLockedError):
        repair_journal(tmp_path)
    journal.close()
    second, _ = open_journal(tmp_path)
    second.close()


# --- torn tails --------------------------------------------------------------------------


@pytest.fixture
def two_segments(tmp_path: Path) -> tuple[Path, list[tuple[int, bytes]]]:
    """A journal of 60 records in more than one segment; the last record has 40 bytes payload."""
    template = tmp_path / "template"
    sizes = random_sizes(59, seed=2) + [40]
    written = write_journal(template, sizes, [3])
    assert len(segment_paths(template)) >= 2
    return template, written


def test_torn_last_record_is_cut_at_every_length(
    tmp_path: Path,
    two_segments: tuple[Path, list[tuple[int, bytes]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    template, written = two_segments
    last = all_spans(template)[-1]
    assert last.seq == 60 and last.size == 56
    for kept in range(last.size):
        case = copy_journal(template, tmp_path / f"kept-{kept}")
        segment = case / last.path.name
        truncate(segment, last.offset + kept)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="perpetua.sequencer.journal"):
            journal, report = open_journal(case, SMALL_SEGMENTS)
        with journal:
            assert report.next_seq == 60
            if kept == 0:
                assert report.torn_tail is None  # ends on a record boundary: clean
                assert caplog.records == []
            else:
                assert report.torn_tail is not None
                assert report.torn_tail.path == segment
                assert report.torn_tail.offset == last.offset
                assert report.torn_tail.bytes_removed == kept
                assert len(caplog.records) == 1
                assert str(segment) in caplog.records[0].getMessage()
            assert segment.stat().st_size == last.offset
            journal.append(60, b"rewritten")
            journal.append(61, b"new")
            journal.commit()
        assert read_all(case) == written[:-1] + [(60, b"rewritten"), (61, b"new")]


@pytest.mark.parametrize(
    "damage", ["payload-bit", "crc-bit", "length-bit", "zeroed", "zeros-after"]
)
def test_damaged_last_record_with_nothing_after_is_a_torn_tail(
    tmp_path: Path, two_segments: tuple[Path, list[tuple[int, bytes]]], damage: str
) -> None:
    template, written = two_segments
    case = copy_journal(template, tmp_path / "case")
    last = all_spans(case)[-1]
    segment = case / last.path.name
    if damage == "payload-bit":
        flip_bit(segment, last.offset + 16 + 20, 3)
    elif damage == "crc-bit":
        flip_bit(segment, last.offset + 12)
    elif damage == "length-bit":
        flip_bit(segment, last.offset, 2)  # 40 -> 44: runs past the end
    elif damage == "zeroed":
        overwrite(segment, last.offset, bytes(last.size))
    else:  # the file grew but its last block never reached the disk
        with segment.open("ab") as handle:
            handle.write(bytes(4096))
        overwrite(segment, last.offset + 30, bytes(26))
    journal, report = open_journal(case, SMALL_SEGMENTS)
    journal.close()
    assert report.torn_tail is not None and report.torn_tail.offset == last.offset
    assert report.next_seq == 60
    assert read_all(case) == written[:-1]


@pytest.mark.parametrize("kept", range(HEADER_BYTES + 1))
def test_torn_header_of_a_new_last_segment_is_rewritten(
    tmp_path: Path, two_segments: tuple[Path, list[tuple[int, bytes]]], kept: int
) -> None:
    template, written = two_segments
    case = copy_journal(template, tmp_path / "case")
    new_segment = case / f"journal-{61:020d}.log"
    new_segment.write_bytes(encode_segment_header(61)[:kept])
    journal, report = open_journal(case, SMALL_SEGMENTS)
    with journal:
        assert report.next_seq == 61
        if kept == HEADER_BYTES:
            assert report.torn_tail is None
        else:
            assert report.torn_tail is not None
            assert (report.torn_tail.path, report.torn_tail.offset) == (new_segment, 0)
        assert new_segment.read_bytes() == encode_segment_header(61)
        journal.append(61, b"next")
        journal.commit()
    assert read_all(case) == written + [(61, b"next")]


def test_zero_filled_header_of_a_new_last_segment_is_rewritten(
    tmp_path: Path, two_segments: tuple[Path, list[tuple[int, bytes]]]
) -> None:
    template, written = two_segments
    new_segment = template / f"journal-{61:020d}.log"
    new_segment.write_bytes(bytes(HEADER_BYTES))
    journal, report = open_journal(template, SMALL_SEGMENTS)
    journal.close()
    assert report.torn_tail is not None and report.next_seq == 61
    assert read_all(template) == written


def test_reader_stops_quietly_at_a_torn_tail_and_changes_nothing(
    two_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    template, written = two_segments
    last = all_spans(template)[-1]
    segment = template / last.path.name
    truncate(segment, last.offset + 9)
    assert read_all(template) == written[:-1]
    assert segment.stat().st_size == last.offset + 9


# --- corruption ----------------------------------------------------------------------------


def assert_corrupt_at(directory: Path, path: Path, offset: int, expected_seq: int) -> None:
    """open_journal and iter_records both refuse, naming the place; open changes no byte."""
    before = {p: p.read_bytes() for p in segment_paths(directory)}
    with pytest.raises(JournalCorruptError) as raised:
        open_journal(directory, SMALL_SEGMENTS)
    error = raised.value
    assert (error.path, error.offset, error.expected_seq) == (path, offset, expected_seq)
    assert str(path) in str(error)
    assert f"byte offset {offset}" in str(error)
    assert f"expected seq {expected_seq}" in str(error)
    assert {p: p.read_bytes() for p in segment_paths(directory)} == before

    seen = []
    with pytest.raises(JournalCorruptError) as raised_again:
        for seq, _ in iter_records(directory, 1):
            seen.append(seq)
    assert raised_again.value.offset == offset
    assert seen == list(range(1, expected_seq))
    lock_fd = os.open(directory / "journal.lock", os.O_RDWR)  # the writer lock was released
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(lock_fd)


@pytest.fixture
def four_segments(tmp_path: Path) -> tuple[Path, list[tuple[int, bytes]]]:
    directory = tmp_path / "journal"
    written = write_journal(directory, random_sizes(120, seed=3), [4])
    assert len(segment_paths(directory)) >= 4
    return directory, written


@pytest.mark.parametrize("field_offset", [0, 1, 3, 4, 9, 11, 12, 15, 16, 17])
def test_flipped_bit_in_the_middle_is_corruption(
    four_segments: tuple[Path, list[tuple[int, bytes]]], field_offset: int
) -> None:
    directory, _ = four_segments
    spans = parse_segment(segment_paths(directory)[-1])
    victim = spans[len(spans) // 2]
    assert victim.size > 18
    flip_bit(victim.path, victim.offset + field_offset, 6)
    assert_corrupt_at(directory, victim.path, victim.offset, victim.seq)


def test_damage_at_the_end_of_an_earlier_segment_is_corruption(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, _ = four_segments
    victim = parse_segment(segment_paths(directory)[1])[-1]
    truncate(victim.path, victim.end - 1)
    assert_corrupt_at(directory, victim.path, victim.offset, victim.seq)


def test_zero_filled_block_in_the_middle_is_corruption(tmp_path: Path) -> None:
    config = JournalConfig(segment_bytes_max=64 * 1024, fsync_policy=FsyncPolicy.NONE)
    directory = tmp_path / "journal"
    write_journal(directory, random_sizes(400, seed=4), [10], config)
    (segment,) = segment_paths(directory)
    spans = parse_segment(segment)
    assert spans[-1].end > 3 * 4096
    overwrite(segment, 8192, bytes(4096))
    victim = next(span for span in spans if span.offset <= 8192 < span.end)
    assert_corrupt_at(directory, segment, victim.offset, victim.seq)


def test_missing_middle_segment_is_corruption(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, _ = four_segments
    paths = segment_paths(directory)
    missing_first_seq = parse_segment(paths[1])[0].seq
    paths[1].unlink()
    assert_corrupt_at(directory, paths[2], 0, missing_first_seq)


def test_valid_record_with_a_wrong_seq_is_corruption_even_at_the_end(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, _ = four_segments
    last_path = segment_paths(directory)[-1]
    size = last_path.stat().st_size
    with last_path.open("ab") as handle:
        handle.write(encode_record(122, b"skips 121"))
    assert_corrupt_at(directory, last_path, size, 121)


def test_damaged_header_of_a_segment_with_records_is_corruption(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, _ = four_segments
    last_path = segment_paths(directory)[-1]
    first_seq = parse_segment(last_path)[0].seq
    flip_bit(last_path, 2)
    assert_corrupt_at(directory, last_path, 0, first_seq)


# --- repair --------------------------------------------------------------------------------


def damage_by_bit_flip(directory: Path) -> int:
    victim = parse_segment(segment_paths(directory)[1])[5]
    flip_bit(victim.path, victim.offset + 20)
    return victim.seq


def damage_by_zero_block(directory: Path) -> int:
    segment = segment_paths(directory)[2]
    victim = parse_segment(segment)[2]
    overwrite(segment, victim.offset + 3, bytes(4096)[: victim.size])
    return victim.seq


def damage_by_missing_segment(directory: Path) -> int:
    paths = segment_paths(directory)
    first_seq = parse_segment(paths[2])[0].seq
    paths[2].unlink()
    return first_seq


def damage_by_torn_tail(directory: Path) -> int:
    victim = all_spans(directory)[-1]
    truncate(victim.path, victim.end - 3)
    return victim.seq


def damage_first_header(directory: Path) -> int:
    overwrite(segment_paths(directory)[0], 0, b"XXXX")
    return 1


@pytest.mark.parametrize(
    "damage",
    [
        damage_by_bit_flip,
        damage_by_zero_block,
        damage_by_missing_segment,
        damage_by_torn_tail,
        damage_first_header,
    ],
)
def test_repair_quarantines_the_damage_and_the_journal_opens_cleanly(
    four_segments: tuple[Path, list[tuple[int, bytes]]], damage: object
) -> None:
    directory, written = four_segments
    assert callable(damage)
    first_bad_seq: int = damage(directory)
    original = {p.name: p.read_bytes() for p in segment_paths(directory)}

    report = repair_journal(directory)

    assert report.damage is not None and f"expected seq {first_bad_seq}" in report.damage
    assert report.next_seq == first_bad_seq
    assert report.quarantine_dir == directory / "quarantine" / "repair-0001"
    assert report.actions
    # Nothing was deleted: each original segment is now split between journal and quarantine.
    quarantined = {p.name: p.read_bytes() for p in report.quarantine_dir.iterdir()}
    for name, data in original.items():
        kept = (directory / name).read_bytes() if (directory / name).exists() else b""
        moved = quarantined.get(name, b"")
        tails = [(k, v) for k, v in quarantined.items() if k.startswith(name + ".from-")]
        if moved:
            assert moved == data and not kept
        elif tails:
            ((tail_name, tail),) = tails
            offset = int(tail_name.rsplit("-", 1)[1])
            assert data[offset:] == tail
            assert kept == data[:offset] or (offset == 0 and len(kept) == HEADER_BYTES)
        else:
            assert kept == data

    journal, recovered = open_journal(directory, SMALL_SEGMENTS)
    with journal:
        assert recovered.torn_tail is None
        assert recovered.next_seq == first_bad_seq
        journal.append(first_bad_seq, b"after repair")
        journal.commit()
    assert read_all(directory) == written[: first_bad_seq - 1] + [(first_bad_seq, b"after repair")]


def test_repair_of_a_clean_journal_does_nothing(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, written = four_segments
    report = repair_journal(directory)
    assert (report.damage, report.quarantine_dir, report.actions) == (None, None, ())
    assert report.next_seq == 121
    assert not (directory / "quarantine").exists()
    assert read_all(directory) == written


def test_each_repair_gets_its_own_quarantine(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, _ = four_segments
    damage_by_torn_tail(directory)
    first = repair_journal(directory)
    damage_by_bit_flip(directory)
    second = repair_journal(directory)
    assert first.quarantine_dir is not None and second.quarantine_dir is not None
    assert (first.quarantine_dir.name, second.quarantine_dir.name) == ("repair-0001", "repair-0002")
    assert any(first.quarantine_dir.iterdir())


# --- pruning -------------------------------------------------------------------------------


def test_prune_deletes_only_segments_wholly_before_seq(
    four_segments: tuple[Path, list[tuple[int, bytes]]],
) -> None:
    directory, written = four_segments
    paths = segment_paths(directory)
    firsts = [parse_segment(path)[0].seq for path in paths]

    assert prune_before(directory, firsts[1] - 1) == ()
    assert prune_before(directory, firsts[2]) == (paths[0], paths[1])
    assert segment_paths(directory) == paths[2:]
    assert prune_before(directory, firsts[2]) == ()
    assert prune_before(directory, firsts[3] - 1) == ()

    assert read_all(directory, firsts[2]) == written[firsts[2] - 1 :]
    with pytest.raises(JournalRangeError, match=f"before seq {firsts[2]} were pruned"):
        iter_records(directory, firsts[2] - 1)
    journal, report = open_journal(directory, SMALL_SEGMENTS)
    journal.close()
    assert (report.first_seq, report.next_seq) == (firsts[2], 121)

    assert prune_before(directory, 10**9) == tuple(paths[2:-1])
    assert segment_paths(directory) == [paths[-1]]  # the last segment always stays
    assert read_all(directory, firsts[-1]) == written[firsts[-1] - 1 :]


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=40),
    batches=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    cut_fraction=st.integers(0, 10_000),
)
def test_recovery_after_any_truncation_yields_a_prefix(
    sizes: list[int], batches: list[int], cut_fraction: int
) -> None:
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp) / "journal"
        written = write_journal(directory, sizes, batches)
        last_path = segment_paths(directory)[-1]
        spans = parse_segment(last_path)
        size = last_path.stat().st_size
        cut = size * cut_fraction // 10_000
        truncate(last_path, cut)
        if cut < HEADER_BYTES:
            survivors = (spans[0].seq - 1) if spans else written[-1][0]
        else:
            survivors = len(written) - sum(1 for span in spans if span.end > cut)

        journal, report = open_journal(directory, SMALL_SEGMENTS)
        with journal:
            assert report.next_seq == survivors + 1
            assert read_all(directory) == written[:survivors]
            journal.append(survivors + 1, b"continues")
            journal.commit()
        assert read_all(directory) == written[:survivors] + [(survivors + 1, b"continues")]


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 120), min_size=2, max_size=25),
    position=st.integers(0, 10**6),
    bit=st.integers(0, 7),
)
def test_one_flipped_bit_is_never_replayed(sizes: list[int], position: int, bit: int) -> None:
    """A flipped bit in the last segment is cut (in its last record) or refused, never read."""
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp) / "journal"
        written = write_journal(directory, sizes, [3])
        last_path = segment_paths(directory)[-1]
        spans = parse_segment(last_path)
        if not spans:
            return
        start = spans[0].offset
        offset = start + position % (spans[-1].end - start)
        flip_bit(last_path, offset, bit)
        victim = next(span for span in spans if span.offset <= offset < span.end)
        if victim is spans[-1]:
            journal, report = open_journal(directory, SMALL_SEGMENTS)
            journal.close()
            assert report.torn_tail is not None and report.torn_tail.offset == victim.offset
            assert read_all(directory) == written[: victim.seq - 1]
        else:
            with pytest.raises(JournalCorruptError) as raised:
                open_journal(directory, SMALL_SEGMENTS)
            assert (raised.value.path, raised.value.offset) == (last_path, victim.offset)


# --- append_batch (the sequencer's committer path) ---------------------------------------


def test_append_batch_equals_appends_and_stops_at_pending_bytes_max(tmp_path: Path) -> None:
    config = JournalConfig(
        segment_bytes_max=4096,
        pending_bytes_max=600,
        record_payload_bytes_max=200,
        fsync_policy=FsyncPolicy.NONE,
    )
    records = [
        (seq, payload_for(seq, size))
        for seq, size in enumerate(random_sizes(700, seed=3, size_max=120), start=250)
    ]
    journal, _ = open_journal(tmp_path / "batch", config, first_seq=250)
    with journal:
        done = 0
        commits = 0
        while done < len(records):
            before = done
            done = journal.append_batch(records, done)
            assert done > before or journal.pending_bytes > 0
            assert journal.pending_bytes <= config.pending_bytes_max
            journal.commit()
            commits += 1
    assert commits > 10  # it did stop at the buffer limit
    assert read_all(tmp_path / "batch", 250) == records  # seqs cross 256 and 512: crc trick
    with pytest.raises(InvariantError):
        journal2, _ = open_journal(tmp_path / "batch", config)
        with journal2:
            journal2.append_batch([(5, b"x")])

"""In-process counter state: sliding windows and distinct-record sets in dicts.

Sliding windows use the two-bucket estimate (previous fixed window weighted by
its overlap, plus the current one): O(1) time and 3 floats per limit, never more
than the exact count over the last two windows and never less than the current
window's count. Distinct records are exact: an insertion-ordered dict of
record → last read, expired from the front, capped at 2×limit+16 entries.

One dict entry per key (a dict lookup on a big table is most of a decision's state
cost): the key's windows, packed in bytes, or, once the key's first distinct-records
counter has read a record, that counter's record set with the packed windows as its first
entry (under "", which is never a record). Further distinct counters of a key keep their
own set under "key#index", except those that count the same requests as one with a longer
window and a larger limit (``share_sets``): they count the recent part of its set. The
packed windows end with the id of the counter layout (``_Shape``) that wrote them: a key
last written under another layout (a policy reload) is first unpacked to one entry per
set, then handled exactly as before (``_relayout``).

Memory stays bounded by generations: keys untouched for ``idle_ttl`` seconds are
dropped wholesale, and a generation that reaches ``max_keys`` turns over early.
Windows and client memories live packed in bytes, and record sets in str→float|bytes
dicts: none is ever tracked by the cyclic garbage collector, so a million clients do not
make collections slower (only the few big dicts holding them are tracked, and visiting an
untracked value costs nothing). The exception is a busy set of over a thousand records
(one fingerprint's reads): it becomes an OrderedDict (``_compacted``), tracked, but a
handful of them cost collections nothing either. Cost measured by ``bench/memory.py`` under the default
policy (ip, subnet, account and campaign-trait keys, about five per client, two profiles
read each), at 200,000 clients: ~3.5 KB per client, bounded caches of the context stage
included (4.0 KB when every record set was an entry of its own).
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeVar, cast, final

from scrapeshield.state.base import MEMORY_SIZE, ClientMemory, CounterSpec, KeyUpdate
from scrapeshield.state.layout import owners

_MEMORY: Final = struct.Struct(f"{MEMORY_SIZE}d")
# Bound once: compiled, ``_MEMORY.pack(...)`` looks the method up at every call.
_PACK_MEMORY: Final = _MEMORY.pack
_UNPACK_MEMORY: Final = _MEMORY.unpack
_TAG: Final = struct.Struct("d")
_WINDOWS: Final = ""  # the key of the packed windows in an entry that is a record set
_COMPACT_MIN: Final = 64  # records in a set before its front deletions are counted (see _due)
_LINKED_MIN: Final = 1024  # records in a set due for compaction that make it an OrderedDict instead
_OWNER: Final = 4096  # a tag is layout id × _OWNER + 1 + the index of the entry's set (0: none)
_HOT: Final = 16  # shapes tried by identity before the lookup by id (see MemoryStore._hot)
_EXACT: Final = 2.0**52  # below it, whole numbers and their sums with a whole window are exact floats

# An entry: packed windows, or the key's first record set holding them under _WINDOWS.
Entry = bytes | dict[str, float | bytes]


@final
class _Shape:
    """What ``update`` needs to know about one tuple of counter specs, computed once."""

    def __init__(self, specs: tuple[CounterSpec, ...], owner: tuple[int, ...], sid: float) -> None:
        if len(specs) >= _OWNER:
            raise ValueError(f"at most {_OWNER - 1} counters under one key")
        self.specs = specs
        self.count = len(specs)
        self.window: list[float] = [w for w, _, _ in specs]
        self.distinct: list[bool] = [d for _, d, _ in specs]
        self.cap: list[int] = [2 * limit + 16 for _, _, limit in specs]
        self.suffix: list[str] = [f"#{i}" for i in range(len(specs))]
        # Per counter, the counter whose record set it counts in (``share_sets``): itself, or
        # for a distinct counter that counts the same requests as one with a longer window and
        # a larger limit, that one's; ``members``: the counters counted so (in another's set).
        self.owner: list[int] = list(owner)
        self.members: list[int] = [i for i in range(len(specs)) if self.distinct[i] and owner[i] != i]
        # The counter whose set lives in the key's entry: the first distinct one with a set of
        # its own (-1: none).
        self.first = next((i for i, d in enumerate(self.distinct) if d and owner[i] == i), -1)
        # Written last in the packed windows: the layout that wrote them, and its first set.
        self.tag_value = sid * _OWNER + self.first + 1
        # 3 floats per counter (start, current, previous; unused by a distinct one), then the tag.
        self.packing = struct.Struct(f"{3 * len(specs) + 1}d")
        # Bound once (compiled, a method call on the Struct looks the method up every time).
        self.packs: Callable[..., bytes] = self.packing.pack
        self.unpacks: Callable[[bytes], tuple[float, ...]] = self.packing.unpack
        self.size = self.packing.size
        self.zeros = self.packing.pack(*(0.0,) * (3 * len(specs)), self.tag_value)
        self.tag = _TAG.pack(self.tag_value)
        # Per counter, the start of the window that ``now`` fell in last (see _start; -inf:
        # none yet), NaN where the window is no whole number of seconds (always computed).
        self.starts: list[float] = [-math.inf if _whole(w) else math.nan for w in self.window]


# Equal specs with the same sharing share one layout id (ids are never reused).
_SIDS: Final[dict[tuple[tuple[CounterSpec, ...], tuple[int, ...]], float]] = {}
_NEXT: Final = [1.0]


def _layout_id(specs: tuple[CounterSpec, ...], owner: tuple[int, ...]) -> float:
    if len(_SIDS) > 10_000:  # callers that build specs per call: stay bounded
        _SIDS.clear()  # an older id just reads as another layout
    sid = _SIDS.get((specs, owner))
    if sid is None:
        sid = _NEXT[0]
        _NEXT[0] = sid + 1.0
        _SIDS[(specs, owner)] = sid
    return sid


def _recent(own: dict[str, float | bytes] | None, horizon: float, cap: int) -> float:
    """What a distinct counter sharing the record set in a key's entry counts (``_Shape.owner``):
    its records read after ``horizon``, at most ``cap``. A set is in the order of last reads,
    so they are its last ones; that is what a set of the counter's own would hold (the same
    reads, its shorter window expired from the front, its smaller cap dropping the oldest),
    with a clock that does not go back. Mostly its oldest record is recent enough: all count."""
    if own is None or len(own) < 2:
        return 0.0
    oldest = own[_front(own)]
    if isinstance(oldest, float) and oldest > horizon:
        return float(len(own) - 1 if len(own) - 1 < cap else cap)
    return _walk(own, horizon, cap)


def _walk(seen: dict[str, float | bytes] | dict[str, float] | None, horizon: float, cap: int) -> float:
    """``_recent`` from the last read back (a generic iteration, compiled), for any set."""
    count = 0
    if seen is not None:
        for read in reversed(seen.values()):
            if isinstance(read, bytes) or read <= horizon or count >= cap:
                break  # (bytes: the entry's packed windows, always its first value)
            count += 1
    return float(count)


def _whole(w: float) -> bool:
    """Whether window starts of length ``w`` are exact in a float, so can be reused (_start)."""
    return 0.0 < w < _EXACT and w == math.floor(w)


def _start(starts: list[float], i: int, w: float, now: float) -> float:
    """``now - now % w``, the start of the window ``now`` is in: the last one found for this
    counter when ``now`` is still in it (compiled, ``%`` calls fmod, a few hundred instructions
    for a timestamp). Exactly the same float: for a whole ``w`` and ``0 < now < 2**52``,
    ``now % w`` is exact and so is the difference, a multiple of ``w``; the window found
    last is a multiple of ``w`` too, and ``now`` in it has the same one."""
    start = starts[i]
    if start <= now < start + w and now > 0.0:  # (-0.0 would find 0.0 and not -0.0)
        return start
    found = now - now % w
    if 0.0 < now < _EXACT and start == start:  # (NaN: a window of no whole length, never kept)
        starts[i] = found
    return found


def _front(seen: dict[str, float | bytes]) -> str:
    """The oldest record of an entry's set (its first key after the packed windows; "": none)."""
    first = True
    for key in seen:
        if first:
            first = False
            continue
        return key
    return ""


def _oldest(seen: dict[str, float]) -> str:
    """The first record of a non-empty set (``next(iter(seen))``, which compiled is a generic call)."""
    for key in seen:
        return key
    raise KeyError("empty record set")


_V = TypeVar("_V")


def _compacted(seen: dict[str, _V]) -> dict[str, _V]:
    """A record set without the empty slots its deletions left, in the same order. A big
    one becomes an OrderedDict: its linked order finds the oldest record without walking
    slots, where a dict copied once per an eighth of it deleted still walked hundreds of
    slots per lookup of a busy shared set (a few such sets exist: the garbage collector
    tracks an OrderedDict, unlike a dict of str → float)."""
    if len(seen) >= _LINKED_MIN:
        return OrderedDict(seen)
    return dict(seen)


def _take(table: dict[str, _V], key: str) -> _V | None:
    """``table.pop(key, None)`` as a lookup (compiled, ``pop`` with a default is a generic call)."""
    value = table.get(key)
    if value is not None:
        del table[key]
    return value


def _window(counted: list[float], base: int, w: float, start: float, now: float, cost: int) -> float:
    """Count ``cost`` in the sliding window whose 3 floats start at ``base``; its usage after.
    ``start``: ``now - now % w``, the current window's start (the caller's, computed once per
    window length: compiled, ``%`` calls fmod, a few hundred instructions for a timestamp)."""
    began = counted[base]
    if start > began:
        counted[base + 2] = counted[base + 1] if start - began <= w else 0.0
        counted[base + 1] = 0.0
        counted[base] = start
    current = counted[base + 1] + cost
    counted[base + 1] = current
    return counted[base + 2] * (1.0 - (now - start) / w) + current


class _Generation:
    __slots__ = ("entries", "sets", "memories", "dead")

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}  # key → its entry (see the module's docstring)
        self.sets: dict[str, dict[str, float]] = {}  # "key#counter" → record → last read
        self.memories: dict[str, bytes] = {}  # client key → packed ClientMemory values
        # Records deleted from the front of a big set since it was last compacted (see _due).
        self.dead: dict[str, int] = {}


class MemoryStore:
    does_io = False

    def __init__(self, idle_ttl: float = 3600.0, max_keys: int = 1_000_000) -> None:
        self.idle_ttl = idle_ttl
        self.max_keys = max(1, max_keys // 2)  # per generation
        self._young = _Generation()
        self._old = _Generation()
        self._turned_at: float | None = None
        self._shapes: dict[int, _Shape] = {}  # id(specs) → shape (the shape holds specs: ids stay)
        # The first shapes made, tried by identity before ``_shapes``: a policy has a handful
        # of specs tuples, and compiled, ``id()`` makes an int object to look up per key.
        # Replaced, never changed: a thread reads one list.
        self._hot: list[_Shape] = []
        # id(specs) → (specs, owners): which distinct counters share a record set (share_sets)
        self._owners: dict[int, tuple[tuple[CounterSpec, ...], tuple[int, ...]]] = {}

    def share_sets(self, specs: tuple[CounterSpec, ...], routes: Sequence[frozenset[str] | None]) -> None:
        """Say which requests count for each of these counters (``routes``: the route names, or
        None for all): distinct counters that count the same ones then share one record set,
        as in Redis (``layout.owners``): a key's 10-minute and daily budgets keep one set, in
        its entry, where they kept two (a further entry, and a dict, per client reading records)."""
        if len(self._owners) >= 16_384:  # a policy has a few dozen; reloaded very many times
            self._owners.clear()
        self._owners[id(specs)] = (specs, owners(specs, routes))
        self._shapes.clear()  # shapes made before this are stale
        self._hot = []

    def _shape(self, specs: tuple[CounterSpec, ...]) -> _Shape:
        known = self._owners.get(id(specs))
        owner = known[1] if known is not None and known[0] is specs else tuple(range(len(specs)))
        shape = _Shape(specs, owner, _layout_id(specs, owner))
        if len(self._shapes) > 10_000:  # callers that build specs per call: stay bounded
            self._shapes.clear()
        self._shapes[id(specs)] = shape
        if len(self._hot) < _HOT:
            self._hot = [*self._hot, shape]
        return shape

    def _shape_of(self, specs: tuple[CounterSpec, ...]) -> _Shape:
        for shape in self._hot:
            if shape.specs is specs:
                return shape
        found = self._shapes.get(id(specs))
        if found is None or found.specs is not specs:
            found = self._shape(specs)
        return found

    def tracked_clients(self) -> int:
        return len(self._young.entries) + len(self._old.entries)

    def update(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        if self._turned_at is None or now - self._turned_at >= self.idle_ttl or (
            len(self._young.entries) >= self.max_keys
        ):
            self._turn(now)
        young, old = self._young, self._old
        entries = young.entries
        usages: list[tuple[float, ...]] = []
        for key, specs, costs, record in updates:  # runs for every key of every request
            shape = self._shape_of(specs)
            entry = entries.get(key)
            in_young = entry is not None
            if entry is None:
                entry = _take(old.entries, key)
            # A key in neither generation has no further sets either: they are created, moved
            # and dropped with its entry (or before it, in the older generation).
            fresh = entry is None
            own: dict[str, float | bytes] | None = None
            if entry is None:
                windows = shape.zeros
            elif isinstance(entry, bytes):
                windows = entry
            else:
                own = entry
                windows = cast(bytes, entry.get(_WINDOWS, b""))
            if windows is not shape.zeros and not (
                len(windows) == shape.size and windows.endswith(shape.tag)
            ):  # written under another layout
                if entry is not None and not in_young:
                    old.entries[key] = entry  # back where it was: _relayout reads both generations
                usages.append(self._relayout(key, shape, costs, record, now))
                continue
            counted: list[float] | None = None
            changed = False
            usage: list[float] = []
            for i in range(shape.count):
                if not shape.distinct[i]:
                    if counted is None:
                        counted = list(shape.unpacks(windows))
                    w = shape.window[i]
                    start = _start(shape.starts, i, w, now)
                    if costs[i] or start > counted[3 * i]:
                        changed = True  # (unchanged windows are not packed again)
                    usage.append(_window(counted, 3 * i, w, start, now, costs[i]))
                    continue
                taken = record if costs[i] else ""
                if shape.owner[i] != i:  # counted in another's set, once that one is (below)
                    usage.append(0.0)
                    continue
                if i != shape.first:  # a further set: an entry of its own
                    if fresh and not taken:  # none to look up (nor its key to build)
                        usage.append(0.0)
                        continue
                    set_key = key + shape.suffix[i]
                    usage.append(self._records(set_key, taken, now, shape.window[i], shape.cap[i], fresh))
                    continue
                deleted = 0
                if own is None:
                    if not taken:  # nothing read, nothing kept: an empty set counts 0
                        usage.append(0.0)
                        continue
                    own = {_WINDOWS: windows}
                    in_young = False  # a new entry replaces the packed windows
                if taken:
                    if taken in own:  # a re-read moves the record to the back
                        del own[taken]
                    own[taken] = now
                    if len(own) - 1 > shape.cap[i]:
                        del own[_front(own)]
                        deleted = 1
                horizon = now - shape.window[i]
                while len(own) > 1:
                    oldest = _front(own)
                    if cast(float, own[oldest]) > horizon:
                        break
                    del own[oldest]
                    deleted += 1
                if deleted and self._due(key, own, deleted):
                    own = _compacted(own)
                    in_young = False  # the copy replaces the entry
                usage.append(float(len(own) - 1))
            for i in shape.members:
                head = shape.owner[i]
                if head == shape.first:
                    usage[i] = _recent(own, now - shape.window[i], shape.cap[i])
                elif not fresh or (record and costs[head]):  # (a fresh key's: if just read)
                    shared = self._young.sets.get(key + shape.suffix[head])
                    usage[i] = _walk(shared, now - shape.window[i], shape.cap[i])
            usages.append(tuple(usage))
            if changed and counted is not None:
                packs = shape.packs  # (compiled, ``shape.packs(*...)`` is a generic attribute read)
                windows = packs(*counted)
                if own is not None:
                    own[_WINDOWS] = windows
            if not in_young or (changed and own is None):
                entries[key] = own if own is not None else windows
        values = young.memories.get(client)
        if values is None:
            values = _take(old.memories, client)
        memory = ClientMemory(now) if values is None else ClientMemory(now, list(_UNPACK_MEMORY(values)))
        return usages, memory

    def _records(
        self, set_key: str, taken: str, now: float, window: float, cap: int, fresh: bool = False
    ) -> float:
        """Count ``taken`` (when not "") in a record set of its own; the records in the window.
        ``fresh``: the set's key is in neither generation, so neither holds the set."""
        seen = None if fresh else self._young.sets.get(set_key)
        if seen is None:
            seen = None if fresh else _take(self._old.sets, set_key)
            if seen is None:
                if not taken:  # nothing read, nothing kept
                    return 0.0
                seen = {}
            # Each set is its own entry: a dict of str → float is never tracked by the
            # garbage collector, but a tuple or list holding dicts always is.
            self._young.sets[set_key] = seen
        deleted = 0
        if taken:
            if taken in seen:  # a re-read moves the record to the back
                del seen[taken]
            seen[taken] = now
            if len(seen) > cap:
                del seen[_oldest(seen)]
                deleted = 1
        horizon = now - window
        while seen:
            first = _oldest(seen)
            if seen[first] > horizon:
                break
            del seen[first]
            deleted += 1
        if deleted and self._due(set_key, seen, deleted):
            seen = self._young.sets[set_key] = _compacted(seen)
        return float(len(seen))

    def _due(self, key: str, seen: Mapping[str, object], deleted: int) -> bool:
        """Whether a big record set is due for a compact copy (``_compacted``), after
        ``deleted`` records went from its front. A dict leaves a deleted entry's slot empty
        until it grows again, and finding the oldest record walks those slots: a busy shared
        set (one fingerprint's reads) made that thousands of instructions per request. A copy
        costs its size, once per an eighth of it deleted; an OrderedDict finds its oldest
        record at once and is never copied."""
        size = len(seen)
        if size < _COMPACT_MIN or isinstance(seen, OrderedDict):
            return False
        dead = self._young.dead
        count = dead.get(key, 0) + deleted
        if count * 8 <= size:
            dead[key] = count
            return False
        dead[key] = 0
        return True

    def _relayout(
        self, key: str, shape: _Shape, costs: tuple[int, ...], record: str, now: float
    ) -> tuple[float, ...]:
        """One key last written under another counter layout (a policy reload): every set
        becomes its own "key#index" entry, the windows are counted as ever (kept when the
        counter count is the same), and the new layout's first set moves into the entry."""
        young, old = self._young, self._old
        for gen in (young, old):
            entry = gen.entries.get(key)
            if isinstance(entry, dict):
                first = cast(bytes, entry.pop(_WINDOWS, b""))
                gen.entries[key] = first
                tag = int(_TAG.unpack(first[-8:])[0]) if len(first) >= 8 else 0
                owner = tag % _OWNER - 1
                if owner >= 0 and entry:
                    gen.sets[key + f"#{owner}"] = cast(dict[str, float], entry)
        windows = young.entries.get(key)
        if not isinstance(windows, bytes) or len(windows) != shape.size:
            popped = old.entries.pop(key, None)
            windows = popped if isinstance(popped, bytes) and len(popped) == shape.size else shape.zeros
        counted = list(shape.unpacks(windows))
        counted[-1] = shape.tag_value
        usage: list[float] = []
        for i in range(shape.count):
            taken = record if costs[i] else ""
            if shape.distinct[i] and shape.owner[i] != i:
                usage.append(0.0)  # counted below, in the set it shares
            elif shape.distinct[i]:
                usage.append(self._records(key + shape.suffix[i], taken, now, shape.window[i], shape.cap[i]))
            else:
                w = shape.window[i]
                usage.append(_window(counted, 3 * i, w, now - now % w, now, costs[i]))
        for i in shape.members:
            shared = young.sets.get(key + shape.suffix[shape.owner[i]])
            usage[i] = _walk(shared, now - shape.window[i], shape.cap[i])
        packs = shape.packs
        packed = packs(*counted)
        own_set = young.sets.pop(key + shape.suffix[shape.first], None) if shape.first >= 0 else None
        if own_set is None:
            young.entries[key] = packed
        else:
            own: dict[str, float | bytes] = {_WINDOWS: packed}
            own.update(own_set)
            young.entries[key] = own
        return tuple(usage)

    async def aupdate(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        return self.update(updates, client, now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        self._young.memories[client] = _PACK_MEMORY(*memory.values)

    def _turn(self, now: float) -> None:
        if self._turned_at is not None:
            self._old = self._young
            self._young = _Generation()
        self._turned_at = now

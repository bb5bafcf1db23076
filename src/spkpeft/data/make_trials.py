"""Balanced trial lists for any manifest: N target and M non-target pairs, no same-utterance pairs,
no repeated pair, spread evenly over speakers (round-robin), deterministic given the seed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations

import numpy as np

from spkpeft.data.trials import Trial

_ENUMERATE_LIMIT = 200_000  # below this many possible pairs, enumerate and sample exactly


def group_by_speaker(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """(utterance id, speaker) pairs -> {speaker: sorted ids} (sorted so the seed alone decides)."""
    out: dict[str, list[str]] = {}
    for uid, spk in pairs:
        out.setdefault(spk, []).append(uid)
    return {s: sorted(v) for s, v in sorted(out.items())}


def make_trials(
    by_speaker: Mapping[str, Sequence[str]], n_targets: int, n_nontargets: int, seed: int = 0
) -> list[Trial]:
    """``n_targets`` same-speaker and ``n_nontargets`` different-speaker pairs of distinct utterances.

    Raises ValueError when the manifest cannot supply that many distinct pairs (the message says the
    maximum). The result is shuffled (targets and non-targets interleaved) by the same seed.
    """
    spk = {s: list(v) for s, v in sorted(by_speaker.items()) if v}
    rng = np.random.default_rng(seed)
    tgt = _target_pairs(spk, n_targets, rng)
    non = _nontarget_pairs(spk, n_nontargets, rng)
    trials = [Trial(a, b, 1) for a, b in tgt] + [Trial(a, b, 0) for a, b in non]
    return [trials[i] for i in rng.permutation(len(trials))]


def _target_pairs(spk: dict[str, list[str]], n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Round-robin over speakers (in a random order) so every speaker gets about n / S targets."""
    multi = {s: u for s, u in spk.items() if len(u) >= 2}
    total = sum(len(u) * (len(u) - 1) // 2 for u in multi.values())
    if n > total:
        raise ValueError(
            f"asked for {n} target trials but the manifest has only {total} distinct same-speaker pairs "
            f"({len(multi)} speakers with >= 2 utterances)"
        )
    if n == 0:
        return []
    names = [list(multi)[i] for i in rng.permutation(len(multi))]
    if total <= _ENUMERATE_LIMIT:
        queues = [list(combinations(multi[s], 2)) for s in names]
        queues = [[q[i] for i in rng.permutation(len(q))] for q in queues]
        out: list[tuple[str, str]] = []
        depth = 0
        while len(out) < n:
            out += [q[depth] for q in queues if depth < len(q)][: n - len(out)]
            depth += 1
        return out
    turn = iter(range(10**12))
    return _rejection(n, lambda: _same(multi[names[next(turn) % len(names)]], rng))


def _nontarget_pairs(spk: dict[str, list[str]], n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Enrolment speaker round-robin, test speaker and utterances random; exact sampling when the
    request is more than half of all possible pairs."""
    sizes = [len(u) for u in spk.values()]
    total = (sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2
    if n > total:
        raise ValueError(
            f"asked for {n} non-target trials but the manifest has only {total} distinct "
            f"different-speaker pairs ({len(spk)} speakers)"
        )
    if n == 0:
        return []
    names = [list(spk)[i] for i in rng.permutation(len(spk))]
    if 2 * n > total:
        allp = [
            (a, b)
            for i, j in combinations(range(len(names)), 2)
            for a in spk[names[i]]
            for b in spk[names[j]]
        ]
        return [allp[i] for i in sorted(rng.choice(total, n, replace=False))]
    turn = iter(range(10**12))

    def draw() -> tuple[str, str]:
        i = next(turn) % len(names)
        j = (i + 1 + int(rng.integers(len(names) - 1))) % len(names)
        a, b = spk[names[i]], spk[names[j]]
        return a[int(rng.integers(len(a)))], b[int(rng.integers(len(b)))]

    return _rejection(n, draw)


def _same(utts: list[str], rng: np.random.Generator) -> tuple[str, str]:
    i, j = rng.choice(len(utts), 2, replace=False)
    return utts[i], utts[j]


def _rejection(n: int, draw: Callable[[], tuple[str, str]]) -> list[tuple[str, str]]:
    """Draw until ``n`` distinct unordered pairs (used only when pairs are plentiful)."""
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, str]] = []
    for _ in range(50 * n + 1000):
        a, b = draw()
        key = frozenset((a, b))
        if key not in seen:
            seen.add(key)
            out.append((a, b))
            if len(out) == n:
                return out
    raise ValueError(f"could not draw {n} distinct pairs; ask for fewer trials")

"""Mending the planar graph where the cutting's snapping decided differently on two sides of an edge.

Vertices are identified combinatorially (:mod:`splinecam.engine.geometry`), which makes the two sides of
every edge agree as long as both sides make the same cuts. With nearly coincident lines (directions
about 1e-8 rad apart, or a deeper unit's line lying on an earlier edge) a line can lie within the
snapping band on one side of an edge and cut the other side: that side then has a vertex on the
shared edge that the other lacks (a T-junction), or the same point gets two identifiers. The
partition's regions are still right up to the tolerance, but its graph is not.

:func:`mend_t_junctions` runs only when an inner edge has one region. It welds the endpoints of
such edges that lie within ``1e-8`` of the domain's scale (distinct vertices of a correct partition
are never that close in practice: its smallest regions come from the same snapping), drops edges and
regions that the welding reduces to nothing, and inserts into an edge the vertices of the other side
that lie on it. Where that does not mend the graph, ``verify`` still reports it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mend_t_junctions", "mend_jump_edges", "merge_equal_neighbours", "weld_short_edges"]

# the most vertices to weld pairwise (a k x k distance table; the mending is for a few bad edges)
_MAX_WELD = 1000


def _half_edges(ptr: np.ndarray, rv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(rv)
    nxt = np.arange(1, n + 1)
    nxt[ptr[1:] - 1] = ptr[:-1]
    reg = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return rv, rv[nxt], reg


def _unmatched(a: np.ndarray, b: np.ndarray, lab: np.ndarray, nvert: int) -> np.ndarray:
    """Slots whose inner half-edge ``a -> b`` (to the next slot) has no twin."""
    return (lab >= 0) & ~np.isin(b * nvert + a, a * nvert + b)


def _splice(
    ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, new: dict[int, list[tuple[int, int]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replace the cycles of the regions in ``new`` (vertex, label pairs) and drop the regions left
    with under 3 vertices; returns ``(ptr, rv, lab, kept regions)``. Only the replaced cycles go
    through Python."""
    r = len(ptr) - 1
    lens = np.diff(ptr)
    for g, c in new.items():
        lens[g] = len(c)
    keep = lens >= 3
    kept = np.flatnonzero(keep)
    rank = np.cumsum(keep) - 1
    ptr2 = np.zeros(len(kept) + 1, dtype=np.int64)
    ptr2[1:] = np.cumsum(lens[kept])
    rv2 = np.empty(int(ptr2[-1]), dtype=np.int64)
    lab2 = np.empty(int(ptr2[-1]), dtype=np.int64)
    changed = np.zeros(r, dtype=bool)
    changed[list(new)] = True
    reg = np.repeat(np.arange(r), np.diff(ptr))
    same = ~changed[reg] & keep[reg]
    slots = np.flatnonzero(same)
    dst = ptr2[rank[reg[slots]]] + slots - ptr[reg[slots]]
    rv2[dst] = rv[slots]
    lab2[dst] = lab[slots]
    for g, c in new.items():
        if keep[g]:
            st = ptr2[rank[g]]
            rv2[st:st + len(c)] = [v for v, _ in c]
            lab2[st:st + len(c)] = [lb for _, lb in c]
    return ptr2, rv2, lab2, kept


def _cycle(ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, g: int) -> list[tuple[int, int]]:
    return list(zip(rv[ptr[g]:ptr[g + 1]].tolist(), lab[ptr[g]:ptr[g + 1]].tolist()))


def mend_t_junctions(
    verts: np.ndarray, ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Weld and mend the inner edges that have one region (see the module docstring).

    ``verts`` ``(V, 2)``; regions as counter-clockwise vertex cycles in CSR form ``ptr``/``rv``;
    ``lab`` the label of the edge from each slot to the next (``-1`` on the domain's border).
    Returns ``(kept vertices, ptr, rv, lab, kept regions)`` with vertices renumbered in the order
    of the kept ones, or None when nothing needed mending or nothing could be done.
    """
    nvert = len(verts)
    a, b, reg = _half_edges(ptr, rv)
    bad = _unmatched(a, b, lab, nvert)
    if not bad.any():
        return None
    tol = 1e-8 * scale
    cand = np.unique(np.concatenate([a[bad], b[bad]]))
    if len(cand) > _MAX_WELD:
        return None
    # weld: union of the candidate vertices closer than tol
    p = verts[cand]
    close = np.argwhere(np.abs(p[:, None, :] - p[None, :, :]).max(2) <= tol)
    root = np.arange(len(cand))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = int(root[i])
        return i

    for i, j in close:
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            root[max(ri, rj)] = min(ri, rj)
    m = np.arange(nvert)
    m[cand] = cand[[find(i) for i in range(len(cand))]]
    rvm = m[rv]
    # drop the edges the welding made degenerate (in the regions that touch a welded vertex), then
    # the regions left with under 3 vertices
    welded = cand[m[cand] != cand]
    touched: dict[int, list[tuple[int, int]]] = {}
    for g in np.unique(reg[np.isin(rv, welded)]).tolist():
        c = _cycle(ptr, rvm, lab, g)
        k = 0
        while len(c) > 1 and k < len(c):
            if c[k][0] == c[(k + 1) % len(c)][0]:
                del c[k]
            else:
                k += 1
        touched[g] = c
    ptr2, rv2, lab2, keep = _splice(ptr, rvm, lab, touched)
    # T-junctions: an edge with one region gets the vertices of the other side that lie on it
    a2, b2, reg2 = _half_edges(ptr2, rv2)
    bad = _unmatched(a2, b2, lab2, nvert)
    if bad.any():
        others = np.unique(np.concatenate([a2[bad], b2[bad]]))
        inserts: dict[int, list[tuple[int, list[int]]]] = {}
        for s in np.flatnonzero(bad):
            va, vb = int(a2[s]), int(b2[s])
            pa, pb = verts[va], verts[vb]
            d = pb - pa
            ln = float(np.hypot(d[0], d[1]))
            if ln == 0.0:
                continue
            q = verts[others] - pa
            t = (q @ d) / (ln * ln)
            dist = np.abs(q[:, 0] * d[1] - q[:, 1] * d[0]) / ln
            on = (dist <= tol) & (t * ln > tol) & ((1 - t) * ln > tol) & (others != va) & (others != vb)
            if on.any():
                idx = np.flatnonzero(on)
                inserts.setdefault(int(reg2[s]), []).append((va, others[idx[np.argsort(t[idx])]].tolist()))
        grown: dict[int, list[tuple[int, int]]] = {}
        for g, items in inserts.items():
            c = _cycle(ptr2, rv2, lab2, g)
            for va, vs in items:
                k = next(i for i, (v, _) in enumerate(c) if v == va)
                c[k + 1:k + 1] = [(v, c[k][1]) for v in vs]
            grown[g] = c
        if grown:
            ptr2, rv2, lab2, kept2 = _splice(ptr2, rv2, lab2, grown)
            keep = keep[kept2]
    # renumber the vertices still used, in their old order
    used = np.unique(rv2)
    new = np.full(nvert, -1, dtype=np.int64)
    new[used] = np.arange(len(used))
    return used, ptr2, new[rv2], lab2, keep


def mend_jump_edges(
    verts: np.ndarray, ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, jumps: list[tuple[int, int]], scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Put on both sides of every edge of a step with jumps the vertices that either side has on it.

    After a step with jumps (Hardshrink, Threshold, Sawtooth...) a later line crosses an edge of that
    step at different points on its two sides (see :data:`splinecam.engine.geometry._JUMP_LINES`), so
    each side's cycle has vertices on the shared segment that the other lacks. Every unmatched
    half-edge with a label in ``jumps`` gets, in order, the endpoints of the other unmatched half-edges
    of the same label that lie on it (within ``1e-9`` of the domain's ``scale``). Returns
    ``(ptr, rv, lab, kept regions)`` or None when there is nothing to mend.
    """
    nvert = len(verts)
    a, b, reg = _half_edges(ptr, rv)
    bad = _unmatched(a, b, lab, nvert)
    isj = np.zeros(len(lab), dtype=bool)
    for lo, hi in jumps:
        isj |= (lab >= lo) & (lab < hi)
    bad &= isj
    if not bad.any():
        return None
    tol = 1e-9 * scale
    slots = np.flatnonzero(bad)
    order = np.argsort(lab[slots], kind="stable")
    slots = slots[order]
    labs = lab[slots]
    cuts = np.flatnonzero(np.diff(labs)) + 1
    inserts: dict[int, list[tuple[int, list[int]]]] = {}
    for grp in np.split(slots, cuts):
        vs = np.unique(np.concatenate([a[grp], b[grp]]))
        pa, pb = verts[a[grp]], verts[b[grp]]  # (E, 2)
        d = pb - pa
        ln2 = (d * d).sum(1)
        q = verts[vs][None, :, :] - pa[:, None, :]  # (E, V, 2)
        t = (q * d[:, None, :]).sum(2) / np.maximum(ln2, 1e-300)[:, None]
        ln = np.sqrt(ln2)[:, None]
        dist = np.abs(q[..., 0] * d[:, None, 1] - q[..., 1] * d[:, None, 0]) / np.maximum(ln, 1e-300)
        on = (dist <= tol) & (t * ln > tol) & ((1 - t) * ln > tol)
        for e in np.flatnonzero(on.any(1)):
            idx = np.flatnonzero(on[e])
            s = int(grp[e])
            inserts.setdefault(int(reg[s]), []).append((int(a[s]), vs[idx[np.argsort(t[e, idx])]].tolist()))
    if not inserts:
        return None
    grown: dict[int, list[tuple[int, int]]] = {}
    for g, items in inserts.items():
        c = _cycle(ptr, rv, lab, g)
        for va, new in items:
            k = next(i for i, (v, _) in enumerate(c) if v == va)
            c[k + 1:k + 1] = [(v, c[k][1]) for v in new]
        grown[g] = c
    return _splice(ptr, rv, lab, grown)


def merge_equal_neighbours(
    ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, pairs: np.ndarray, weight: np.ndarray, nvert: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Merge neighbouring regions that have the same codes: they are one linear region.

    The set of points where every unit keeps one piece is an intersection of half-planes, so the
    union of neighbours with equal codes is convex: a cut between them is needless (the snapping of
    nearly coincident lines through one point can leave a sliver of area 1e-24 beside its twin line,
    on the same side of every line). ``pairs`` ``(M, 2)``: the regions on the two sides of such
    edges; ``weight`` ``(R,)``: which region of a group keeps its place (and affine map): the
    largest. Regions as counter-clockwise cycles in CSR form ``ptr``/``rv``, ``lab`` the label of
    the edge from each slot to the next.

    Returns ``(kept vertices, ptr, rv, lab, kept regions)`` with vertices renumbered in the order
    of the kept ones, or None when no group could be merged (its boundary is not one simple cycle).
    """
    r = len(ptr) - 1
    root = np.arange(r)

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = int(root[i])
        return i

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for g in np.unique(pairs).tolist():
        members.setdefault(find(g), []).append(g)
    new: dict[int, list[tuple[int, int]]] = {}
    for group in members.values():
        cycle = _union_cycle(ptr, rv, lab, group)
        if cycle is None:
            continue
        main = max(group, key=lambda g: weight[g])
        new[main] = cycle
        for g in group:
            if g != main:
                new[g] = []
    if not new:
        return None
    ptr2, rv2, lab2, keep = _splice(ptr, rv, lab, new)
    used = np.unique(rv2)
    renum = np.full(nvert, -1, dtype=np.int64)
    renum[used] = np.arange(len(used))
    return used, ptr2, renum[rv2], lab2, keep


def _union_cycle(ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, group: list[int]) -> list[tuple[int, int]] | None:
    """The boundary of the union of the regions ``group`` as one counter-clockwise cycle of
    (vertex, label) pairs: their half-edges without those whose twin is in the group, chained end to
    start. None when that is not one simple cycle."""
    out: dict[int, tuple[int, int]] = {}  # start vertex -> (end vertex, label)
    half: list[tuple[int, int, int]] = []
    for g in group:
        c = _cycle(ptr, rv, lab, g)
        for i, (v, lb) in enumerate(c):
            half.append((v, c[(i + 1) % len(c)][0], lb))
    inside = {(a, b) for a, b, _ in half}
    for a, b, lb in half:
        if (b, a) in inside:
            continue
        if a in out:  # two boundary edges leave one vertex: not a simple cycle
            return None
        out[a] = (b, lb)
    if len(out) < 3:
        return None
    start = next(iter(out))
    cycle = []
    v = start
    for _ in range(len(out)):
        b, lb = out[v]
        cycle.append((v, lb))
        v = b
        if v == start:
            break
    if v != start or len(cycle) != len(out):
        return None
    return cycle


def weld_short_edges(
    verts: np.ndarray, ptr: np.ndarray, rv: np.ndarray, lab: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Weld the two ends of every edge shorter than ``tol`` into one vertex.

    Distinct vertices that close only come from rounding: lines through one point (bias-free
    networks) whose intersection was computed on two different edges, two nearly coincident lines
    there. Such an edge's direction is noise, so it would make a polygon test (point location)
    wrong, and it can close a sliver of area 1e-24. Regions left with fewer than 3 vertices are
    dropped. Returns ``(kept vertices, ptr, rv, lab, kept regions)`` (vertices renumbered in the
    order of the kept ones), or None when no edge is that short.
    """
    nvert = len(verts)
    n = len(rv)
    nxt = np.arange(1, n + 1)
    nxt[ptr[1:] - 1] = ptr[:-1]
    a, b = rv, rv[nxt]
    # (per coordinate: numpy's max over an axis of length 2 costs several times these)
    va = verts[a]
    d = va[nxt] - va
    short = np.abs(d[:, 0]) <= tol
    short &= np.abs(d[:, 1]) <= tol
    short &= a != b
    if not short.any():
        return None
    reg = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    root = np.arange(nvert)

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = int(root[i])
        return i

    for i, j in zip(a[short].tolist(), b[short].tolist()):
        ri, rj = find(i), find(j)
        if ri != rj:
            root[max(ri, rj)] = min(ri, rj)
    cand = np.unique(np.concatenate([a[short], b[short]]))
    m = np.arange(nvert)
    m[cand] = [find(int(i)) for i in cand]
    rvm = m[rv]
    touched: dict[int, list[tuple[int, int]]] = {}
    for g in np.unique(reg[np.isin(rv, cand)]).tolist():
        c = _cycle(ptr, rvm, lab, g)
        k = 0
        while len(c) > 1 and k < len(c):
            if c[k][0] == c[(k + 1) % len(c)][0]:
                # the edge k -> k + 1 vanishes; the vertex keeps the label of the edge after it
                del c[k]
            else:
                k += 1
        touched[g] = c
    ptr2, rv2, lab2, keep = _splice(ptr, rvm, lab, touched)
    used = np.unique(rv2)
    renum = np.full(nvert, -1, dtype=np.int64)
    renum[used] = np.arange(len(used))
    return used, ptr2, renum[rv2], lab2, keep

"""Point location in a partition: a uniform grid of buckets over region bounding boxes."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RegionIndex"]


class RegionIndex:
    """Finds the region(s) containing points; built once per partition, queried many times."""

    def __init__(self, part: Any) -> None:
        poly, nv = part.padded_polygons()
        self.poly = poly
        self.nv = nv
        r = len(nv)
        lo = poly.min(1)
        hi = poly.max(1)
        dom = part.slice.domain
        self.lo = dom.min(0)
        span = dom.max(0) - self.lo
        self.g = int(max(1, min(1024, np.ceil(np.sqrt(max(r, 1))))))
        self.cell = span / self.g
        i0 = self._cell(lo)
        i1 = self._cell(hi)
        nx = i1[:, 0] - i0[:, 0] + 1
        ny = i1[:, 1] - i0[:, 1] + 1
        cnt = nx * ny
        reg = np.repeat(np.arange(r), cnt)
        off = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        cx = i0[reg, 0] + off % nx[reg]
        cy = i0[reg, 1] + off // nx[reg]
        cid = cx * self.g + cy
        order = np.argsort(cid, kind="stable")
        self.members = reg[order]
        self.ptr = np.zeros(self.g * self.g + 1, dtype=np.int64)
        np.add.at(self.ptr, cid + 1, 1)
        self.ptr = np.cumsum(self.ptr)
        self.scale = float(np.abs(span).max())

    def _cell(self, p: np.ndarray) -> np.ndarray:
        c = np.floor((p - self.lo) / self.cell).astype(np.int64)
        return np.clip(c, 0, self.g - 1)

    def candidates(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (point index, region index) whose bucket matches."""
        c = self._cell(u)
        cid = c[:, 0] * self.g + c[:, 1]
        s, e = self.ptr[cid], self.ptr[cid + 1]
        cnt = e - s
        pi = np.repeat(np.arange(len(u)), cnt)
        off = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        ri = self.members[s[pi] + off]
        return pi, ri

    def contains(self, pi: np.ndarray, ri: np.ndarray, u: np.ndarray, tol: float) -> np.ndarray:
        """Whether point ``pi`` lies in region ``ri`` (within ``tol`` of its border counts as in)."""
        poly = self.poly[ri]
        nv = self.nv[ri]
        k = poly.shape[1]
        nxt = np.arange(k) + 1
        nxt = np.where(nxt[None] < nv[:, None], nxt[None], 0)
        a = poly
        b = np.take_along_axis(poly, nxt[..., None], 1)
        e = b - a
        d = u[pi][:, None] - a
        ln = np.hypot(e[..., 0], e[..., 1])
        # signed distance to each edge's line, from the unit direction (a cross product of huge
        # coordinates would overflow)
        with np.errstate(invalid="ignore", divide="ignore"):
            ux, uy = e[..., 0] / ln, e[..., 1] / ln
        dist = ux * d[..., 1] - uy * d[..., 0]
        ok = (dist >= -tol) | (np.arange(k)[None] >= nv[:, None]) | (ln == 0)
        return ok.all(1)

    def locate(self, u: np.ndarray, tol: float | None = None) -> np.ndarray:
        out = np.full(len(u), -1, dtype=np.int64)
        if len(u) == 0:
            return out
        tol = 1e-12 * self.scale if tol is None else tol
        for start in range(0, len(u), 20000):
            uu = u[start : start + 20000]
            pi, ri = self.candidates(uu)
            inside = self.contains(pi, ri, uu, tol)
            pi, ri = pi[inside], ri[inside]
            res = np.full(len(uu), -1, dtype=np.int64)
            # the first containing region in id order
            res[pi[::-1]] = ri[::-1]
            out[start : start + len(uu)] = res
        return out

    def count_containing(self, u: np.ndarray, tol: float) -> np.ndarray:
        """How many regions contain each point (strictly, beyond ``-tol``)."""
        pi, ri = self.candidates(u)
        inside = self.contains(pi, ri, u, -tol)
        return np.bincount(pi[inside], minlength=len(u))

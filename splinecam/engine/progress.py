"""Progress of an engine run: the fraction of the domain's area whose regions are final.

The engine finishes regions in depth-first order, chunk by chunk, so their count says nothing about
how much is left; the area they cover does: when finished regions cover 40% of the domain, about
40% of the work is done (the density of regions varies over the domain, so the estimated time left
is a guess that improves as the run goes). :func:`area_progress` makes the tqdm bar that
:func:`splinecam.partition` shows with ``progress=True`` (``total=1``, in percent, with an ETA and the
number of regions so far), or reuses a bar given to it (as :class:`splinecam.Recorder` does: one bar
over all its snapshots).

Examples
--------
>>> import torch
>>> from splinecam.engine.geometry import Polygons
>>> square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
>>> polygon_areas(Polygons(square, torch.zeros(1, 4, dtype=torch.int64),
...                        torch.zeros(1, 4, dtype=torch.int64), torch.tensor([4]))).tolist()
[1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from .geometry import Polygons

__all__ = ["AreaProgress", "ProgressBar", "area_progress", "polygon_areas", "new_bar", "BAR_FORMAT"]

#: The bar's layout: percent of the domain's area done, elapsed and remaining time, regions so far.
BAR_FORMAT = "{desc}: {percentage:5.1f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


class ProgressBar(Protocol):
    """What :func:`area_progress` needs of a bar given to it (a ``tqdm`` bar has all of it)."""

    total: Any
    n: Any

    def update(self, n: float = 1) -> Any: ...

    def reset(self, total: float | None = None) -> Any: ...

    def refresh(self) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...


def polygon_areas(poly: Polygons) -> torch.Tensor:
    """Area of each polygon of a batch (shoelace over its ``nv`` valid vertices), shape ``(P,)``."""
    xy = poly.xy
    k = xy.shape[1]
    slot = torch.arange(k, device=xy.device)
    valid = slot[None] < poly.nv[:, None]
    nxt_slot = torch.where(slot[None] + 1 < poly.nv[:, None], slot[None] + 1, torch.zeros_like(slot[None]))
    nxt = torch.gather(xy, 1, nxt_slot[..., None].expand(-1, -1, 2))
    q = xy - xy[:, :1]  # relative to vertex 0: no cancellation for small polygons far from 0
    qn = nxt - xy[:, :1]
    cr = q[..., 0] * qn[..., 1] - qn[..., 0] * q[..., 1]
    return 0.5 * (cr * valid).sum(1)


def new_bar(desc: str = "splinecam", **kwargs: Any) -> Any:
    """A tqdm bar laid out for :class:`AreaProgress` (``total=1``, :data:`BAR_FORMAT`)."""
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:  # pragma: no cover - tqdm is a dependency
        raise ImportError("progress=True needs tqdm: pip install tqdm") from exc
    return tqdm(total=1.0, desc=desc, bar_format=BAR_FORMAT, **kwargs)


class AreaProgress:
    """A tqdm bar of the fraction of the domain's area covered by finished regions.

    With several slices run together (:func:`splinecam.partition_many`) each slice counts for an
    equal share: a region adds its area over its slice's domain area, over the number of slices.

    Parameters
    ----------
    domain_area : float or sequence of float
        Area of the slice's domain (one per slice).
    bar : tqdm bar, optional
        A bar to reuse (reset to ``total=1``; left open by :meth:`close`). A new one if None.
    desc : str
        Description of a new bar.
    """

    def __init__(
        self, domain_area: float | Sequence[float], bar: ProgressBar | None = None, desc: str = "splinecam"
    ) -> None:
        areas = torch.as_tensor(domain_area, dtype=torch.float64).reshape(-1)
        self.domain_areas = areas
        self.domain_area = float(areas.sum())
        self.regions = 0
        self.done = 0.0
        self.owned = bar is None
        if bar is None:
            bar = new_bar(desc)
        else:
            bar.set_postfix_str("", refresh=False)
            bar.reset(total=1.0)
        self.bar = bar

    def update(self, poly: Polygons, sid: torch.Tensor | None = None) -> None:
        """Count the finished polygons ``poly`` (of the slices ``sid``): their area and their number."""
        n = len(poly)
        if n == 0:
            return
        a = polygon_areas(poly).to("cpu", torch.float64)
        if sid is None or len(self.domain_areas) == 1:
            frac = float(a.sum()) / float(self.domain_areas[0] if len(self.domain_areas) == 1 else self.domain_area)
        else:
            per = self.domain_areas[sid.to("cpu", torch.int64)]
            frac = float((a / per).sum()) / len(self.domain_areas)
        # never past 1 by rounding; the last update fills the bar exactly in close()
        step = max(0.0, min(frac, 1.0 - self.done))
        self.done += step
        self.regions += n
        self.bar.set_postfix_str(f"{self.regions:,} regions", refresh=False)
        self.bar.update(step)

    def close(self) -> None:
        """Fill the bar (the finished regions cover the domain) and close it if it was made here."""
        self.bar.n = self.bar.total
        self.bar.set_postfix_str(f"{self.regions:,} regions", refresh=False)
        if self.owned:
            self.bar.close()
        else:
            self.bar.refresh()


def _area(domain: Any) -> float:
    d = torch.as_tensor(domain.detach().cpu() if isinstance(domain, torch.Tensor) else domain, dtype=torch.float64)
    q = d - d[:1]
    return 0.5 * abs(float((q[:, 0] * q.roll(-1, 0)[:, 1] - q.roll(-1, 0)[:, 0] * q[:, 1]).sum()))


def area_progress(progress: bool | ProgressBar | None, domains: Any) -> AreaProgress | None:
    """The progress bar of a run: None for ``progress=False``; a new bar for True; else ``progress``
    is a tqdm bar to reuse. ``domains``: the domain polygon ``(k, 2)``, or a list of them (one per
    slice run together)."""
    if progress is None or progress is False:
        return None
    doms = domains if isinstance(domains, (list, tuple)) else [domains]
    areas = [_area(d) for d in doms]
    if progress is True:
        return AreaProgress(areas)
    if not all(hasattr(progress, a) for a in ("update", "reset", "refresh", "set_postfix_str")):
        raise TypeError(
            f"progress must be True, False or a tqdm progress bar to reuse, got {type(progress).__name__}"
        )
    return AreaProgress(areas, bar=progress)

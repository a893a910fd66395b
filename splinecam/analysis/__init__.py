"""Analysis: what is measured on a :class:`~splinecam.result.Partition`.

:mod:`.boundary` (decision boundaries and level sets), :mod:`.graph` (planar and region-adjacency graphs,
their exports), :mod:`.stats` (region statistics), :mod:`.locate` (which region holds a point), :mod:`.extremes` (exact
output ranges). May
import the result, the engine's geometry, the slice and the errors; never viz or compat.
"""

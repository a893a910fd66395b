"""Compat: the original SplineCam toolbox's names and call shapes, on the new engine.

:mod:`.utils` (slices from anchors, projection matrices, region statistics), :mod:`.wrappers`
(``model_wrapper``), :mod:`.compute` (``get_partitions_with_db``). Reachable as ``sc.utils``,
``sc.wrappers`` and ``sc.compute``; nothing in the package imports this folder but the package itself.
"""

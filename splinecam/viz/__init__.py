"""Viz: drawing partitions (:mod:`.plot`) and recording them during training (:mod:`.record`).

May import analysis, the result and everything below it; never compat. matplotlib is imported when a
function draws, not at import time.
"""

"""Viz: drawing partitions (:mod:`.plot`), recording them during training (:mod:`.record`) and their
pictures in notebooks (:mod:`.notebook`).

May import analysis, the result and everything below it; never compat. matplotlib is imported when a
function draws, not at import time.
"""

"""Histories: the op model, the recorder (JSON Lines, flushed per op) and the run store."""

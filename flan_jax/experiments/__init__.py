"""Experiments built from core pieces (functions a notebook can call): the main job and its ablations."""

"""Hazards (隐患): the catalogue of categories and departments, and the tickets built on it."""

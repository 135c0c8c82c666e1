"""The embedded runtime: the whole stack as local processes, no Docker engine needed."""

"""The client's workflows on its typed operations: the Runner (run, wait, stream, fan-out)
and what it is made of: one run under one deadline, streams, files in and out, the
completion bus, models as functions."""

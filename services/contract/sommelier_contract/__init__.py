"""What the trainer and the predictor agree on, shipped with both (and with the client).

- `layout`: where things live in the buckets (model versions, pointers, dataset files, feedback).
- `artifacts`: reading a model version and unpickling it only after its checksums and library match.
- `records`: the record schema a model accepts and the matrix its pipeline takes.
- `dataset` (needs pandas; never imported by the predictor): reading, checking and describing a dataset.
"""

"""What the trainer and the predictor agree on, shipped with both (and with the client).

- `layout`: where things live in the buckets (model versions, pointers, dataset files, feedback).
- `manifest`: the model manifest as one frozen type (`Manifest.from_json` / `to_json`), the model card and history row.
- `artifacts`: reading a model version and unpickling it only after its signature, checksums and library match.
- `pointers`: the champion (and its history), the candidate on trial, the rollback target.
- `records`: the record schema a model accepts and the matrix its pipeline takes.
- `dataset` (needs pandas; never imported by the predictor): reading, checking and describing a dataset.
"""

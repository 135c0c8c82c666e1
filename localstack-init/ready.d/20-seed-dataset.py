"""Hook 20: put the default dataset (scikit-learn's wine data as CSV) and its spec in the dataset bucket.

The trainer always reads its data from S3; this seeds the first dataset. Re-running
it writes nothing unless the files in data/ changed.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from hooklib import env, repo_root, session, stack_outputs, upload_if_changed  # noqa: E402


def main() -> None:
    aws = session()
    bucket = stack_outputs(aws.client("cloudformation"), env("SOMMELIER_STACK_NAME"))["DatasetBucketName"]
    prefix = env("SOMMELIER_DATASET_PREFIX").strip("/")
    s3 = aws.client("s3")
    data = repo_root() / "data"
    upload_if_changed(s3, bucket, f"{prefix}/data.csv", (data / "wine.csv").read_bytes())
    upload_if_changed(s3, bucket, f"{prefix}/spec.json", (data / "wine.spec.json").read_bytes())


main()

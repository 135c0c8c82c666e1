"""Hook 40: publish the page's static files to the website bucket, with a config.js naming the API.

The same files Flask serves locally; in AWS the bucket is the site. (MiniStack stores the
objects but does not serve S3 websites, so locally the Flask frontend is what people open.)
"""

import json
import mimetypes
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from hooklib import env, log, repo_root, session, upload_if_changed  # noqa: E402


def main() -> None:
    aws = session()
    info = json.loads(pathlib.Path(env("SOMMELIER_STACK_INFO_FILE")).read_text())
    bucket = info["outputs"]["FrontendBucketName"]
    s3 = aws.client("s3")
    static = repo_root() / "services" / "frontend" / "frontend" / "static"
    files = {"index.html": static / "index.html"}
    files.update({f"static/{p.relative_to(static)}": p for p in sorted(static.rglob("*")) if p.is_file() and p.name != "index.html"})
    for key, path in files.items():
        upload_if_changed(s3, bucket, key, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    config = {"apiUrl": info["api_url"], "apiKey": info["frontend_api_key"]}
    upload_if_changed(s3, bucket, "config.js", f"window.SOMMELIER_CONFIG = {json.dumps(config)};\n".encode(), "application/javascript")
    log.info("frontend published to s3://%s (%d files + config.js)", bucket, len(files))


main()

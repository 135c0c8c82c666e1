#!/bin/sh
# The entry point of a Lambda image on a plain base (the pattern AWS documents for such images):
# in Lambda, AWS_LAMBDA_RUNTIME_API is set and the runtime interface client runs as is; anywhere
# else (an emulator, `docker run`), the project's Runtime Interface Emulator (lambda_rie.py) serves
# the invoke endpoint on port 8080 and the Runtime API to the same client.
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec python -m lambda_rie python -m awslambdaric "$@"
fi
exec python -m awslambdaric "$@"

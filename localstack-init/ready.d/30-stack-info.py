"""Hook 30: write what clients need to reach the stack (API URL, demo key, names) to a JSON file.

The file is how the runner, the trainer, the frontend and the tests find the stack
without copying names around. The API URL uses the emulator's path-style invoke URL
as seen from the host (SOMMELIER_PUBLIC_ENDPOINT). The file holds an API key, so it
is written owner-readable only.
"""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from hooklib import env, log, session, stack_outputs, write_stack_info  # noqa: E402


def main() -> None:
    aws = session()
    stack_name = env("SOMMELIER_STACK_NAME")
    outputs = stack_outputs(aws.client("cloudformation"), stack_name)
    apigw = aws.client("apigateway")
    key = apigw.get_api_key(apiKey=outputs["DemoApiKeyId"], includeValue=True)["value"]
    frontend_key = apigw.get_api_key(apiKey=outputs["FrontendApiKeyId"], includeValue=True)["value"]
    # An emulator serves the API under its own endpoint; in AWS (no SOMMELIER_PUBLIC_ENDPOINT) it is the stage's URL.
    public = os.environ.get("SOMMELIER_PUBLIC_ENDPOINT", "").rstrip("/")
    api_url = f"{public}/restapis/{outputs['RestApiId']}/{outputs['StageName']}/_user_request_" if public else outputs["ApiUrl"]
    info = {
        "stack_name": stack_name,
        "region": aws.region_name,
        "aws_endpoint": public or None,
        "api_url": api_url,
        "api_key": key,
        "frontend_api_key": frontend_key,
        "outputs": outputs,
    }
    path = pathlib.Path(env("SOMMELIER_STACK_INFO_FILE"))
    write_stack_info(path, info)
    log.info("stack info written to %s", path)


main()
